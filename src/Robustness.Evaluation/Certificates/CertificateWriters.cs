using System.Globalization;
using System.Text;
using System.Text.Json;
using Robustness.Core;
using ScottPlot;

namespace Robustness.Evaluation;

/// <summary>certificate.json: snake_case, the same conventions as report.json.</summary>
public static class JsonCertificateWriter
{
    public static string Serialize(CertificateReport report) => JsonSerializer.Serialize(report, JsonReportWriter.Options);

    public static void Write(CertificateReport report, string path) => AtomicFile.WriteAllText(path, Serialize(report));

    public static CertificateReport Read(string path)
    {
        if (!File.Exists(path)) throw new InputException($"{path}: certificate file not found");
        try
        {
            var report = JsonSerializer.Deserialize<CertificateReport>(File.ReadAllText(path), JsonReportWriter.Options)
                ?? throw new InputException($"{path}: empty certificate");
            if (report.SchemaVersion > CertificateReport.CurrentSchemaVersion)
                throw new InputException($"{path}: schema_version {report.SchemaVersion} is newer than this tool understands ({CertificateReport.CurrentSchemaVersion})");
            return report;
        }
        catch (JsonException e)
        {
            throw new InputException($"{path}: not a certificate ({e.Message})", e);
        }
    }
}

/// <summary>Headline lines shared by the Markdown and HTML pages and the console summary.</summary>
public static class CertificateSummary
{
    /// <summary>True for the bound-propagation methods (ibp, crown-ibp), which verify at a fixed ε.</summary>
    public static bool Verifies(CertificateReport r) => r.Method != "smoothing";

    public static string Title(CertificateReport r) => Verifies(r)
        ? $"{(r.Method == "crown-ibp" ? "CROWN-IBP" : "IBP")} verification, L∞ ε = {N(r.Epsilon ?? 0)}"
        : $"Randomized smoothing, L2, σ = {r.Provenance.Parameters.GetValueOrDefault("sigma", "?")}";

    public static IReadOnlyList<SummaryRow> Rows(CertificateReport r)
    {
        var rows = new List<SummaryRow>
        {
            new("method", Title(r)),
            new("points", r.Total.ToString(CultureInfo.InvariantCulture)),
            new(CertificateSummary.Verifies(r) ? "clean accuracy" : "clean accuracy (smoothed)", Pct(r.CleanAccuracy)),
        };
        if (r.BaseCleanAccuracy is { } b) rows.Add(new("clean accuracy (base, no noise)", Pct(b)));
        if (r.VerifiedAccuracy is { } v) rows.Add(new($"verified accuracy (ε = {N(r.Epsilon ?? 0)})", Pct(v)));
        if (r.CertifiedAccuracy is { } c) rows.Add(new("certified accuracy (r = 0)", Pct(c)));
        if (r.Method == "smoothing")
        {
            rows.Add(new("abstention rate", Pct(r.AbstentionRate)));
            foreach (var radius in TableRadii)
                rows.Add(new($"  certified at r = {N(radius)}", Pct(At(r, radius))));
        }
        else if (r.CertifiedAccuracyByRadius.Count > 1)
            rows.Add(new("verified by ε", string.Join("  ", r.CertifiedAccuracyByRadius.Select(x => $"{N(x.Radius)}: {Pct(x.Accuracy)}"))));
        if (r.EmpiricalCheck is { } e)
            foreach (var x in e.Radii)
                rows.Add(new($"  empirical ({e.Attack}) at {N(x.Radius)}", $"{Pct(x.EmpiricalRobust)} (certified {Pct(x.Certified)} on {e.Points} points{(x.Violations > 0 ? $", {x.Violations} VIOLATIONS" : "")})"));
        rows.Add(new("seconds per point", r.Provenance.SecondsPerPoint.ToString("0.###", CultureInfo.InvariantCulture)));
        foreach (var w in r.Warnings) rows.Add(new($"WARNING {w.Code}", w.Message));
        return rows;
    }

    public static readonly double[] TableRadii = [0, 0.25, 0.5, 0.75, 1.0];

    /// <summary>Certified accuracy at radius r (the fraction of points certified with radius ≥ r).</summary>
    public static double At(CertificateReport r, double radius) =>
        r.Total == 0 ? 0 : (double)r.Samples.Count(s => s.Certified && s.Radius >= radius) / r.Total;

    internal static string Pct(double v) => MarkdownReportWriter.Pct(v);
    internal static string N(double v) => v.ToString("0.####", CultureInfo.InvariantCulture);
}

