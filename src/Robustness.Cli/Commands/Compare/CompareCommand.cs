using System.CommandLine;
using System.Globalization;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Evaluation;
using Spectre.Console;

namespace Robustness.Cli.Commands.Compare;

/// <summary>Everything `robust compare` was asked to do.</summary>
public sealed record CompareRunOptions
{
    public required IReadOnlyList<string> Reports { get; init; }
    public bool Force { get; init; }
    public string? Out { get; init; }
    public bool Json { get; init; }
}

/// <summary>
/// `robust compare REPORT...`: robustness reports side by side against the first (did my defense help?) — console
/// table, and with --out compare.md / compare.html / compare.json; --json prints the comparison on stdout. Reports of
/// different threat models, datasets or samples are refused unless --force.
/// </summary>
public sealed class CompareCommand(CompareRunOptions o)
{
    private static readonly Argument<string[]> ReportsArg = new("reports")
    {
        Description = "Two or more report.json files or the folders holding them (robust eval --out); the first is the baseline.",
        Arity = ArgumentArity.OneOrMore,
    };
    private static readonly Option<bool> ForceOption = new("--force") { Description = "Compare even when threat models, datasets or sample sets differ (the output says so)." };
    private static readonly Option<string?> OutOption = new("--out") { Description = "Directory for compare.html, compare.md and compare.json." };
    private static readonly Option<bool> JsonOption = new("--json") { Description = "Print the comparison as JSON on stdout (messages go to stderr)." };

    public static Command Definition()
    {
        var command = new Command("compare", "Put two or more robustness reports side by side against the first: clean, robust per ε, per attack, per class, warnings, and a paired test on the same samples.")
        {
            ReportsArg, ForceOption, OutOption, JsonOption,
        };
        CommandRunner.SetAction(command, p => new CompareCommand(new CompareRunOptions
        {
            Reports = p.GetValue(ReportsArg)!,
            Force = p.GetValue(ForceOption),
            Out = p.GetValue(OutOption),
            Json = p.GetValue(JsonOption),
        }).Execute());
        return command;
    }

    public int Execute()
    {
        if (o.Reports.Count < 2) throw new InputException($"compare: give at least two reports (got {o.Reports.Count}: {string.Join(", ", o.Reports)})");
        var reports = Load(o.Reports);
        var comparison = ReportComparison.Compare(reports);
        if (comparison.Incompatibilities.Count > 0 && !o.Force)
            throw new InputException($"compare: {comparison.Incompatibilities[0]}{(comparison.Incompatibilities.Count > 1 ? $" (and {comparison.Incompatibilities.Count - 1} more)" : "")}; " +
                                     "their numbers are not comparable — pass --force to compare anyway");

        ComparisonFiles? files = null;
        if (o.Out is not null)
        {
            using var outLock = OutputLock.Acquire(o.Out);
            files = ComparisonWriter.WriteAll(comparison, o.Out);
        }
        if (o.Json)
        {
            Console.Out.WriteLine(ComparisonWriter.Json(comparison));
            foreach (var i in comparison.Incompatibilities) Console.Error.WriteLine($"robust: warning: not comparable: {i}");
            if (files is not null) Console.Error.WriteLine($"robust: wrote {files.Html}");
            return ExitCodes.Ok;
        }
        Render(comparison);
        if (files is not null) CommandRunner.Out.MarkupLine($"wrote [bold]{Markup.Escape(files.Html)}[/] and {Markup.Escape(Path.GetFileName(files.Markdown))}");
        return ExitCodes.Ok;
    }

    /// <summary>Reads each report (a file, or a folder with report.json) and gives it a unique short label.</summary>
    public static IReadOnlyList<ComparedReport> Load(IReadOnlyList<string> paths)
    {
        var loaded = new List<(string Label, string Path, RobustnessReport Report)>();
        foreach (var given in paths)
        {
            var path = Directory.Exists(given) ? Path.Combine(given, "report.json") : given;
            if (!File.Exists(path))
                throw new InputException(Directory.Exists(given)
                    ? $"{Path.GetFullPath(given)}: no report.json in this folder (give robust eval's --out folder or a report.json)"
                    : $"{Path.GetFullPath(given)}: no such report file or folder");
            var full = Path.GetFullPath(path);
            var report = JsonReportWriter.Read(full);
            if (report.Samples.Count != report.Total || report.EpsSweep.Count == 0)
                throw new InputException($"{full}: not a complete robustness report (samples or ε sweep missing)");
            var dir = Path.GetFileName(Path.GetDirectoryName(full)!);
            var label = Path.GetFileName(full) == "report.json" && !string.IsNullOrEmpty(dir) ? dir : Path.GetFileNameWithoutExtension(full);
            loaded.Add((label, full, report));
        }
        // Same folder names (runs/a/eval, runs/b/eval): number them so columns stay apart.
        var counts = loaded.GroupBy(l => l.Label).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet();
        var seen = new Dictionary<string, int>();
        return loaded.Select(l =>
        {
            if (!counts.Contains(l.Label)) return new ComparedReport(l.Label, l.Path, l.Report);
            seen[l.Label] = seen.GetValueOrDefault(l.Label) + 1;
            return new ComparedReport($"{l.Label} #{seen[l.Label]}", l.Path, l.Report);
        }).ToArray();
    }

