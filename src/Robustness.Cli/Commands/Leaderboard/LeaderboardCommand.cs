using System.CommandLine;
using System.Text.Json;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Evaluation;
using Spectre.Console;

namespace Robustness.Cli.Commands.Leaderboard;

/// <summary>Everything `robust leaderboard` was asked to do.</summary>
public sealed record LeaderboardRunOptions
{
    public string? Dataset { get; init; }
    public string? Norm { get; init; }
    public double? Epsilon { get; init; }
    public bool AllRuns { get; init; }
    public string? ResultsDb { get; init; }
    public string? Out { get; init; }
    public bool Json { get; init; }
}

/// <summary>
/// `robust leaderboard`: RobustBench-style ranked tables from the results database — console, and with --out an HTML
/// page (sortable, self-contained) and Markdown; --json prints the tables as JSON on stdout instead of the console table.
/// </summary>
public sealed class LeaderboardCommand(LeaderboardRunOptions o)
{
    private static readonly Option<string?> DatasetOption = new("--dataset") { Description = "Only this dataset (e.g. fashion-mnist; another split as fashion-mnist:train)." };
    private static readonly Option<string?> NormOption = new("--norm") { Description = "Only this threat-model norm: linf, l2 or l1." };
    private static readonly Option<string?> EpsOption = new("--eps") { Description = "Only this ε (with --norm)." };
    private static readonly Option<bool> AllRunsOption = new("--all-runs") { Description = "One row per run instead of one per model (a model's row is otherwise its lowest robust accuracy)." };
    private static readonly ResultsDbOptions ResultsOptions = new("Results database to read.");
    private static readonly Option<string?> OutOption = new("--out") { Description = "Directory for leaderboard.html, leaderboard.md and leaderboard.json." };
    private static readonly Option<bool> JsonOption = new("--json") { Description = "Print the leaderboard as JSON on stdout (messages go to stderr)." };

    public static Command Definition()
    {
        var command = new Command("leaderboard", "Rank the recorded results (robust eval, certify, merge) RobustBench-style: clean, worst-case robust and certified accuracy per model, with links to the reports.")
        {
            DatasetOption, NormOption, EpsOption, AllRunsOption, OutOption, JsonOption,
        };
        ResultsOptions.AddTo(command, recording: false);
        CommandRunner.SetAction(command, p => new LeaderboardCommand(new LeaderboardRunOptions
        {
            Dataset = p.GetValue(DatasetOption),
            Norm = p.GetValue(NormOption),
            Epsilon = p.GetValue(EpsOption) is { } e ? SharedOptions.ParseDouble(e, "--eps") : null,
            AllRuns = p.GetValue(AllRunsOption),
            ResultsDb = p.GetValue(ResultsOptions.Database),
            Out = p.GetValue(OutOption),
            Json = p.GetValue(JsonOption),
        }).Execute());
        return command;
    }

