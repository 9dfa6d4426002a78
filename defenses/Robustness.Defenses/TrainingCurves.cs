using Robustness.Core;

namespace Robustness.Defenses;

/// <summary>Training curves as a PNG: loss (left axis) and accuracies (right axis, %) per epoch.</summary>
public static class TrainingCurves
{
    public static void WritePng(IReadOnlyList<EpochMetrics> history, string path, int width = 900, int height = 500)
    {
        if (history.Count == 0) return;
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
        AtomicFile.WriteAllBytes(path, plot.GetImageBytes(width, height, ScottPlot.ImageFormat.Png));
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
