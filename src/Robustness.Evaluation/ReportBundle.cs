using System.Globalization;
using Robustness.Core;

namespace Robustness.Evaluation;

/// <summary>Paths written by <see cref="ReportBundle.WriteAll"/>.</summary>
public sealed record ReportBundleFiles(string Json, string Markdown, string Html, IReadOnlyList<string> Images, IReadOnlyList<string> Plots);

/// <summary>
/// Writes a report directory: report.json, report.md, report.html (self-contained), images/*.png (one strip per
/// example plus grid.png) and plots/*.png. Every file is written atomically.
/// </summary>
public static class ReportBundle
{
    public static ReportBundleFiles WriteAll(RobustnessReport report, string directory, IReadOnlyList<AdversarialExample>? images = null, bool plots = true)
    {
        images ??= [];
        var dir = Path.GetFullPath(directory);
        var classNames = report.Provenance.ClassNames;
        var imagePaths = new List<string>();
        var gallery = new List<GalleryItem>();
        foreach (var e in images)
        {
            var png = PerturbationImages.StripPng(e);
            var path = Path.Combine(dir, "images", $"sample-{e.Index.ToString(CultureInfo.InvariantCulture)}.png");
            AtomicFile.WriteAllBytes(path, png);
            imagePaths.Add(path);
            gallery.Add(GalleryItem.Of(e, classNames, png));
        }
        byte[]? grid = null;
        if (images.Count > 0 && images.Select(e => string.Join("x", e.Shape)).Distinct().Count() == 1)
        {
            grid = PerturbationImages.GridPng(images);
            var path = Path.Combine(dir, "images", "grid.png");
            AtomicFile.WriteAllBytes(path, grid);
            imagePaths.Add(path);
        }

        byte[]? accuracyPlot = null, perClassPlot = null, queriesPlot = null;
        var plotPaths = new List<string>();
        if (plots)
        {
            accuracyPlot = Plots.AccuracyVersusEpsilonPng(report);
            perClassPlot = Plots.PerClassPng(report);
            queriesPlot = Plots.RobustVersusQueriesPng(report);
            var all = new List<(string, byte[])> { ("accuracy-vs-eps.png", accuracyPlot), ("per-class.png", perClassPlot) };
            if (queriesPlot is not null) all.Add(("robust-vs-queries.png", queriesPlot));
            foreach (var (name, png) in all)
            {
                var path = Path.Combine(dir, "plots", name);
                AtomicFile.WriteAllBytes(path, png);
                plotPaths.Add(path);
            }
        }

        var json = Path.Combine(dir, "report.json");
        var md = Path.Combine(dir, "report.md");
        var html = Path.Combine(dir, "report.html");
        JsonReportWriter.Write(report, json);
        MarkdownReportWriter.Write(report, md);
        HtmlReportWriter.Write(report, html, new HtmlAssets(accuracyPlot, perClassPlot, grid, gallery) { QueriesPlot = queriesPlot });
        return new ReportBundleFiles(json, md, html, imagePaths, plotPaths);
    }
}

/// <summary>Plain rows for a console summary; the CLI renders them (e.g. as a Spectre.Console table).</summary>
public sealed record SummaryRow(string Key, string Value);

public static class ConsoleSummary
{
    /// <summary>Headline numbers, the attack stages, and one row per warning. Text is raw (the renderer escapes markup).</summary>
    public static IReadOnlyList<SummaryRow> Rows(RobustnessReport r)
    {
        var rows = new List<SummaryRow>
        {
            new("samples", r.Total.ToString(CultureInfo.InvariantCulture) + (r.Shard is { } s ? $" (shard {s.Index}/{s.Count})" : "")),
            new("threat model", $"{r.Norm} eps={r.Epsilon.ToString("G6", CultureInfo.InvariantCulture)}"),
            new("clean accuracy", MarkdownReportWriter.Pct(r.CleanAccuracy) + (r.MultiLabel is null ? "" : " (subset)")),
            new("robust accuracy", MarkdownReportWriter.Pct(r.RobustAccuracy) + (r.MultiLabel is null ? "" : " (subset)")),
        };
        if (r.MultiLabel is { } m)
        {
            rows.Add(new("Hamming accuracy", $"{MarkdownReportWriter.Pct(r.HammingAccuracy ?? 0)} clean, {MarkdownReportWriter.Pct(r.RobustHammingAccuracy ?? 0)} robust"));
            rows.Add(new("micro-F1", $"{MarkdownReportWriter.Pct(m.CleanMicroF1)} clean, {MarkdownReportWriter.Pct(m.RobustMicroF1)} under attack"));
            rows.Add(new("labels flipped", $"{m.MeanLabelsFlipped.ToString("0.###", CultureInfo.InvariantCulture)} per sample ({m.MeanLabelsFlippedBroken.ToString("0.###", CultureInfo.InvariantCulture)} per broken sample)"));
            if (m.Goal is { } goal) rows.Add(new("target label sets", goal));
        }
        if (r.VerifiedAccuracy is { } verified) rows.Add(new("verified accuracy (IBP)", MarkdownReportWriter.Pct(verified)));
        foreach (var a in r.PerAttack)
            rows.Add(new($"  after {a.Name}", a.LabelsFlipped is { } flipped
                ? $"{MarkdownReportWriter.Pct(a.RobustAccuracyAfter)} subset, {MarkdownReportWriter.Pct(a.RobustHammingAfter ?? 0)} Hamming, {flipped} labels flipped ({a.Seconds.ToString("0.0", CultureInfo.InvariantCulture)} s)"
                : $"{MarkdownReportWriter.Pct(a.RobustAccuracyAfter)} ({a.Seconds.ToString("0.0", CultureInfo.InvariantCulture)} s)"));
        if (r.EpsSweep.Count > 1)
            rows.Add(new("eps sweep", string.Join("  ", r.EpsSweep.Select(e =>
                $"{e.Epsilon.ToString("G4", CultureInfo.InvariantCulture)}: {MarkdownReportWriter.Pct(e.RobustAccuracy)}"
                + (e.VerifiedAccuracy is { } v ? $" (verified {MarkdownReportWriter.Pct(v)})" : "")))));
        if (r.MultiLabel is { EpsSweep.Count: > 1 } ml)
            rows.Add(new("eps sweep (Hamming)", string.Join("  ", ml.EpsSweep.Select(e =>
                $"{e.Epsilon.ToString("G4", CultureInfo.InvariantCulture)}: {MarkdownReportWriter.Pct(e.RobustHammingAccuracy)}"))));
        if (r.Queries is { } q)
            foreach (var a in q.PerAttack)
                rows.Add(new($"  queries {a.Name}", $"mean {a.Mean.ToString("0", CultureInfo.InvariantCulture)} of {a.Budget?.ToString(CultureInfo.InvariantCulture) ?? "?"} per sample" +
                    (a.QueriesToSuccess is { } t ? $"; to success: median {t.Median.ToString("0", CultureInfo.InvariantCulture)}" : "")));
        if (r.Perturbation.Successful > 0)
            rows.Add(new("max / mean |delta|", $"{r.Perturbation.MaxNorm.ToString("G4", CultureInfo.InvariantCulture)} / {r.Perturbation.MeanNorm.ToString("G4", CultureInfo.InvariantCulture)}"));
        foreach (var w in r.Warnings)
            rows.Add(new($"WARNING {w.Code}", w.Message));
        return rows;
    }
}
