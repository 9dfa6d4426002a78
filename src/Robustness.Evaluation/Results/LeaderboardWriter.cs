using System.Globalization;
using System.Text;
using Robustness.Core;
using static Robustness.Evaluation.HtmlPage;

namespace Robustness.Evaluation;

/// <summary>Paths written by <see cref="LeaderboardWriter.WriteAll"/>.</summary>
public sealed record LeaderboardFiles(string Html, string Markdown, string Json);

/// <summary>
/// The leaderboard as Markdown and as one self-contained HTML page (sortable columns by an inline script, no external
/// resource). Links to reports are relative to the output directory, so the folder can be moved with the runs.
/// </summary>
public static class LeaderboardWriter
{
    public const string RankingRule = "One row per model: its lowest worst-case robust accuracy over its runs at this threat model " +
        "(re-runs of the same model, samples, attacks and seed count once, newest first). Certified: the best certified accuracy recorded for the model here.";

    public static LeaderboardFiles WriteAll(Leaderboard board, string directory)
    {
        var dir = Path.GetFullPath(directory);
        var files = new LeaderboardFiles(Path.Combine(dir, "leaderboard.html"), Path.Combine(dir, "leaderboard.md"), Path.Combine(dir, "leaderboard.json"));
        AtomicFile.WriteAllText(files.Json, System.Text.Json.JsonSerializer.Serialize(board, JsonReportWriter.Options));
        AtomicFile.WriteAllText(files.Markdown, Markdown(board, dir));
        AtomicFile.WriteAllText(files.Html, Html(board, dir));
        return files;
    }

    public static string Markdown(Leaderboard board, string outputDirectory)
    {
        var sb = new StringBuilder();
        sb.AppendLine("# Robustness leaderboard").AppendLine();
        sb.AppendLine($"{Count(board)} from `{MarkdownReportWriter.Escape(board.Source)}`, generated {Date(board.Generated)}{FilterText(board.Query)}.").AppendLine();
        foreach (var t in board.Tables)
        {
            sb.AppendLine($"## {MarkdownReportWriter.Escape(t.Title)}").AppendLine();
            foreach (var note in Notes(t)) sb.AppendLine($"> {note}").AppendLine();
            sb.AppendLine("| rank | model | clean | robust (worst case) | certified | attack set | samples | date | report |");
            sb.AppendLine("|---:|---|---:|---:|---:|---|---:|---|---|");
            foreach (var r in t.Rows)
            {
                var model = $"{MarkdownReportWriter.Escape(r.ModelName)} `{r.ShortSha}`";
                if (r.Runs > 1) model += $" ({r.Runs} runs)";
                if (r.WarningCodes is { Count: > 0 } w) model += $" ⚠ {MarkdownReportWriter.Escape(string.Join(", ", w))}";
                if (r.CertifiedAboveRobust) model += " **certified above robust: bug**";
                var link = ReportLink(r.ReportPath, outputDirectory);
                sb.AppendLine($"| {r.Rank} | {model} | {Pct(r.CleanAccuracy)} | {(r.RobustAccuracy is { } rob ? $"**{Pct(rob)}**" : "—")} | " +
                    $"{(r.CertifiedAccuracy is { } c ? $"{Pct(c)} ({MarkdownReportWriter.Escape(r.CertificationMethod ?? "?")})" : "—")} | " +
                    $"{MarkdownReportWriter.Escape(r.AttackSet.Replace(",", ", "))} | {r.SampleCount} | {Date(r.Date)} | {(link is null ? "(missing)" : $"[report]({link})")} |");
            }
            sb.AppendLine();
        }
        sb.AppendLine($"*{RankingRule}*");
        return sb.ToString();
    }

