using System.Globalization;
using System.Net;
using System.Text;
using Robustness.Core;

namespace Robustness.Evaluation;

/// <summary>Pictures embedded in the HTML page (PNG bytes); any may be missing.</summary>
public sealed record HtmlAssets(
    byte[]? AccuracyPlot = null, byte[]? PerClassPlot = null, byte[]? Grid = null,
    IReadOnlyList<GalleryItem>? Gallery = null)
{
    /// <summary>Robust accuracy against the query budget (when query-based attacks ran).</summary>
    public byte[]? QueriesPlot { get; init; }
}

/// <summary>
/// One self-contained HTML page: inline CSS, summary tables, plots and a gallery embedded as base64 PNG, one inline
/// script (<see cref="ReportScript"/>: sortable tables, the gallery filter) and no external resources. Every string from
/// data, labels or file names goes through <see cref="E"/> (HTML-encoded).
/// </summary>
public static class HtmlReportWriter
{
    internal const string Css = """
        body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
        main{max-width:1200px;margin:0 auto;padding:24px}
        h1{font-size:26px;margin:0 0 4px} h2{font-size:19px;margin:28px 0 10px;border-bottom:2px solid #d8dce3;padding-bottom:4px}
        .sub{color:#5b6475;margin-bottom:18px}
        .cards{display:flex;gap:14px;flex-wrap:wrap}
        .card{background:#fff;border-radius:8px;padding:14px 18px;box-shadow:0 1px 3px rgba(0,0,0,.12);min-width:170px}
        .card .v{font-size:28px;font-weight:600} .card .k{color:#5b6475;font-size:13px}
        table{border-collapse:collapse;background:#fff;box-shadow:0 1px 3px rgba(0,0,0,.12);margin:6px 0;font-size:14px}
        th,td{padding:6px 12px;border-bottom:1px solid #e3e6eb;text-align:left;vertical-align:top}
        th{background:#eef0f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
        .warn{background:#fff7e6;border-left:5px solid #e6a100;padding:10px 14px;margin:8px 0;border-radius:4px}
        .warn code{font-weight:600} .ok{background:#eaf7ee;border-left:5px solid #2e9b50;padding:10px 14px;border-radius:4px}
        .plots img{max-width:100%;background:#fff;border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.12);margin:6px 0}
        .gallery{display:flex;flex-wrap:wrap;gap:12px}
        figure{margin:0;background:#fff;padding:8px;border-radius:6px;box-shadow:0 1px 3px rgba(0,0,0,.12)}
        figure img{image-rendering:pixelated;display:block} figcaption{font-size:12px;color:#5b6475;max-width:360px;margin-top:4px}
        .grid img{image-rendering:pixelated;background:#fff;max-width:100%}
        code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;overflow-wrap:break-word}
        """;