public static class MarkdownCertificateWriter
{
    public static string Render(CertificateReport r)
    {
        var sb = new StringBuilder();
        var p = r.Provenance;
        string Esc(string s) => MarkdownReportWriter.Escape(s);
        sb.AppendLine($"# Certificate: {Esc(CertificateSummary.Title(r))}").AppendLine();
        sb.AppendLine($"Model {Esc(p.ModelPath ?? p.ModelArch)} on {Esc(p.DatasetName)}, {r.Total} points.").AppendLine();
        sb.AppendLine("| | value |").AppendLine("|---|---|");
        foreach (var row in CertificateSummary.Rows(r).Where(x => !x.Key.StartsWith("WARNING", StringComparison.Ordinal)))
            sb.AppendLine($"| {Esc(row.Key.Trim())} | {Esc(row.Value)} |");
        sb.AppendLine();

        sb.AppendLine("## Warnings").AppendLine();
        if (r.Warnings.Count == 0) sb.AppendLine("None.");
        foreach (var w in r.Warnings) sb.AppendLine($"- **{Esc(w.Code)}**: {Esc(w.Message)} *What to do:* {Esc(w.Advice)}");
        sb.AppendLine();

        if (r.SampleSize is { } cost) sb.AppendLine("## Sample size").AppendLine().AppendLine(Esc(cost.Note)).AppendLine();

        sb.AppendLine(CertificateSummary.Verifies(r) ? "## Verified accuracy by ε" : "## Certified accuracy by radius").AppendLine();
        sb.AppendLine(CertificateSummary.Verifies(r) ? "| ε | verified | points |" : "| radius | certified | points |").AppendLine("|---|---|---|");
        var table = CertificateSummary.Verifies(r) ? r.CertifiedAccuracyByRadius : r.CertifiedAccuracyByRadius.Where(x => CertificateSummary.TableRadii.Contains(x.Radius));
        foreach (var x in table) sb.AppendLine($"| {CertificateSummary.N(x.Radius)} | {CertificateSummary.Pct(x.Accuracy)} | {x.Count} |");
        sb.AppendLine();

        if (r.EmpiricalCheck is { } e)
        {
            sb.AppendLine($"## Certified vs empirical ({Esc(e.Attack)}, {e.Points} points): {(e.Passed ? "passed" : "**FAILED**")}").AppendLine();
            sb.AppendLine(Esc(e.Definition)).AppendLine();
            sb.AppendLine("| radius | certified | empirical robust | strict | violations |").AppendLine("|---|---|---|---|---|");
            foreach (var x in e.Radii)
                sb.AppendLine($"| {CertificateSummary.N(x.Radius)} | {CertificateSummary.Pct(x.Certified)} | {CertificateSummary.Pct(x.EmpiricalRobust)} | {CertificateSummary.Pct(x.EmpiricalRobustStrict)} | {x.Violations} |");
            sb.AppendLine();
        }

        sb.AppendLine("## Per class").AppendLine();
        sb.AppendLine("| class | label | count | clean | certified | abstained |").AppendLine("|---|---|---|---|---|---|");
        foreach (var c in r.PerClass)
            sb.AppendLine($"| {c.Class} | {Esc(c.Label)} | {c.Count} | {CertificateSummary.Pct(c.CleanAccuracy)} | {CertificateSummary.Pct(c.CertifiedAccuracy)} | {c.Abstained} |");
        sb.AppendLine();

        sb.AppendLine("## Provenance").AppendLine().AppendLine("| field | value |").AppendLine("|---|---|");
        foreach (var (k, v) in ProvenanceRows(r)) sb.AppendLine($"| {Esc(k)} | {Esc(v)} |");
        return sb.ToString();
    }

    internal static IEnumerable<(string, string)> ProvenanceRows(CertificateReport r)
    {
        var p = r.Provenance;
        yield return ("tool", $"robustness {p.ToolVersion}");
        yield return ("TorchSharp / libtorch", $"{p.TorchSharpVersion} / {p.Libtorch}");
        yield return ("device", p.Device);
        yield return ("seed", p.Seed.ToString(CultureInfo.InvariantCulture));
        yield return ("batch size", p.BatchSize.ToString(CultureInfo.InvariantCulture));
        yield return ("dataset", $"{p.DatasetName} ({p.DatasetSource})");
        yield return ("model", p.ModelPath is null ? p.ModelArch : $"{p.ModelPath} ({p.ModelArch})");
        if (p.ModelSha256 is not null) yield return ("model SHA-256", p.ModelSha256);
        yield return ("points", $"{p.SampleIndices.Count} (listed in certificate.json)");
        yield return ("wall time", p.WallSeconds.ToString("0.#", CultureInfo.InvariantCulture) + " s");
        yield return ("seconds per point", p.SecondsPerPoint.ToString("0.####", CultureInfo.InvariantCulture));
        yield return ("date", p.Date.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture));
        foreach (var (k, v) in p.Parameters.OrderBy(kv => kv.Key, StringComparer.Ordinal)) yield return ($"parameter {k}", v);
    }

    public static void Write(CertificateReport report, string path) => AtomicFile.WriteAllText(path, Render(report));
}

