using System.Globalization;
using System.Text;
using Robustness.Core;
using static Robustness.Evaluation.HtmlPage;

namespace Robustness.Evaluation;

/// <summary>Paths written by <see cref="ComparisonWriter.WriteAll"/>.</summary>
public sealed record ComparisonFiles(string Html, string Markdown, string Json);

/// <summary>
/// A <see cref="ReportComparison"/> as Markdown and as one self-contained HTML page. Every report after the first is
/// shown with its difference to the first (the baseline) in percentage points: higher is marked up (green), lower down (red).
/// </summary>
public static class ComparisonWriter
{
    public static ComparisonFiles WriteAll(ReportComparison comparison, string directory)
    {
        var dir = Path.GetFullPath(directory);
        var files = new ComparisonFiles(Path.Combine(dir, "compare.html"), Path.Combine(dir, "compare.md"), Path.Combine(dir, "compare.json"));
        AtomicFile.WriteAllText(files.Json, Json(comparison));
        AtomicFile.WriteAllText(files.Markdown, Markdown(comparison, dir));
        AtomicFile.WriteAllText(files.Html, Html(comparison, dir));
        return files;
    }

    /// <summary>The comparison without the reports' per-sample lists (which the report files already hold).</summary>
    public static string Json(ReportComparison c) => System.Text.Json.JsonSerializer.Serialize(new
    {
        reports = c.Reports.Select(r => new
        {
            label = r.Label,
            source = r.Source,
            model = r.Report.Provenance.ModelPath,
            model_sha256 = r.Report.Provenance.ModelSha256,
            dataset = r.Report.Provenance.DatasetName,
            samples = r.Report.Total,
            norm = r.Report.Norm,
            epsilon = r.Report.Epsilon,
            attacks = r.Report.Provenance.Attacks.Select(a => a.Name),
            seed = r.Report.Provenance.Seed,
            clean_accuracy = r.Report.CleanAccuracy,
            robust_accuracy = r.Report.RobustAccuracy,
        }),
        baseline = c.Reports[0].Label,
        incompatibilities = c.Incompatibilities,
        notes = c.Notes,
        headline = Rows(c.Headline),
        eps_sweep = Rows(c.Sweep),
        per_attack = Rows(c.Stages),
        per_class = c.PerClass.Select(k => new { @class = k.Class, label = k.Label, clean = k.Clean.Values, robust = k.Robust.Values }),
        warnings = c.Warnings.Select(w => new { code = w.Code, present_in = w.PresentIn, message = w.Message }),
        paired = c.Paired?.Select(p => new
        {
            other = c.Reports[p.Other].Label, what = p.What, epsilon = p.Epsilon, both = p.Both, only_baseline = p.OnlyBaseline,
            only_other = p.OnlyOther, neither = p.Neither, mcnemar_p = p.PValue, significant = p.Significant,
        }),
    }, JsonReportWriter.Options);

    private static IEnumerable<object> Rows(IEnumerable<ComparisonRow> rows) =>
        rows.Select(r => new { label = r.Label, values = r.Values, delta_vs_baseline = Enumerable.Range(0, r.Values.Count).Select(r.Delta) });

