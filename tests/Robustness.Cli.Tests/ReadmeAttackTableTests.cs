using Robustness.Cli.Commands.Attacks;

namespace Robustness.Cli.Tests;

/// <summary>The README's attack table is the one `robust attacks --markdown` generates from the attack records, so a
/// changed default cannot leave the documentation behind.</summary>
public sealed class ReadmeAttackTableTests
{
    [Fact]
    public void Readme_attack_table_matches_the_records()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Robustness.sln"))) dir = dir.Parent;
        Assert.NotNull(dir);
        var readme = File.ReadAllText(Path.Combine(dir!.FullName, "README.md")).ReplaceLineEndings("\n");
        const string begin = "<!-- attack-table:", end = "<!-- /attack-table -->";
        int a = readme.IndexOf(begin, StringComparison.Ordinal), b = readme.IndexOf(end, StringComparison.Ordinal);
        Assert.True(a >= 0 && b > a, "README.md has no generated attack table");
        var block = readme[(readme.IndexOf('\n', a) + 1)..b];
        var expected = AttacksCommand.MarkdownTable().ReplaceLineEndings("\n");
        Assert.True(expected == block, "README.md's attack table is out of date; replace it with the output of `robust attacks --markdown`:\n" + expected);
    }

    [Fact]
    public void Table_shows_the_records_defaults()
    {
        var table = AttacksCommand.MarkdownTable();
        Assert.Contains($"{new Robustness.Attacks.SquareAttack(Robustness.Core.ThreatModel.Linf(0.1)).Queries} queries", table);
        Assert.Contains($"{Robustness.Attacks.AutoPgdAttack.DefaultSteps} steps", table);
        Assert.Contains($"{Robustness.Attacks.Presets.PgdSteps} steps", table);
    }
}