    public static string Render(RobustnessReport r, HtmlAssets? assets = null)
    {
        assets ??= new HtmlAssets();
        var p = r.Provenance;
        var sb = new StringBuilder();
        Head(sb, $"Robustness report — {p.ModelPath ?? p.ModelArch}");
        sb.Append("<h1>Robustness report</h1>");
        sb.Append($"<div class=\"sub\">Model <code>{E(p.ModelPath ?? p.ModelArch)}</code> on {E(p.DatasetName)} · {r.Total} samples · threat model {E(r.Norm)} ε = {N(r.Epsilon)}</div>\n");
        if (r.Shard is { } s) sb.Append($"<div class=\"warn\">This report covers shard {s.Index}/{s.Count} only; merge all shards for the full result.</div>");

        sb.Append("<div class=\"cards\">");
        bool multi = r.MultiLabel is not null;
        Card(sb, multi ? "clean subset accuracy" : "clean accuracy", Pct(r.CleanAccuracy));
        Card(sb, multi ? $"robust subset accuracy (ε = {N(r.Epsilon)})" : $"robust accuracy (ε = {N(r.Epsilon)})", Pct(r.RobustAccuracy));
        if (multi)
        {
            Card(sb, "clean Hamming accuracy", Pct(r.HammingAccuracy ?? 0));
            Card(sb, $"robust Hamming accuracy (ε = {N(r.Epsilon)})", Pct(r.RobustHammingAccuracy ?? 0));
            Card(sb, "mean labels flipped", N(r.MultiLabel!.MeanLabelsFlipped, "0.###"));
        }
        if (r.VerifiedAccuracy is { } verified) Card(sb, $"verified by IBP (ε = {N(r.Epsilon)})", Pct(verified));
        Card(sb, "max / mean ‖δ‖", $"{N(r.Perturbation.MaxNorm, "0.###")} / {N(r.Perturbation.MeanNorm, "0.###")}");
        if (r.Perturbation.MedianMinimumNorm is { } med) Card(sb, "median minimum norm", N(med, "0.####"));
        Card(sb, "warnings", r.Warnings.Count.ToString(CultureInfo.InvariantCulture));
        sb.Append("</div>\n");
        if (r.VerifiedAccuracy is { } proven)
            sb.Append($"<p><b>Attacks leave {Pct(r.RobustAccuracy)}, certificates prove {Pct(proven)}</b> (interval bound propagation): the true robust accuracy lies between.</p>\n");

        sb.Append("<h2>Warnings</h2>");
        if (r.Warnings.Count == 0) sb.Append("<div class=\"ok\">No sanity check fired.</div>");
        foreach (var w in r.Warnings)
            sb.Append($"<div class=\"warn\"><code>{E(w.Code)}</code> — {E(w.Message)}<br><b>What to do:</b> {E(w.Advice)}</div>");

        if (r.MultiLabel is null)
        {
            sb.Append("<h2>Attacks</h2><table><tr><th>attack</th><th>broke</th><th>robust after</th><th>robust accuracy after</th><th>seconds</th></tr>");
            foreach (var a in r.PerAttack)
                sb.Append($"<tr><td>{E(a.Name)}</td><td class=n>{a.Broken}</td><td class=n>{a.RobustAfter}</td><td class=n>{Pct(a.RobustAccuracyAfter)}</td><td class=n>{N(a.Seconds, "0.##")}</td></tr>");
        }
        else
        {
            sb.Append("<h2>Attacks</h2><table><tr><th>attack</th><th>broke (samples)</th><th>robust subset after</th><th>labels flipped</th><th>robust Hamming after</th><th>seconds</th></tr>");
            foreach (var a in r.PerAttack)
                sb.Append($"<tr><td>{E(a.Name)}</td><td class=n>{a.Broken}</td><td class=n>{Pct(a.RobustAccuracyAfter)}</td><td class=n>{a.LabelsFlipped}</td><td class=n>{Pct(a.RobustHammingAfter ?? 0)}</td><td class=n>{N(a.Seconds, "0.##")}</td></tr>");
        }
        sb.Append("</table>\n");

        sb.Append("<h2>Accuracy vs ε</h2>");
        if (assets.AccuracyPlot is { } ap) sb.Append($"<div class=\"plots\">{Img(ap, "robust accuracy versus epsilon")}</div>");
        bool certified = r.VerifiedAccuracy is not null;
        sb.Append(certified ? "<table><tr><th>ε</th><th>worst case</th><th>verified (IBP)</th>" : "<table><tr><th>ε</th><th>worst case</th>");
        foreach (var a in r.PerAttack) sb.Append($"<th>after {E(a.Name)}</th>");
        sb.Append("</tr>");
        foreach (var e in r.EpsSweep)
        {
            sb.Append($"<tr><td class=n>{N(e.Epsilon)}</td><td class=n><b>{Pct(e.RobustAccuracy)}</b></td>");
            if (certified) sb.Append($"<td class=n>{(e.VerifiedAccuracy is { } va ? Pct(va) : "–")}</td>");
            foreach (var a in e.PerAttack) sb.Append($"<td class=n>{Pct(a.RobustAccuracyAfter)}</td>");
            sb.Append("</tr>");
        }
        sb.Append("</table>\n");

        if (r.MultiLabel is { } m)
        {
            sb.Append("<h2>Multi-label</h2>");
            if (m.Goal is { } goal) sb.Append($"<p>Targeted: a sample is broken when the attack reaches its target set ({E(goal)}).</p>");
            else if (m.LabelStages.Count > 0) sb.Append($"<p>After the sample attacks, each label attack ({E(string.Join(", ", m.LabelStages))}) ran on every correct (sample, label) decision still standing, asked to flip that label; a decision is robust when no attack flipped it.</p>");
            else sb.Append("<p>No label attacks ran: per-label robustness counts only the labels the sample attacks flipped (an upper bound).</p>");
            sb.Append($"<p>Objectives on multi-label targets: {E(m.Objectives)}. Decision threshold {N(m.DecisionThreshold, "0.###")}.</p>");
            sb.Append("<table><tr><th>ε</th><th>robust subset</th><th>robust Hamming</th><th>mean labels flipped</th></tr>");
            foreach (var e in m.EpsSweep)
                sb.Append($"<tr><td class=n>{N(e.Epsilon)}</td><td class=n>{Pct(e.RobustSubsetAccuracy)}</td><td class=n><b>{Pct(e.RobustHammingAccuracy)}</b></td><td class=n>{N(e.MeanLabelsFlipped, "0.###")}</td></tr>");
            sb.Append("</table>");
            sb.Append("<table><tr><th>label</th><th>support</th><th>precision</th><th>recall</th><th>F1</th><th>precision under attack</th><th>recall under attack</th><th>F1 under attack</th></tr>");
            foreach (var l in m.PerLabel)
                sb.Append($"<tr><td>{E(l.Name)}</td><td class=n>{l.Support}</td><td class=n>{Pct(l.CleanPrecision)}</td><td class=n>{Pct(l.CleanRecall)}</td><td class=n>{Pct(l.CleanF1)}</td><td class=n>{Pct(l.RobustPrecision)}</td><td class=n>{Pct(l.RobustRecall)}</td><td class=n>{Pct(l.RobustF1)}</td></tr>");
            sb.Append($"<tr><td><b>micro</b></td><td></td><td></td><td></td><td class=n>{Pct(m.CleanMicroF1)}</td><td></td><td></td><td class=n>{Pct(m.RobustMicroF1)}</td></tr>");
            sb.Append("</table>\n");
        }

        if (r.Queries is { } q)
        {
            sb.Append("<h2>Queries</h2><p>One query is one sample through the model. Queries to success: the queries an attack had used when it first held a point's adversarial (over the points it broke).</p>");
            if (assets.QueriesPlot is { } qp) sb.Append($"<div class=\"plots\">{Img(qp, "robust accuracy versus query budget")}</div>");
            sb.Append("<table><tr><th>attack</th><th>budget</th><th>samples</th><th>queries (mean / max)</th><th>broke</th><th>to success: median</th><th>25–75 %</th><th>90 %</th></tr>");
            foreach (var a in q.PerAttack)
                sb.Append($"<tr><td>{E(a.Name)}</td><td class=n>{a.Budget?.ToString(CultureInfo.InvariantCulture) ?? "–"}</td><td class=n>{a.Samples}</td><td class=n>{N(a.Mean, "0.#")} / {a.Max}</td><td class=n>{a.Successes}</td>" +
                    (a.QueriesToSuccess is { } t ? $"<td class=n>{N(t.Median, "0.#")}</td><td class=n>{N(t.Q25, "0.#")}–{N(t.Q75, "0.#")}</td><td class=n>{N(t.Q90, "0.#")}</td>" : "<td>–</td><td>–</td><td>–</td>") + "</tr>");
            sb.Append("</table><table><tr><th>query budget</th>");
            foreach (var point in q.RobustAccuracyByBudget) sb.Append($"<td class=n>{point.Queries}</td>");
            sb.Append("</tr><tr><th>robust accuracy</th>");
            foreach (var point in q.RobustAccuracyByBudget) sb.Append($"<td class=n>{Pct(point.RobustAccuracy)}</td>");
            sb.Append("</tr></table><p>Below the budget the curve is an upper bound for a run with that budget: once an attack broke a point, later attacks did not run on it.</p>");
            if (q.ModelQueries is { } mq) sb.Append($"<p>The model answered {mq.ToString("N0", CultureInfo.InvariantCulture)} queries in all (attacks, clean passes, final verdicts, sanity checks).</p>");
            sb.Append('\n');
        }

        sb.Append(r.MultiLabel is null ? "<h2>Per class</h2>" : "<h2>Per label (decision accuracy)</h2>");
        if (assets.PerClassPlot is { } pc) sb.Append($"<div class=\"plots\">{Img(pc, "per-class clean and robust accuracy")}</div>");
        bool perClassVerified = r.PerClass.Any(c => c.Verified is not null);
        sb.Append($"<table><tr><th>class</th><th>label</th><th>count</th><th>clean</th><th>robust</th>{(perClassVerified ? "<th>verified</th>" : "")}</tr>");
        foreach (var c in r.PerClass)
            sb.Append($"<tr><td class=n>{c.Class}</td><td>{E(c.Label)}</td><td class=n>{c.Count}</td><td class=n>{Pct(c.CleanAccuracy)} ({c.CleanCorrect})</td><td class=n>{Pct(c.RobustAccuracy)} ({c.RobustCorrect})</td>"
                + (perClassVerified ? $"<td class=n>{(c.Verified is { } v ? $"{Pct(c.Count == 0 ? 0 : (double)v / c.Count)} ({v})" : "–")}</td>" : "") + "</tr>");
        sb.Append("</table>\n");

        if (assets.Gallery is { Count: > 0 } gallery) ReportGallery.Render(sb, gallery);
        if (assets.Grid is { } grid)
            sb.Append($"<h2>Overview</h2><p>Clean (top) and adversarial (bottom) per point, in the gallery's order; the bar underneath is red when the point was broken, green when it stayed robust.</p><div class=\"grid\">{Img(grid, "grid of clean and adversarial images", Math.Min(1050, 2 * PngWidth(grid)))}</div>\n");

        sb.Append("<h2>Sanity checks</h2><table><tr><th>check</th><th>scope</th><th>fired</th><th>measured</th><th>threshold</th><th>detail</th></tr>");
        foreach (var c in r.SanityChecks)
            sb.Append($"<tr><td><code>{E(c.Code)}</code></td><td>{E(c.Scope)}</td><td>{(c.Fired ? "<b>yes</b>" : "no")}</td><td class=n>{N(c.Measured, "0.####")}</td><td class=n>{N(c.Threshold, "0.####")}</td><td>{E(c.Detail)}</td></tr>");
        sb.Append("</table>\n");

        sb.Append("<h2>Provenance</h2><table>");
        void Row(string k, string htmlValue) => sb.Append($"<tr><th>{k}</th><td>{htmlValue}</td></tr>");
        Row("tool", E($"robustness {p.ToolVersion}"));
        Row("TorchSharp / libtorch", E($"{p.TorchSharpVersion} / {p.Libtorch}"));
        Row("device", E(p.Device));
        Row("seed", p.Seed.ToString(CultureInfo.InvariantCulture));
        Row("batch size", p.BatchSize.ToString(CultureInfo.InvariantCulture));
        Row("attack gradients", E(p.AttackPrecision) + (p.AttackPrecision == "float32" ? "" : " (points judged in float32)"));
        if (p.Certification is not null) Row("certification", E($"{p.Certification}: float64 interval bounds, last layer folded, widened for float32 rounding"));
        Row("dataset", $"{E(p.DatasetName)} (<code>{E(p.DatasetSource)}</code>)");
        Row("model", $"<code>{E(p.ModelPath ?? "(in memory)")}</code> ({E(p.ModelArch)})");
        if (p.ModelSha256 is not null) Row("model SHA-256", $"<code>{E(p.ModelSha256)}</code>");
        Row("samples", $"{p.SampleIndices.Count}");
        Row("wall time", N(p.WallSeconds, "0.#") + " s");
        Row("date", E(p.Date.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture)));
        foreach (var a in p.Attacks)
            Row($"attack {E(a.Name)}", $"<code>{E(string.Join(", ", a.Parameters.Select(kv => $"{kv.Key}={kv.Value}")))}</code>");
        sb.Append("</table>\n");
        Foot(sb);
        return sb.ToString();
    }

    /// <summary>Doctype, head (policy: nothing but this page's inline style, script and data: images), body with
    /// sortable tables, main.</summary>
    internal static void Head(StringBuilder sb, string title)
    {
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
        sb.Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">");
        sb.Append($"<title>{E(title)}</title><style>{Css}{ReportScript.Css}</style></head><body data-autosort><main>\n");
    }

    /// <summary>Closes main, adds the page's one script, closes the document.</summary>
    internal static void Foot(StringBuilder sb) => sb.Append($"</main>\n<script>{ReportScript.Js}</script>\n</body></html>\n");

    public static void Write(RobustnessReport report, string path, HtmlAssets? assets = null) =>
        AtomicFile.WriteAllText(path, Render(report, assets));

    /// <summary>HTML-encodes text (&lt;, &gt;, &amp;, quotes) for element content and attribute values.</summary>
    public static string E(string text) => WebUtility.HtmlEncode(text);

    internal static string Img(byte[] png, string alt, int? width = null) =>
        $"<img src=\"data:image/png;base64,{Convert.ToBase64String(png)}\" alt=\"{E(alt)}\"{(width is { } w ? $" width=\"{w}\"" : "")}>";

    /// <summary>Width from the PNG IHDR chunk (big-endian at byte 16), to show small pixel images enlarged.</summary>
    private static int PngWidth(byte[] png) => png.Length >= 24 ? (png[16] << 24) | (png[17] << 16) | (png[18] << 8) | png[19] : 0;

    internal static void Card(StringBuilder sb, string key, string value) =>
        sb.Append($"<div class=\"card\"><div class=\"v\">{E(value)}</div><div class=\"k\">{E(key)}</div></div>");

    private static string Pct(double v) => MarkdownReportWriter.Pct(v);

    private static string N(double v, string format = "0.#####") => v.ToString(format, CultureInfo.InvariantCulture);
}