    private static void Render(ReportComparison c)
    {
        var console = CommandRunner.Out;
        foreach (var i in c.Incompatibilities) console.MarkupLine($"[red bold]not comparable:[/] {Markup.Escape(i)} (compared anyway: --force)");
        foreach (var n in c.Notes) console.MarkupLine($"[yellow]note:[/] {Markup.Escape(n)}");

        var table = new Table().AddColumn("");
        for (int i = 0; i < c.Reports.Count; i++)
            table.AddColumn(new TableColumn(Markup.Escape(c.Reports[i].Label + (i == 0 ? " (baseline)" : ""))).RightAligned());
        void Section(string title, IEnumerable<ComparisonRow> rows)
        {
            var list = rows.ToArray();
            if (list.Length == 0) return;
            table.AddRow(new Markup($"[bold]{Markup.Escape(title)}[/]"));
            foreach (var r in list)
                table.AddRow(new[] { Markup.Escape("  " + r.Label) }.Concat(Enumerable.Range(0, r.Values.Count).Select(i => Cell(r, i))).ToArray());
        }
        Section("headline", c.Headline);
        Section("accuracy vs ε (worst case)", c.Sweep);
        Section("attack stages at the main ε", c.Stages);
        Section("per class, robust", c.PerClass.Select(k => k.Robust with { Label = $"{k.Class} {k.Label}" }));
        if (c.Warnings.Count > 0)
        {
            table.AddRow(new Markup("[bold]warnings[/]"));
            foreach (var w in c.Warnings)
                table.AddRow(new[] { Markup.Escape("  " + w.Code) }.Concat(w.PresentIn.Select(x => x ? "[yellow]⚠ yes[/]" : "[grey]—[/]")).ToArray());
        }
        console.Write(table);

        if (c.Paired is { Count: > 0 } paired)
        {
            var pt = new Table().Title("paired on the same samples (McNemar's exact test)")
                .AddColumn("compared").AddColumn("measure").AddColumn(new TableColumn("both").RightAligned()).AddColumn(new TableColumn("only baseline").RightAligned())
                .AddColumn(new TableColumn("only other").RightAligned()).AddColumn(new TableColumn("neither").RightAligned()).AddColumn(new TableColumn("p").RightAligned());
            foreach (var p in paired)
                pt.AddRow(Markup.Escape($"{c.Reports[p.Other].Label} vs {c.Reports[0].Label}"), Markup.Escape(p.What), Inv(p.Both), Inv(p.OnlyBaseline), Inv(p.OnlyOther), Inv(p.Neither),
                    p.Significant ? $"[bold]{Markup.Escape(P(p.PValue))} *[/]" : Markup.Escape(P(p.PValue)));
            console.Write(pt);
        }
        foreach (var (text, direction) in ComparisonWriter.Verdicts(c))
            console.MarkupLine($"{(direction > 0 ? "[green]" : direction < 0 ? "[red]" : "[yellow]")}{Markup.Escape(text)}[/]");
    }

    private static string Cell(ComparisonRow r, int i)
    {
        if (r.Values[i] is not { } v) return "[grey]—[/]";
        bool norm = r.Label == ReportComparison.MinimumNormLabel;
        var text = norm ? v.ToString("0.####", CultureInfo.InvariantCulture) : MarkdownReportWriter.Pct(v);
        if (i == 0 || r.Delta(i) is not { } d) return text;
        var points = Math.Round(d * 100, 2);
        var delta = norm ? d.ToString("+0.####;−0.####;±0", CultureInfo.InvariantCulture) : (points > 0 ? "+" : points < 0 ? "−" : "±") + Math.Abs(points).ToString("0.00", CultureInfo.InvariantCulture);
        var colour = points > 0 ? "green" : points < 0 ? "red" : "grey";
        return $"{text} [{colour}]{delta}[/]";
    }

    private static string Inv(int v) => v.ToString(CultureInfo.InvariantCulture);

    private static string P(double p) => p < 0.0001 ? p.ToString("0.0e0", CultureInfo.InvariantCulture) : p.ToString("0.####", CultureInfo.InvariantCulture);
}
