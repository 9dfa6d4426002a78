using System.CommandLine;
using System.Text;
using Robustness.Attacks;
using Robustness.Core;
using Robustness.Cli.Common;
using Spectre.Console;

namespace Robustness.Cli.Commands.Attacks;

/// <summary>
/// `robust attacks`: every registered attack and preset with its norms and defaults, read from the attack records
/// (the registry's catalogue). `--markdown` prints the README's attack table; a test keeps the README equal to it.
/// </summary>
public sealed class AttacksCommand(bool markdown)
{
    private static readonly Option<bool> MarkdownOption = new("--markdown") { Description = "Print the table as Markdown (the README's attack table)." };

    public static Command Definition()
    {
        var command = new Command("attacks", "List the attacks and presets with their norms and defaults.") { MarkdownOption };
        CommandRunner.SetAction(command, p => new AttacksCommand(p.GetValue(MarkdownOption)).Execute());
        return command;
    }

    public int Execute()
    {
        if (markdown)
        {
            Console.Out.Write(MarkdownTable());
            return ExitCodes.Ok;
        }
        var table = new Table().AddColumn("attack").AddColumn("what").AddColumn("needs").AddColumn("norms").AddColumn("defaults (flag)");
        foreach (var row in Rows()) table.AddRow(row.Select(Markup.Escape).ToArray());
        CommandRunner.Out.Write(table);
        return ExitCodes.Ok;
    }

    /// <summary>The README's attack table: one row per attack, then the presets.</summary>
    public static string MarkdownTable()
    {
        var sb = new StringBuilder();
        sb.AppendLine("| `--attack` | what | needs | norms | defaults (override with) |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var e in AttackRegistry.Entries)
            sb.AppendLine($"| `{e.Name}` | {e.Description} | {e.Needs.Name()} | {e.Norms} | {Defaults(e, flag => $"`{flag}`")} |");
        foreach (var p in AttackRegistry.PresetEntries)
            sb.AppendLine($"| `{p.Name}` (preset) | {p.Description} | gradients | all | |");
        return sb.ToString();
    }

    private static IEnumerable<string[]> Rows() =>
        AttackRegistry.Entries.Select(e => new[] { e.Name, e.Description, e.Needs.Name(), e.Norms, Defaults(e, flag => flag) })
            .Concat(AttackRegistry.PresetEntries.Select(p => new[] { p.Name + " (preset)", p.Description, "gradients", "all", "" }));

    private static readonly Command AttackVerb = Attack.AttackCommand.Definition();

    private static string Defaults(AttackEntry entry, Func<string, string> formatFlag)
    {
        var parts = entry.Defaults(Core.ThreatModel.Linf(0.1)).Select(d =>
        {
            var flag = d.Option is null ? null : ParameterFlags.For(d.Option, AttackVerb);
            return flag is not null && flag.StartsWith("--", StringComparison.Ordinal) ? $"{d.Text} ({formatFlag(flag)})" : d.Text;
        }).ToArray();
        return parts.Length == 0 ? "—" : string.Join(", ", parts);
    }
}