    /// <summary>One sentence per other report: did it help, by how much, and is that more than noise.</summary>
    public static IReadOnlyList<(string Text, int Direction)> Verdicts(ReportComparison c)
    {
        var list = new List<(string, int)>();
        var b = c.Reports[0];
        for (int i = 1; i < c.Reports.Count; i++)
        {
            var o = c.Reports[i];
            double dr = o.Report.RobustAccuracy - b.Report.RobustAccuracy, dc = o.Report.CleanAccuracy - b.Report.CleanAccuracy;
            var text = $"{o.Label} vs {b.Label}: robust accuracy {Points(dr)} points ({Pct(b.Report.RobustAccuracy)} → {Pct(o.Report.RobustAccuracy)}), clean {Points(dc)} points";
            var pair = c.Paired?.FirstOrDefault(p => p.Other == i && p.Epsilon == b.Report.Epsilon && b.Report.Epsilon == o.Report.Epsilon);
            int direction = Math.Sign(Math.Round(dr * 100, 2));
            if (pair is not null)
            {
                text += $"; on the same {pair.Both + pair.OnlyBaseline + pair.OnlyOther + pair.Neither} samples {pair.OnlyOther} are robust only in {o.Label} and {pair.OnlyBaseline} only in {b.Label} " +
                        $"(McNemar p = {P(pair.PValue)}: {(pair.Significant ? "unlikely to be noise" : "could be noise")})";
                if (!pair.Significant) direction = 0;
            }
            else text += " (different samples: no paired test)";
            list.Add((text + ".", direction));
        }
        return list;
    }

    public static string Markdown(ReportComparison c, string outputDirectory)
    {
        var sb = new StringBuilder();
        var labels = c.Reports.Select(r => MarkdownReportWriter.Escape(r.Label)).ToArray();
        sb.AppendLine($"# Robustness comparison: {string.Join(" vs ", labels)}").AppendLine();
        sb.AppendLine($"Baseline: **{labels[0]}**. Differences are in percentage points against it (▲ higher, ▼ lower).").AppendLine();
        foreach (var i in c.Incompatibilities) sb.AppendLine($"> **Not comparable:** {MarkdownReportWriter.Escape(i)} (compared anyway, as asked).").AppendLine();
        foreach (var n in c.Notes) sb.AppendLine($"> Note: {MarkdownReportWriter.Escape(n)}").AppendLine();
        foreach (var (text, _) in Verdicts(c)) sb.AppendLine($"- {MarkdownReportWriter.Escape(text)}");
        sb.AppendLine();

        void Table(string title, IReadOnlyList<ComparisonRow> rows)
        {
            if (rows.Count == 0) return;
            sb.AppendLine($"## {title}").AppendLine();
            sb.AppendLine($"| | {string.Join(" | ", labels)} |");
            sb.AppendLine($"|---|{string.Concat(labels.Select(_ => "---:|"))}");
            foreach (var r in rows)
                sb.AppendLine($"| {MarkdownReportWriter.Escape(r.Label)} | {string.Join(" | ", Enumerable.Range(0, r.Values.Count).Select(i => MdCell(r, i)))} |");
            sb.AppendLine();
        }
        Table("Headline", c.Headline);
        Table("Accuracy vs ε (worst case)", c.Sweep);
        Table("Attack stages at the main ε (cumulative)", c.Stages);

        if (c.Paired is { Count: > 0 } paired)
        {
            sb.AppendLine("## Paired on the same samples").AppendLine();
            sb.AppendLine("| compared | measure | both | only baseline | only other | neither | McNemar p |");
            sb.AppendLine("|---|---|---:|---:|---:|---:|---:|");
            foreach (var p in paired)
                sb.AppendLine($"| {labels[p.Other]} vs {labels[0]} | {MarkdownReportWriter.Escape(p.What)} | {p.Both} | {p.OnlyBaseline} | {p.OnlyOther} | {p.Neither} | {P(p.PValue)}{(p.Significant ? " *" : "")} |");
            sb.AppendLine().AppendLine("\\* p < 0.05: the difference is unlikely to be sampling noise.").AppendLine();
        }

        sb.AppendLine("## Per class").AppendLine();
        sb.AppendLine($"| class | label | {string.Join(" | ", labels.Select(l => $"{l} clean | {l} robust"))} |");
        sb.AppendLine($"|---:|---|{string.Concat(labels.Select(_ => "---:|---:|"))}");
        foreach (var k in c.PerClass)
            sb.AppendLine($"| {k.Class} | {MarkdownReportWriter.Escape(k.Label)} | {string.Join(" | ", Enumerable.Range(0, labels.Length).Select(i => $"{MdCell(k.Clean, i)} | {MdCell(k.Robust, i)}"))} |");
        sb.AppendLine();

        sb.AppendLine("## Warnings").AppendLine();
        if (c.Warnings.Count == 0) sb.AppendLine("No report raised a warning.").AppendLine();
        else
        {
            sb.AppendLine($"| warning | {string.Join(" | ", labels)} |");
            sb.AppendLine($"|---|{string.Concat(labels.Select(_ => "---|"))}");
            foreach (var w in c.Warnings)
                sb.AppendLine($"| `{MarkdownReportWriter.Escape(w.Code)}` | {string.Join(" | ", w.PresentIn.Select(x => x ? "⚠ yes" : "—"))} |");
            sb.AppendLine();
        }

        sb.AppendLine("## Reports").AppendLine();
        sb.AppendLine("| | model | SHA-256 | samples | threat model | attacks | seed | date | report |");
        sb.AppendLine("|---|---|---|---:|---|---|---:|---|---|");
        foreach (var r in c.Reports)
        {
            var p = r.Report.Provenance;
            var link = ReportLink(r.Source, outputDirectory);
            sb.AppendLine($"| {MarkdownReportWriter.Escape(r.Label)} | {MarkdownReportWriter.Escape(ResultRecord.ModelNameOf(p.ModelPath, p.ModelArch))} | `{Short(p.ModelSha256)}` | {r.Report.Total} | " +
                $"{MarkdownReportWriter.Escape(ReportComparison.Threat(r.Report))} | {MarkdownReportWriter.Escape(string.Join(", ", p.Attacks.Select(a => a.Name)))} | {p.Seed} | " +
                $"{LeaderboardWriter.Date(p.Date)} | {(link is null ? "—" : $"[report]({link})")} |");
        }
        return sb.ToString();
    }

