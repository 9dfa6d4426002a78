using System.Globalization;
using ScottPlot;

namespace Robustness.Evaluation;

/// <summary>
/// Report charts rendered with ScottPlot (SkiaSharp). Text needs a system font: on Debian install
/// <c>fonts-dejavu-core</c> (CI does), otherwise labels render empty while the data still draws.
/// </summary>
public static class Plots
{
    public const int Width = 800;
    public const int Height = 480;

    /// <summary>Robust accuracy against ε: one line per attack (cumulative, as attacks are added) and the worst case.</summary>
    public static byte[] AccuracyVersusEpsilonPng(RobustnessReport report, int width = Width, int height = Height)
    {
        using var plot = AccuracyVersusEpsilon(report);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    public static Plot AccuracyVersusEpsilon(RobustnessReport report)
    {
        var plot = NewPlot();
        var xs = report.EpsSweep.Select(e => e.Epsilon).ToArray();
        var names = report.PerAttack.Select(a => a.Name).ToArray();
        var palette = new ScottPlot.Palettes.Category10();
        // The worst case first and thick, the per-attack stages dashed on top, so coinciding lines stay visible.
        var worst = plot.Add.Scatter(xs, report.EpsSweep.Select(e => e.RobustAccuracy).ToArray(), palette.GetColor(0));
        worst.LegendText = names.Length == 1 ? $"{names[0]} (worst case)" : "worst case (all attacks)";
        worst.LineWidth = 3;
        worst.MarkerSize = 8;
        for (int a = 0; a < names.Length - 1; a++)
        {
            var ys = report.EpsSweep.Select(e => e.PerAttack[a].RobustAccuracyAfter).ToArray();
            var line = plot.Add.Scatter(xs, ys, palette.GetColor(a + 1));
            line.LegendText = a == 0 ? $"after {names[a]}" : $"+ {names[a]}";
            line.LineWidth = 1.5f;
            line.MarkerSize = 6;
            line.LinePattern = LinePattern.Dashed;
        }
        if (report.VerifiedAccuracy is not null)
        {
            var verified = plot.Add.Scatter(xs, report.EpsSweep.Select(e => e.VerifiedAccuracy ?? double.NaN).ToArray(), Colors.Black);
            verified.LegendText = "verified (IBP certificate)";
            verified.LineWidth = 2.5f;
            verified.MarkerSize = 7;
            verified.LinePattern = LinePattern.DenselyDashed;
        }
        var clean = plot.Add.HorizontalLine(report.CleanAccuracy, 1, Colors.Gray, LinePattern.Dotted);
        clean.LegendText = report.MultiLabel is null ? "clean accuracy" : "clean subset accuracy";
        if (report.MultiLabel is { } multi)
        {
            worst.LegendText = "subset, worst case (all attacks)";
            var hamming = plot.Add.Scatter(xs, multi.EpsSweep.Select(e => e.RobustHammingAccuracy).ToArray(), palette.GetColor(names.Length + 1));
            hamming.LegendText = "Hamming, worst case per label";
            hamming.LineWidth = 3;
            hamming.MarkerSize = 8;
            var cleanHamming = plot.Add.HorizontalLine(report.HammingAccuracy ?? 0, 1, Colors.DarkGray, LinePattern.DenselyDashed);
            cleanHamming.LegendText = "clean Hamming accuracy";
        }
        plot.Title($"Robust accuracy vs {report.Norm} epsilon");
        plot.XLabel($"epsilon ({report.Norm})");
        plot.YLabel("accuracy");
        AccuracyAxis(plot);
        if (xs.Length == 1) plot.Axes.SetLimitsX(xs[0] - 0.5 * Math.Max(xs[0], 1e-3), xs[0] + 0.5 * Math.Max(xs[0], 1e-3));
        // Multi-label Hamming curves stay high at every ε, where a legend inside the frame would cover them.
        if (report.MultiLabel is null) plot.ShowLegend(Alignment.UpperRight);
        else plot.ShowLegend(Edge.Bottom);
        return plot;
    }

    /// <summary>Per-class clean and robust accuracy at the main ε as grouped bars.</summary>
    public static byte[] PerClassPng(RobustnessReport report, int width = Width, int height = Height)
    {
        using var plot = PerClass(report, width);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <param name="width">The width it will be drawn at, in pixels (to decide whether labels must slant).</param>
    public static Plot PerClass(RobustnessReport report, int width = Width)
    {
        var plot = NewPlot();
        var cleanColor = new Color(70, 130, 180);
        var robustColor = new Color(220, 90, 60);
        var bars = new List<Bar>();
        var ticks = new List<Tick>();
        for (int i = 0; i < report.PerClass.Count; i++)
        {
            var c = report.PerClass[i];
            bars.Add(new Bar { Position = 3 * i, Value = c.CleanAccuracy, FillColor = cleanColor, Size = 1 });
            bars.Add(new Bar { Position = 3 * i + 1, Value = c.RobustAccuracy, FillColor = robustColor, Size = 1 });
            ticks.Add(new Tick(3 * i + 0.5, ShortLabel(c.Label), isMajor: true));
        }
        plot.Add.Bars(bars);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        SlantIfCrowded(plot, ticks.Select(t => t.Label).ToArray(), width);
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = "clean", FillColor = cleanColor });
        plot.Legend.ManualItems.Add(new LegendItem { LabelText = $"robust (eps {report.Epsilon.ToString("G4", CultureInfo.InvariantCulture)})", FillColor = robustColor });
        // Beside the data, not on it: bars reach 100 % and the axis stops there.
        plot.ShowLegend(Edge.Top);
        plot.Title("Per-class accuracy");
        plot.YLabel("accuracy");
        plot.Axes.SetLimitsX(-1, 3 * report.PerClass.Count);
        AccuracyAxis(plot, pad: 0);
        return plot;
    }