public static class HtmlCertificateWriter
{
    public static string Render(CertificateReport r, byte[]? plot = null)
    {
        string E(string s) => HtmlReportWriter.E(s);
        var p = r.Provenance;
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        sb.Append("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">");
        sb.Append($"<title>Certificate — {E(p.ModelPath ?? p.ModelArch)}</title><style>{HtmlReportWriter.Css}</style></head><body><main>\n");
        sb.Append($"<h1>Certificate: {E(CertificateSummary.Title(r))}</h1>");
        sb.Append($"<div class=\"sub\">Model <code>{E(p.ModelPath ?? p.ModelArch)}</code> on {E(p.DatasetName)} · {r.Total} points</div>\n");
        sb.Append("<div class=\"cards\">");
        HtmlReportWriter.Card(sb, CertificateSummary.Verifies(r) ? "clean accuracy" : "clean accuracy (smoothed)", CertificateSummary.Pct(r.CleanAccuracy));
        if (r.VerifiedAccuracy is { } v) HtmlReportWriter.Card(sb, $"verified (ε = {CertificateSummary.N(r.Epsilon ?? 0)})", CertificateSummary.Pct(v));
        if (r.CertifiedAccuracy is { } ca) HtmlReportWriter.Card(sb, "certified (r = 0)", CertificateSummary.Pct(ca));
        if (r.Method == "smoothing") HtmlReportWriter.Card(sb, "abstained", CertificateSummary.Pct(r.AbstentionRate));
        if (r.EmpiricalCheck is { } e0) HtmlReportWriter.Card(sb, "certified ≤ empirical", e0.Passed ? "holds" : "VIOLATED");
        HtmlReportWriter.Card(sb, "seconds per point", p.SecondsPerPoint.ToString("0.###", CultureInfo.InvariantCulture));
        sb.Append("</div>\n");

        sb.Append("<h2>Warnings</h2>");
        if (r.Warnings.Count == 0) sb.Append("<div class=\"ok\">No warning.</div>");
        foreach (var w in r.Warnings)
            sb.Append($"<div class=\"warn\"><code>{E(w.Code)}</code> — {E(w.Message)}<br><b>What to do:</b> {E(w.Advice)}</div>");
        if (r.SampleSize is { } cost) sb.Append($"<h2>Sample size</h2><p>{E(cost.Note)}</p>");

        sb.Append(CertificateSummary.Verifies(r) ? "<h2>Verified accuracy by ε</h2>" : "<h2>Certified accuracy by radius</h2>");
        if (plot is not null) sb.Append($"<div class=\"plots\">{HtmlReportWriter.Img(plot, "certified accuracy versus radius")}</div>");
        sb.Append($"<table><tr><th>{(CertificateSummary.Verifies(r) ? "ε" : "radius")}</th><th>{(CertificateSummary.Verifies(r) ? "verified" : "certified")}</th><th>points</th></tr>");
        var table = CertificateSummary.Verifies(r) ? r.CertifiedAccuracyByRadius : r.CertifiedAccuracyByRadius.Where(x => CertificateSummary.TableRadii.Contains(x.Radius));
        foreach (var x in table) sb.Append($"<tr><td class=n>{CertificateSummary.N(x.Radius)}</td><td class=n><b>{CertificateSummary.Pct(x.Accuracy)}</b></td><td class=n>{x.Count}</td></tr>");
        sb.Append("</table>\n");

        if (r.EmpiricalCheck is { } e)
        {
            sb.Append($"<h2>Certified vs empirical ({E(e.Attack)}, {e.Points} points)</h2>");
            sb.Append(e.Passed ? "<div class=\"ok\">Certified accuracy stays at or below the empirical robust accuracy, and no certified point was refuted.</div>"
                               : "<div class=\"warn\"><b>FAILED:</b> a certified point was refuted by the attack, or certified accuracy exceeds the empirical one. This is a bug.</div>");
            sb.Append($"<p>{E(e.Definition)}</p>");
            sb.Append("<table><tr><th>radius</th><th>certified</th><th>empirical robust</th><th>strict</th><th>violations</th></tr>");
            foreach (var x in e.Radii)
                sb.Append($"<tr><td class=n>{CertificateSummary.N(x.Radius)}</td><td class=n>{CertificateSummary.Pct(x.Certified)}</td><td class=n>{CertificateSummary.Pct(x.EmpiricalRobust)}</td><td class=n>{CertificateSummary.Pct(x.EmpiricalRobustStrict)}</td><td class=n>{x.Violations}</td></tr>");
            sb.Append("</table>\n");
        }

        sb.Append("<h2>Per class</h2><table><tr><th>class</th><th>label</th><th>count</th><th>clean</th><th>certified</th><th>abstained</th></tr>");
        foreach (var c in r.PerClass)
            sb.Append($"<tr><td class=n>{c.Class}</td><td>{E(c.Label)}</td><td class=n>{c.Count}</td><td class=n>{CertificateSummary.Pct(c.CleanAccuracy)} ({c.CleanCorrect})</td><td class=n>{CertificateSummary.Pct(c.CertifiedAccuracy)} ({c.Certified})</td><td class=n>{c.Abstained}</td></tr>");
        sb.Append("</table>\n");

        sb.Append("<h2>Provenance</h2><table>");
        foreach (var (k, val) in MarkdownCertificateWriter.ProvenanceRows(r)) sb.Append($"<tr><th>{E(k)}</th><td>{E(val)}</td></tr>");
        sb.Append("</table>\n</main></body></html>\n");
        return sb.ToString();
    }

    public static void Write(CertificateReport report, string path, byte[]? plot = null) => AtomicFile.WriteAllText(path, Render(report, plot));
}

public static class CertificatePlots
{
    /// <summary>Certified accuracy against radius, one line per certificate (e.g. one per σ), on one chart.</summary>
    public static byte[] CertifiedAccuracyPng(IReadOnlyList<(string Label, CertificateReport Report)> curves, int width = Plots.Width, int height = Plots.Height)
    {
        using var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        for (int i = 0; i < curves.Count; i++)
        {
            var (label, r) = curves[i];
            var points = r.CertifiedAccuracyByRadius;
            var line = CertificateSummary.Verifies(r)
                ? plot.Add.Scatter(points.Select(x => x.Radius).ToArray(), points.Select(x => x.Accuracy).ToArray(), palette.GetColor(i))
                : plot.Add.ScatterLine(points.Select(x => x.Radius).ToArray(), points.Select(x => x.Accuracy).ToArray(), palette.GetColor(i));
            line.LegendText = label;
            line.LineWidth = 2.5f;
            if (r.EmpiricalCheck is { } e)
            {
                var emp = plot.Add.Scatter(e.Radii.Select(x => x.Radius).ToArray(), e.Radii.Select(x => x.EmpiricalRobust).ToArray(), palette.GetColor(i));
                emp.LegendText = $"{label}: empirical ({e.Attack}, {e.Points} pts)";
                emp.LinePattern = LinePattern.Dashed;
                emp.MarkerSize = 7;
            }
        }
        bool ibp = curves.All(c => CertificateSummary.Verifies(c.Report));
        plot.Title(ibp ? "Verified accuracy vs L∞ epsilon (bound propagation)" : "Certified accuracy vs L2 radius (randomized smoothing)");
        plot.XLabel(ibp ? "epsilon (linf)" : "radius (l2)");
        plot.YLabel(ibp ? "verified accuracy" : "certified accuracy");
        plot.Axes.SetLimitsY(0, 1.05);
        var maxX = curves.SelectMany(c => c.Report.CertifiedAccuracyByRadius.Select(x => x.Radius)).DefaultIfEmpty(0).Max();
        plot.Axes.SetLimitsX(0, Math.Max(maxX * 1.05, 1e-3));
        plot.ShowLegend(Alignment.UpperRight);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }
}

public sealed record CertificateFiles(string Json, string Markdown, string Html, string Plot);

/// <summary>Writes certificate.json, certificate.md, certificate.html (self-contained) and plots/certified-accuracy.png, each atomically.</summary>
public static class CertificateBundle
{
    public static CertificateFiles WriteAll(CertificateReport report, string directory, IReadOnlyList<(string Label, CertificateReport Report)>? overlay = null)
    {
        var dir = Path.GetFullPath(directory);
        var label = CertificateSummary.Verifies(report) ? $"{CertificateSummary.Title(report).Split(' ')[0]} verified" : $"σ = {report.Provenance.Parameters.GetValueOrDefault("sigma", "?")}";
        var curves = new List<(string, CertificateReport)> { (label, report) };
        if (overlay is not null) curves.AddRange(overlay);
        var png = CertificatePlots.CertifiedAccuracyPng(curves);
        var plot = Path.Combine(dir, "plots", "certified-accuracy.png");
        AtomicFile.WriteAllBytes(plot, png);
        var json = Path.Combine(dir, "certificate.json");
        var md = Path.Combine(dir, "certificate.md");
        var html = Path.Combine(dir, "certificate.html");
        JsonCertificateWriter.Write(report, json);
        MarkdownCertificateWriter.Write(report, md);
        HtmlCertificateWriter.Write(report, html, png);
        return new CertificateFiles(json, md, html, plot);
    }
}