    public int Execute()
    {
        // Every option is checked before the database is opened or anything is written.
        var norm = o.Norm is null ? (Norm?)null : NormNames.Parse(o.Norm);
        if (o.Epsilon is { } eps)
        {
            if (norm is null) throw new InputException("--eps: give --norm with --eps (an ε means nothing without its norm)");
            if (!double.IsFinite(eps) || eps < 0) throw new InputException($"--eps: must be a finite number ≥ 0, got {eps}");
        }
        if (o.Dataset is not null && string.IsNullOrWhiteSpace(o.Dataset)) throw new InputException("--dataset: the name is empty");
        if (o.ResultsDb is not null && string.IsNullOrWhiteSpace(o.ResultsDb)) throw new InputException("--results-db: the path is empty");
        var path = Path.GetFullPath(o.ResultsDb ?? ResultsStore.DefaultPath());
        var store = ResultsStore.Open(path, create: false);
        var query = new LeaderboardQuery { Dataset = o.Dataset, Norm = norm?.Name(), Epsilon = o.Epsilon, AllRuns = o.AllRuns };
        var records = store.Query(query.ToResultQuery());
        var board = LeaderboardBuilder.Build(records, query, store.Path);
        if (board.Tables.Count == 0) throw new InputException(NothingMessage(store, query));

        LeaderboardFiles? files = null;
        if (o.Out is not null)
        {
            using var outLock = OutputLock.Acquire(o.Out);
            files = LeaderboardWriter.WriteAll(board, o.Out);
        }
        if (o.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(board, JsonReportWriter.Options));
            if (files is not null) Console.Error.WriteLine($"robust: wrote {files.Html}");
            return ExitCodes.Ok;
        }
        foreach (var t in board.Tables) CommandRunner.Out.Write(ConsoleTable(t));
        if (files is not null) CommandRunner.Out.MarkupLine($"wrote [bold]{Markup.Escape(files.Html)}[/] and {Markup.Escape(Path.GetFileName(files.Markdown))}");
        return ExitCodes.Ok;
    }

    private static string NothingMessage(ResultsStore store, LeaderboardQuery query)
    {
        var all = store.Query();
        if (all.Count == 0) return $"{store.Path}: the results database holds no results yet (robust eval records each run)";
        var have = all.Select(r => $"{r.Dataset} {r.Norm} ε={r.Epsilon.ToString("0.#####", System.Globalization.CultureInfo.InvariantCulture)}")
            .Distinct().Order(StringComparer.Ordinal).Take(6).ToArray();
        var wanted = string.Join(" ", new[] { query.Dataset, query.Norm, query.Epsilon is { } e ? $"ε={e.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : null }.Where(x => x is not null));
        return $"{store.Path}: no results for {wanted} (it has: {string.Join(", ", have)}{(all.Select(r => (r.Dataset, r.Norm, r.Epsilon)).Distinct().Count() > have.Length ? ", ..." : "")})";
    }

    private static Table ConsoleTable(LeaderboardTable t)
    {
        var table = new Table().Title(Markup.Escape(t.Title))
            .AddColumn(new TableColumn("rank").RightAligned()).AddColumn("model").AddColumn(new TableColumn("clean").RightAligned())
            .AddColumn(new TableColumn("robust").RightAligned()).AddColumn(new TableColumn("certified").RightAligned())
            .AddColumn("attack set").AddColumn(new TableColumn("samples").RightAligned()).AddColumn("date");
        foreach (var r in t.Rows)
        {
            var model = $"{Markup.Escape(r.ModelName)} [grey]{r.ShortSha}[/]";
            if (r.Runs > 1) model += $" [grey]({r.Runs} runs)[/]";
            if (r.WarningCodes is { Count: > 0 } w) model += $" [yellow]⚠ {Markup.Escape(string.Join(",", w))}[/]";
            if (r.CertifiedAboveRobust) model += " [red]certified > robust[/]";
            table.AddRow(r.Rank.ToString(System.Globalization.CultureInfo.InvariantCulture), model, MarkdownReportWriter.Pct(r.CleanAccuracy),
                r.RobustAccuracy is { } rob ? $"[bold]{MarkdownReportWriter.Pct(rob)}[/]" : "—",
                r.CertifiedAccuracy is { } c ? $"{MarkdownReportWriter.Pct(c)} {Markup.Escape(r.CertificationMethod ?? "")}" : "—",
                Markup.Escape(r.AttackSet), r.SampleCount.ToString(System.Globalization.CultureInfo.InvariantCulture), LeaderboardWriterDate(r.Date));
        }
        if (t.SampleSetsDiffer) table.Caption("[yellow]rows evaluated on different sample sets[/]");
        return table;
    }

    private static string LeaderboardWriterDate(DateTimeOffset d) => d.ToUniversalTime().ToString("yyyy-MM-dd HH:mm", System.Globalization.CultureInfo.InvariantCulture);
}