    /// <summary>Robust accuracy against the query budget (log scale), a step at each point's queries to success;
    /// null when no query-based attack ran.</summary>
    public static byte[]? RobustVersusQueriesPng(RobustnessReport report, int width = Width, int height = Height)
    {
        using var plot = RobustVersusQueries(report);
        return plot?.GetImageBytes(width, height, ImageFormat.Png);
    }

    public static Plot? RobustVersusQueries(RobustnessReport report)
    {
        if (report.Queries is not { } q || q.RobustAccuracyByBudget.Count == 0) return null;
        int mainEps = report.EpsSweep.Select(e => e.Epsilon).ToList().IndexOf(report.Epsilon);
        var attacks = report.Provenance.Attacks;
        var counted = attacks.Select(a => a.BlackBox).ToArray();
        var outcomes = report.Samples.Select(s => (s, s.PerEpsilon[mainEps])).ToArray();
        long max = q.RobustAccuracyByBudget[^1].Queries;
        // Every budget at which the curve can step: 1, each point's queries to success, the budget.
        var steps = report.Samples.Select(s => s.PerEpsilon[mainEps].QueriesToSuccess ?? 0).Where(v => v >= 1 && v <= max)
            .Append(1).Append(max).Distinct().Order().ToArray();
        var xs = steps.Select(v => Math.Log10(v)).ToArray();
        var ys = steps.Select(v => QueryStatistics.RobustAt(outcomes, counted, attacks, v)).ToArray();
        var plot = NewPlot();
        var palette = new ScottPlot.Palettes.Category10();
        var line = plot.Add.Scatter(xs, ys, palette.GetColor(0));
        line.ConnectStyle = ConnectStyle.StepHorizontal;
        line.LineWidth = 2.5f;
        line.MarkerSize = 0;
        line.LegendText = "robust accuracy within the budget";
        var clean = plot.Add.HorizontalLine(report.CleanAccuracy, 1, Colors.Gray, LinePattern.Dotted);
        clean.LegendText = "clean accuracy";
        var ticks = new List<Tick>();
        for (long decade = 1; decade <= Math.Max(10, max); decade *= 10)
            ticks.Add(new Tick(Math.Log10(decade), decade >= 1000 ? $"{decade / 1000}k" : decade.ToString(CultureInfo.InvariantCulture), isMajor: true));
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        plot.Title($"Robust accuracy vs queries per sample ({report.Norm} eps {report.Epsilon.ToString("G4", CultureInfo.InvariantCulture)})");
        plot.XLabel("query budget per sample (log scale)");
        plot.YLabel("accuracy");
        plot.Axes.SetLimitsX(-0.05, Math.Log10(Math.Max(10, max)) + 0.05);
        AccuracyAxis(plot);
        plot.ShowLegend(Alignment.UpperRight);
        return plot;
    }

