using Robustness.Core;

namespace Robustness.Defenses;

/// <summary>
/// Training curves as a PNG: loss (left axis) and accuracies (right axis, %) per epoch; below them, when the history
/// has them, the per-layer gradient norms (log10, one line per layer, first layer darkest) — where vanishing
/// gradients show as the first layers' lines lying far below the last ones.
/// </summary>
public static class TrainingCurves
{
    /// <summary>At most this many layers get their own line (deeper networks show an even selection, first and last included).</summary>
    public const int MaxGradientLines = 12;

    public static void WritePng(IReadOnlyList<EpochMetrics> history, string path, int width = 900, int height = 500)
    {
        if (history.Count == 0) return;
        var curves = Curves(history);
        var layers = history.LastOrDefault(m => m.GradientNorms is { Count: > 0 })?.GradientNorms?.Keys.ToList();
        if (layers is null)
        {
            AtomicFile.WriteAllBytes(path, curves.GetImageBytes(width, height, ScottPlot.ImageFormat.Png));
            return;
        }
        ScottPlot.IMultiplot multiplot = new ScottPlot.Multiplot();
        ScottPlot.IMultiplotExtensions.Reset(multiplot, curves); // a new Multiplot starts with one empty subplot
        ScottPlot.IMultiplotExtensions.AddPlot(multiplot, GradientPlot(history, layers));
        using var image = ScottPlot.IMultiplotExtensions.Render(multiplot, width, height * 2);
        AtomicFile.WriteAllBytes(path, image.GetImageBytes(ScottPlot.ImageFormat.Png));
    }

    private static ScottPlot.Plot Curves(IReadOnlyList<EpochMetrics> history)
    {
        var plot = new ScottPlot.Plot();
        double[] epochs = history.Select(m => (double)m.Epoch).ToArray();
        var loss = plot.Add.Scatter(epochs, history.Select(m => m.TrainLoss).ToArray());
        loss.LegendText = "train loss";
        AddAccuracy(plot, epochs, history, m => m.TrainCleanAccuracy, "train clean acc");
        AddAccuracy(plot, epochs, history, m => m.TrainAdversarialAccuracy, "train adv acc");
        AddAccuracy(plot, epochs, history, m => m.ValidationCleanAccuracy, "val clean acc");
        AddAccuracy(plot, epochs, history, m => m.ValidationRobustAccuracy, "val robust acc");
        plot.XLabel("epoch");
        plot.YLabel("loss");
        plot.Axes.Right.Label.Text = "accuracy (%)";
        plot.Axes.Right.Min = 0;
        plot.Axes.Right.Max = 100;
        plot.ShowLegend();
        return plot;
    }

    /// <summary>log10 of each layer's mean gradient norm per epoch (epochs without a value are gaps).</summary>
    private static ScottPlot.Plot GradientPlot(IReadOnlyList<EpochMetrics> history, List<string> layers)
    {
        var plot = new ScottPlot.Plot();
        double[] epochs = history.Select(m => (double)m.Epoch).ToArray();
        var shown = Selection(layers.Count, MaxGradientLines);
        var colormap = new ScottPlot.Colormaps.Viridis();
        for (int k = 0; k < shown.Count; k++)
        {
            var layer = layers[shown[k]];
            var ys = history.Select(m => m.GradientNorms is { } g && g.TryGetValue(layer, out var v) && v > 0 ? Math.Log10(v) : double.NaN).ToArray();
            var line = plot.Add.Scatter(epochs, ys);
            line.LegendText = layer;
            line.Color = colormap.GetColor(shown.Count == 1 ? 0 : 0.9 * k / (shown.Count - 1));
        }
        plot.XLabel("epoch");
        plot.YLabel("log10 gradient norm (batch mean)");
        plot.Title("per-layer gradient norms");
        plot.ShowLegend(ScottPlot.Edge.Right);
        return plot;
    }

    /// <summary>Indices 0 … n−1, or an even selection of <paramref name="max"/> of them including both ends.</summary>
    internal static List<int> Selection(int n, int max)
    {
        if (n <= max) return Enumerable.Range(0, n).ToList();
        return Enumerable.Range(0, max).Select(i => (int)Math.Round(i * (n - 1) / (double)(max - 1))).Distinct().ToList();
    }

    private static void AddAccuracy(ScottPlot.Plot plot, double[] epochs, IReadOnlyList<EpochMetrics> history, Func<EpochMetrics, double?> pick, string label)
    {
        var values = history.Select(pick).ToArray();
        if (values.All(v => v is null)) return;
        var ys = values.Select(v => v is { } x ? 100 * x : double.NaN).ToArray();
        var s = plot.Add.Scatter(epochs, ys);
        s.LegendText = label;
        s.Axes.YAxis = plot.Axes.Right;
    }
}
