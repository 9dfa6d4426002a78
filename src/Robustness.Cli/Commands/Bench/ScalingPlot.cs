using System.Globalization;
using ScottPlot;

namespace Robustness.Cli.Commands.Bench;

/// <summary>
/// Attack throughput against batch size, one line per model (ours solid, the reference dashed), log-2 batch axis.
/// Rendered with ScottPlot; text needs a system font (fonts-dejavu-core on Debian).
/// </summary>
public static class ScalingPlot
{
    public static byte[] Png(IReadOnlyList<BenchMeasurement> attackLines, MachineInfo machine, int threads, int width = 900, int height = 540)
    {
        using var plot = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
        var models = attackLines.Select(m => m.Model).Distinct().ToList();
        foreach (var ours in new[] { true, false })
        {
            for (int i = 0; i < models.Count; i++)
            {
                var points = attackLines.Where(m => m.Model == models[i] && (m.Impl == BenchMeasurement.Ours) == ours).OrderBy(m => m.Batch).ToList();
                if (points.Count == 0) continue;
                var line = plot.Add.Scatter(points.Select(p => Math.Log2(p.Batch)).ToArray(), points.Select(p => p.Value).ToArray(), palette.GetColor(i));
                line.LegendText = $"{models[i]} ({(ours ? "Robustness" : points[0].Note ?? points[0].Impl)})";
                line.LineWidth = ours ? 2.5f : 1.5f;
                line.MarkerSize = ours ? 8 : 5;
                if (!ours) line.LinePattern = LinePattern.Dashed;
            }
        }
        var batches = attackLines.Select(m => m.Batch).Distinct().Order().ToArray();
        plot.Axes.Bottom.SetTicks(batches.Select(b => Math.Log2(b)).ToArray(), batches.Select(b => b.ToString(CultureInfo.InvariantCulture)).ToArray());
        plot.Title($"L-inf PGD-10 vs batch size ({threads} thread{(threads == 1 ? "" : "s")}; dashed: reference)");
        plot.XLabel("batch size");
        plot.YLabel("image-steps per second");
        plot.Axes.SetLimitsY(0, attackLines.Count == 0 ? 1 : attackLines.Max(m => m.Value) * 1.1);
        plot.ShowLegend(Edge.Right);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }
}