    /// <summary>A plot drawn in a sans-serif font (the page's look) when one is installed.</summary>
    public static Plot NewPlot()
    {
        var plot = new Plot();
        plot.Font.Set(SansFont.Value);
        return plot;
    }

    private static readonly Lazy<string> SansFont = new(() =>
    {
        foreach (var family in new[] { "DejaVu Sans", "Liberation Sans", "Arial", "Helvetica" })
        {
            try
            {
                using var typeface = SkiaSharp.SKFontManager.Default.MatchFamily(family);
                if (typeface is not null) return family;
            }
            catch (Exception e) when (e is DllNotFoundException or TypeInitializationException) { break; }
        }
        return Fonts.Default;
    });

    /// <summary>
    /// An accuracy axis: ticks 0 % to 100 % every 10 %, nothing beyond. <paramref name="pad"/> (a few hundredths) keeps
    /// the markers of lines at 0 % and 100 % whole, which the data area would clip; bars use 0.
    /// </summary>
    public static void AccuracyAxis(Plot plot, double pad = 0.03)
    {
        var ticks = Enumerable.Range(0, 11).Select(i => new Tick(i / 10.0, $"{i * 10} %", isMajor: true)).ToArray();
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plot.Axes.SetLimitsY(-pad, 1 + pad);
    }

    /// <summary>
    /// Category labels under bars: horizontal when each fits its slot, else slanted by 40° with the bottom axis made tall
    /// enough for the longest (ScottPlot sizes the axis for unrotated labels, which cut slanted ones off at the edge).
    /// </summary>
    internal static void SlantIfCrowded(Plot plot, IReadOnlyList<string> labels, int width)
    {
        if (labels.Count == 0) return;
        var style = plot.Axes.Bottom.TickLabelStyle;
        float fontSize = style.FontSize;
        float widest = labels.Max(l => TextWidth(l, fontSize));
        // The data area is the image less the left axis, the legend and margins: about 70 % of the width.
        float slot = 0.7f * width / labels.Count;
        if (widest <= 0.9f * slot)
        {
            style.Rotation = 0;
            style.Alignment = Alignment.UpperCenter;
            return;
        }
        const float angle = 40;
        style.Rotation = -angle;
        style.Alignment = Alignment.MiddleRight;
        double rad = angle * Math.PI / 180;
        plot.Axes.Bottom.MinimumSize = (float)(widest * Math.Sin(rad) + fontSize * Math.Cos(rad)) + 16;
    }

    /// <summary>Text width in pixels with the font ScottPlot draws tick labels in (a generous estimate without it).</summary>
    internal static float TextWidth(string text, float fontSize)
    {
        try
        {
            using var typeface = SkiaSharp.SKTypeface.FromFamilyName(SansFont.Value);
            using var font = new SkiaSharp.SKFont(typeface, fontSize);
            return font.MeasureText(text);
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException)
        {
            return 0.65f * fontSize * text.Length;
        }
    }

    private static string ShortLabel(string label) => label.Length <= 14 ? label : label[..12] + "..";
}