    public static string Html(ReportComparison c, string outputDirectory)
    {
        var sb = new StringBuilder();
        var labels = c.Reports.Select(r => r.Label).ToArray();
        Open(sb, $"Robustness comparison — {string.Join(" vs ", labels)}", "Did it help?",
            $"{E(string.Join(" vs ", labels))} · baseline <b>{E(labels[0])}</b> · differences in percentage points against it");
        foreach (var i in c.Incompatibilities) sb.Append($"<div class=\"banner bad\"><b>Not comparable:</b> {E(i)}. Compared anyway, as asked.</div>");
        foreach (var n in c.Notes) sb.Append($"<div class=\"banner warn\">Note: {E(n)}.</div>");

        sb.Append("<div class=\"cards\">");
        for (int i = 0; i < c.Reports.Count; i++)
        {
            var r = c.Reports[i].Report;
            sb.Append($"<div class=\"card\"><div class=\"k\">{E(labels[i])}{(i == 0 ? " (baseline)" : "")} · {E(ResultRecord.ModelNameOf(r.Provenance.ModelPath, r.Provenance.ModelArch))} <span class=\"sha\">{E(Short(r.Provenance.ModelSha256))}</span></div>");
            sb.Append($"<div class=\"v\">{Pct(r.RobustAccuracy)}{(i > 0 ? DeltaSpan(r.RobustAccuracy - c.Reports[0].Report.RobustAccuracy) : "")}</div>");
            sb.Append($"<div class=\"t\">robust at {E(ReportComparison.Threat(r))} · clean {Pct(r.CleanAccuracy)}{(i > 0 ? DeltaSpan(r.CleanAccuracy - c.Reports[0].Report.CleanAccuracy) : "")} · {r.Total:N0} samples</div></div>");
        }
        sb.Append("</div>");
        foreach (var (text, direction) in Verdicts(c))
            sb.Append($"<div class=\"banner {(direction > 0 ? "ok" : direction < 0 ? "bad" : "warn")}\">{E(text)}</div>");

        void Table(string title, IReadOnlyList<ComparisonRow> rows, string? note = null)
        {
            if (rows.Count == 0) return;
            sb.Append($"<h2>{E(title)}</h2>");
            if (note is not null) sb.Append($"<p class=\"note\">{E(note)}</p>");
            sb.Append("<div class=\"panel\"><table class=\"fixed\"><thead><tr><th></th>");
            foreach (var l in labels) sb.Append($"<th class=\"n\">{E(l)}</th>");
            sb.Append("</tr></thead><tbody>");
            foreach (var r in rows)
            {
                sb.Append($"<tr><td>{E(r.Label)}</td>");
                for (int i = 0; i < r.Values.Count; i++) sb.Append(HtmlCell(r, i));
                sb.Append("</tr>");
            }
            sb.Append("</tbody></table></div>\n");
        }
        Table("Headline", c.Headline);
        Table("Accuracy vs ε", c.Sweep, "Worst case over each report's attack set; — where a report did not evaluate that ε.");
        Table("Attack stages at the main ε", c.Stages, "Robust accuracy after each attack and every attack before it (AutoAttack's cumulative accounting).");

        if (c.Paired is { Count: > 0 } paired)
        {
            sb.Append("<h2>Paired on the same samples</h2><p class=\"note\">Per sample: robust (or, for clean, correct) in both reports, only in one, or in neither. " +
                      "McNemar's exact test asks whether the discordant samples split more unevenly than chance; p &lt; 0.05 is marked.</p>");
            sb.Append("<div class=\"panel\"><table><thead><tr><th>compared</th><th>measure</th><th class=\"n\">both</th><th class=\"n\">only baseline</th><th class=\"n\">only other</th><th class=\"n\">neither</th><th class=\"n\">McNemar p</th></tr></thead><tbody>");
            foreach (var p in paired)
            {
                var cls = !p.Significant ? "" : p.OnlyOther > p.OnlyBaseline ? " up" : " down";
                sb.Append($"<tr><td>{E(labels[p.Other])} vs {E(labels[0])}</td><td>{E(p.What)}</td><td class=\"n\">{p.Both}</td><td class=\"n\">{p.OnlyBaseline}</td><td class=\"n\">{p.OnlyOther}</td><td class=\"n\">{p.Neither}</td>" +
                          $"<td class=\"n{cls}\">{E(P(p.PValue))}{(p.Significant ? " ✱" : "")}</td></tr>");
            }
            sb.Append("</tbody></table></div>\n");
        }

        sb.Append("<h2>Per class</h2><p class=\"note\">Click a column to sort.</p><div class=\"panel\"><table class=\"sortable\"><thead><tr>");
        sb.Append(Th("class", "Class", true)).Append(Th("label", "Label", false));
        for (int i = 0; i < labels.Length; i++)
            sb.Append(Th($"clean{i}", $"{labels[i]} clean", true, "descending")).Append(Th($"robust{i}", $"{labels[i]} robust", true, "descending"));
        sb.Append("</tr></thead><tbody>");
        foreach (var k in c.PerClass)
        {
            sb.Append($"<tr><td class=\"n\" data-v=\"{k.Class}\">{k.Class}</td><td>{E(k.Label)}</td>");
            for (int i = 0; i < labels.Length; i++) sb.Append(HtmlCell(k.Clean, i)).Append(HtmlCell(k.Robust, i));
            sb.Append("</tr>");
        }
        sb.Append("</tbody></table></div>\n");

        sb.Append("<h2>Warnings</h2>");
        if (c.Warnings.Count == 0) sb.Append("<div class=\"banner ok\">No report raised a warning.</div>");
        else
        {
            sb.Append("<div class=\"panel\"><table><thead><tr><th>warning</th>");
            foreach (var l in labels) sb.Append($"<th>{E(l)}</th>");
            sb.Append("<th>what it means</th></tr></thead><tbody>");
            foreach (var w in c.Warnings)
            {
                sb.Append($"<tr><td><code>{E(w.Code)}</code></td>");
                foreach (var present in w.PresentIn) sb.Append(present ? "<td class=\"down\">⚠ raised</td>" : "<td class=\"dash\">—</td>");
                sb.Append($"<td style=\"white-space:normal\">{E(w.Message)}</td></tr>");
            }
            sb.Append("</tbody></table></div>\n");
        }

        sb.Append("<h2>Reports</h2><div class=\"panel\"><table><thead><tr><th></th><th>model</th><th>SHA-256</th><th class=\"n\">samples</th><th>threat model</th><th>attacks</th><th class=\"n\">seed</th><th>date</th><th>report</th></tr></thead><tbody>");
        foreach (var r in c.Reports)
        {
            var p = r.Report.Provenance;
            var link = ReportLink(r.Source, outputDirectory);
            sb.Append($"<tr><td><b>{E(r.Label)}</b></td><td>{E(ResultRecord.ModelNameOf(p.ModelPath, p.ModelArch))}</td><td><span class=\"sha\" title=\"{E(p.ModelSha256 ?? "")}\">{E(Short(p.ModelSha256))}</span></td>" +
                      $"<td class=\"n\">{r.Report.Total:N0}</td><td>{E(ReportComparison.Threat(r.Report))}</td><td>{E(string.Join(", ", p.Attacks.Select(a => a.Name)))}</td><td class=\"n\">{p.Seed}</td>" +
                      $"<td>{E(LeaderboardWriter.Date(p.Date))}</td><td>{(link is null ? "<span class=\"dash\">—</span>" : $"<a href=\"{E(link)}\">report</a>")}</td></tr>");
        }
        sb.Append("</tbody></table></div>\n");
        Close(sb, $"Robust accuracy is measured by attacks: an upper bound on true robustness. Generated by robust {E(ToolInfo.Version)}.");
        return sb.ToString();
    }

    private static string MdCell(ComparisonRow r, int i)
    {
        if (r.Values[i] is not { } v) return "—";
        bool norm = r.Label == MinimumNormLabel;
        var text = norm ? Num(v, "0.####") : Pct(v);
        if (i == 0 || r.Delta(i) is not { } d) return text;
        var delta = norm ? (d >= 0 ? "+" : "−") + Num(Math.Abs(d), "0.####") : Points(d);
        return DeltaClass(d) switch { "up" => $"{text} ▲ {delta}", "down" => $"{text} ▼ {delta}", _ => $"{text} (±0)" };
    }

    private static string HtmlCell(ComparisonRow r, int i)
    {
        if (r.Values[i] is not { } v) return "<td class=\"n\" data-v=\"\"><span class=\"dash\">—</span></td>";
        var text = r.Label == MinimumNormLabel ? Num(v, "0.####") : Pct(v);
        if (i == 0 || r.Delta(i) is not { } d) return $"<td class=\"n\" data-v=\"{V(v)}\">{text}</td>";
        var cls = DeltaClass(d);
        var delta = r.Label == MinimumNormLabel ? (d >= 0 ? "+" : "−") + Num(Math.Abs(d), "0.####") : Points(d);
        return $"<td class=\"n{(cls == "same" ? "" : " " + cls)}\" data-v=\"{V(v)}\">{text}<span class=\"delta {cls}\">{E(delta)}</span></td>";
    }

    private const string MinimumNormLabel = ReportComparison.MinimumNormLabel;

    private static string DeltaSpan(double d) => $"<span class=\"delta {DeltaClass(d)}\">{E(Points(d))}</span>";

    internal static string P(double p) => p < 0.0001 ? p.ToString("0.0e0", CultureInfo.InvariantCulture) : p.ToString("0.####", CultureInfo.InvariantCulture);

    internal static string Short(string? sha) => sha is null ? "—" : sha.Length > 8 ? sha[..8] : sha;
}