    public static string Html(Leaderboard board, string outputDirectory)
    {
        var sb = new StringBuilder();
        Open(sb, "Robustness leaderboard", "Robustness leaderboard",
            $"{E(Count(board))} · <code style=\"color:#c9cfdb\">{E(board.Source)}</code> · generated {E(Date(board.Generated))}{E(FilterText(board.Query))}");
        foreach (var t in board.Tables)
        {
            var id = "t-" + string.Concat(t.Title.Select(ch => char.IsAsciiLetterOrDigit(ch) ? char.ToLowerInvariant(ch) : '-'));
            sb.Append($"<h2 id=\"{E(id)}\">{E(t.Title)}</h2>");
            sb.Append($"<p class=\"note\">{t.Rows.Count} {(t.Rows.Count == 1 ? "model" : "models")}; click a column to sort.</p>");
            foreach (var note in Notes(t)) sb.Append($"<div class=\"banner warn\">{E(note)}</div>");
            sb.Append("<div class=\"panel\"><table class=\"sortable\"><thead><tr>");
            sb.Append(Th("rank", "Rank", true));
            sb.Append(Th("model", "Model", false));
            sb.Append(Th("clean", "Clean", true, "descending"));
            sb.Append(Th("robust", "Robust (worst case)", true, "descending", "per-sample worst case over the attack set at this ε"));
            sb.Append(Th("certified", "Certified", true, "descending", "proven robust at this ε (best recorded)"));
            sb.Append(Th("attacks", "Attack set", false));
            sb.Append(Th("samples", "Samples", true, "descending"));
            sb.Append(Th("date", "Date", false, "descending"));
            sb.Append("<th>Report</th></tr></thead><tbody>\n");
            foreach (var r in t.Rows)
            {
                sb.Append(r.Rank == 1 ? "<tr class=\"top\">" : "<tr>");
                sb.Append($"<td class=\"n rank\" data-v=\"{r.Rank}\">{r.Rank}</td>");
                sb.Append($"<td class=\"model\" data-v=\"{E(r.ModelName.ToLowerInvariant())}\"><b>{E(r.ModelName)}</b> <span class=\"sha\" title=\"SHA-256 {E(r.ModelSha256)}\">{E(r.ShortSha)}</span>");
                if (r.WarningCodes is { Count: > 0 } w)
                    sb.Append($"<span class=\"badge warn\" title=\"{E(string.Join(", ", w))}\">⚠ {w.Count} {(w.Count == 1 ? "warning" : "warnings")}</span>");
                if (r.CertifiedAboveRobust)
                    sb.Append("<span class=\"badge bug\" title=\"a certified accuracy above the empirical robust accuracy on the same samples: one of them is wrong\">certified &gt; robust</span>");
                if (r.Runs > 1) sb.Append($"<div class=\"runs\">worst of {r.Runs} runs</div>");
                sb.Append("</td>");
                sb.Append($"<td class=\"n\" data-v=\"{V(r.CleanAccuracy)}\">{Pct(r.CleanAccuracy)}</td>");
                sb.Append(r.RobustAccuracy is { } rob
                    ? $"<td class=\"n\" data-v=\"{V(rob)}\"><b>{Pct(rob)}</b>{Bar(rob, "")}</td>"
                    : "<td class=\"n\" data-v=\"\"><span class=\"dash\">—</span></td>");
                sb.Append(r.CertifiedAccuracy is { } c
                    ? $"<td class=\"n\" data-v=\"{V(c)}\" title=\"proven by {E(r.CertificationMethod ?? "?")}\">{Pct(c)} <span class=\"sha\">{E(r.CertificationMethod ?? "")}</span></td>"
                    : "<td class=\"n\" data-v=\"\"><span class=\"dash\">—</span></td>");
                sb.Append($"<td class=\"wrap\">{E(r.AttackSet.Replace(",", ", "))}</td>");
                sb.Append($"<td class=\"n\" data-v=\"{r.SampleCount}\" title=\"seed {r.Seed}; samples SHA-256 {E(r.SamplesSha256)}\">{r.SampleCount:N0}</td>");
                sb.Append($"<td data-v=\"{E(r.Date.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture))}\" title=\"{E(Date(r.Date))}\">{E(r.Date.ToUniversalTime().ToString("yyyy-MM-dd", CultureInfo.InvariantCulture))}</td>");
                var link = ReportLink(r.ReportPath, outputDirectory);
                sb.Append(link is null
                    ? $"<td><span class=\"dash\" title=\"{E(r.ReportPath ?? "no report recorded")}\">missing</span></td>"
                    : $"<td><a href=\"{E(link)}\">report</a></td>");
                sb.Append("</tr>\n");
            }
            sb.Append("</tbody></table></div>\n");
        }
        Close(sb, $"{E(RankingRule)}<br>Robust accuracy is an upper bound on true robustness (attacks can miss); certified accuracy is a lower bound. Generated by robust {E(ToolInfo.Version)}.");
        return sb.ToString();
    }

    private static string Bar(double v, string cls) =>
        $"<span class=\"bar{cls}\"><i style=\"width:{Math.Clamp(v * 100, 0, 100).ToString("0.#", CultureInfo.InvariantCulture)}%\"></i></span>";

    private static IEnumerable<string> Notes(LeaderboardTable t)
    {
        if (t.SampleSetsDiffer) yield return "These models were evaluated on different sample sets (see the samples column): differences of a few points may be sampling noise.";
        if (t.AttackSetsDiffer) yield return "These models were attacked with different attack sets: a weaker attack set overestimates robustness.";
        if (t.Rows.Any(r => r.CertifiedAboveRobust)) yield return "A certified accuracy is above the empirical robust accuracy on the same samples: a proof or an attack is wrong (report it).";
    }

    private static string Count(Leaderboard b)
    {
        int rows = b.Tables.Sum(t => t.Rows.Count);
        return $"{rows} {(rows == 1 ? "entry" : "entries")} in {b.Tables.Count} {(b.Tables.Count == 1 ? "table" : "tables")}";
    }

    private static string FilterText(LeaderboardQuery q)
    {
        var parts = new List<string>();
        if (q.Dataset is not null) parts.Add($"dataset {q.Dataset}");
        if (q.Norm is not null) parts.Add($"norm {q.Norm}");
        if (q.Epsilon is { } e) parts.Add($"ε = {Num(e)}");
        if (q.AllRuns) parts.Add("every run");
        return parts.Count == 0 ? "" : " · " + string.Join(", ", parts);
    }

    internal static string Date(DateTimeOffset d) => d.ToUniversalTime().ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture);
}
