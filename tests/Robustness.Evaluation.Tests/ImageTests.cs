using Robustness.Core;
using Robustness.Evaluation;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Robustness.Evaluation.Tests;

public class ImageTests
{
    private static AdversarialExample Example(int c, int h, int w, float delta)
    {
        var rng = new Random(3);
        var clean = Enumerable.Range(0, c * h * w).Select(_ => (float)rng.NextDouble() * 0.8f + 0.1f).ToArray();
        var adv = clean.Select((v, i) => i % 3 == 0 ? v + delta : v).ToArray();
        return new AdversarialExample(42, 1, clean, adv, [c, h, w], 1, 0.97, 2, 0.81, true, "pgd", delta, Bounds.Unit);
    }

    [Theory]
    [InlineData(1, 28, 28)]
    [InlineData(3, 32, 32)]
    public void Strip_shows_clean_amplified_delta_and_adversarial_and_no_text(int c, int h, int w)
    {
        var e = Example(c, h, w, 0.05f);
        using var img = Image.Load<Rgba32>(PerturbationImages.StripPng(e));
        int s = PerturbationImages.UpscaleFor(h, w), gap = PerturbationImages.Gap;
        Assert.Equal(4, s);
        // Three panels and two gaps, nothing else: the caption is the page's (HTML), not pixels in the picture.
        Assert.Equal(3 * w * s + 2 * gap, img.Width);
        Assert.Equal(h * s, img.Height);
        // Amplification: 0.5 / max|δ| = 10, so δ = +0.05 shows as 0.5 + 0.5 = white and δ = 0 as mid-grey.
        Assert.Equal(10, PerturbationImages.AmplificationOf(e), 4);
        // Pixel (0,0) has index 0 → perturbed; pixel (1,0) has index 1 → unperturbed (in channel 0).
        var clean00 = img[1, 1];
        Assert.Equal(ToByte(e.Clean[0]), clean00.R);
        var deltaPerturbed = img[w * s + gap + 1, 1];
        var deltaZero = img[w * s + gap + s + 1, 1];
        Assert.Equal(255, deltaPerturbed.R);
        Assert.InRange((int)deltaZero.R, 126, 129);
        var adv00 = img[2 * (w * s + gap) + 1, 1];
        Assert.Equal(ToByte(e.Adversarial[0]), adv00.R);
        if (c == 3) Assert.Equal(ToByte(e.Clean[h * w]), clean00.G);
        // The gaps are plain background.
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < gap; x++)
            {
                Assert.Equal(new Rgba32(255, 255, 255, 255), img[w * s + x, y]);
                Assert.Equal(new Rgba32(255, 255, 255, 255), img[2 * w * s + gap + x, y]);
            }
    }

    [Fact]
    public void Caption_says_what_the_strip_shows()
    {
        var e = Example(1, 10, 10, 0.05f);
        var lines = PerturbationImages.Caption(e, Fixtures.ClassNames).ToDictionary(l => l.Key);
        Assert.Equal(Fixtures.ClassNames[1], lines["true class"].Value);
        Assert.Equal($"{Fixtures.ClassNames[1]} (97 %)", lines["clean"].Value);
        Assert.Equal($"{Fixtures.ClassNames[2]} (81 %)", lines["adversarial"].Value);
        Assert.Equal(Verdict.Broken, lines["adversarial"].Verdict);
        Assert.Equal("pgd", lines["attack"].Value);
        Assert.Equal("0.05", lines["‖δ‖"].Value);
        Assert.Contains("× 10", lines["δ shown"].Value);
        var robust = PerturbationImages.Caption(e with { Broken = false, AdversarialPrediction = 1 }, Fixtures.ClassNames).Single(l => l.Key == "adversarial");
        Assert.Equal(Verdict.Robust, robust.Verdict);
        Assert.EndsWith("robust", robust.Value);
        // A label-only model has no confidence to show.
        Assert.Contains("label only", PerturbationImages.Caption(e with { CleanConfidence = double.NaN }, Fixtures.ClassNames).Single(l => l.Key == "clean").Value);
    }

    private static byte ToByte(float v) => (byte)Math.Clamp((int)MathF.Round(v * 255f), 0, 255);

    [Fact]
    public void Grid_holds_every_example_with_a_verdict_bar_and_no_text()
    {
        var examples = Enumerable.Range(0, 11).Select(i => Example(1, 10, 10, 0.1f) with { Broken = i % 3 != 0 }).ToArray();
        using var img = Image.Load<Rgba32>(PerturbationImages.GridPng(examples, columns: 4));
        int s = Math.Max(1, PerturbationImages.UpscaleFor(10, 10) / 2), gap = PerturbationImages.Gap;
        int cellW = 10 * s, cellH = 2 * 10 * s + 2 + PerturbationImages.VerdictBar;
        Assert.Equal(gap + 4 * (cellW + gap), img.Width);
        Assert.Equal(gap + 3 * (cellH + gap), img.Height);
        for (int k = 0; k < examples.Length; k++)
        {
            // The bar under each cell: red when broken, green when robust.
            var bar = img[gap + (k % 4) * (cellW + gap) + cellW / 2, gap + (k / 4) * (cellH + gap) + 2 * 10 * s + 3];
            Assert.True(examples[k].Broken ? bar.R > 150 && bar.G < 60 : bar.G > 100 && bar.R < 60, $"cell {k}: bar {bar}");
        }
        Assert.Throws<ArgumentException>(() => PerturbationImages.GridPng([Example(1, 10, 10, 0.1f), Example(3, 10, 10, 0.1f)]));
    }

    [Fact]
    public void Plots_render_with_text()
    {
        var r = EvaluatorTests.HealthyRun.Value.Report;
        foreach (var png in new[] { Plots.AccuracyVersusEpsilonPng(r), Plots.PerClassPng(r) })
        {
            using var img = Image.Load<Rgba32>(png);
            Assert.Equal(Plots.Width, img.Width);
            Assert.Equal(Plots.Height, img.Height);
            // The title band (top 30 px, centre) holds dark text pixels only if a font was found.
            int dark = 0;
            for (int y = 0; y < 30; y++) for (int x = 250; x < 550; x++) if (img[x, y].R < 100 && img[x, y].G < 100) dark++;
            Assert.True(dark > 20, $"no title text rendered ({dark} dark pixels): install fonts-dejavu-core");
        }
    }

    internal static readonly string[] FashionNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    [Theory]
    [InlineData(10, 800)]
    [InlineData(10, 640)]
    [InlineData(20, 800)]
    [InlineData(3, 800)]
    public void Per_class_chart_keeps_every_label_inside_the_picture_and_the_axis_at_100_percent(int classes, int width)
    {
        var r = EvaluatorTests.HealthyRun.Value.Report;
        // Fashion-MNIST's names, and longer made-up ones for the crowded case (14 characters are drawn in full).
        var perClass = Enumerable.Range(0, classes).Select(i => r.PerClass[i % r.PerClass.Count] with
        {
            Class = i,
            Label = classes == 10 ? FashionNames[i] : $"long-name-{i:D2}xy",
        }).ToArray();
        var report = r with { PerClass = perClass };
        using (var plot = Plots.PerClass(report, width))
        {
            var limits = plot.Axes.GetLimits();
            Assert.Equal(0, limits.Bottom);
            Assert.Equal(1, limits.Top);
        }
        using var img = Image.Load<Rgba32>(Plots.PerClassPng(report, width, Plots.Height));
        Assert.Equal(width, img.Width);
        // Text cut off at an edge leaves ink in the outermost pixels; a chart that fits leaves them blank.
        bool Dark(int x, int y) => img[x, y].R < 120 && img[x, y].G < 120 && img[x, y].B < 120;
        for (int i = 0; i < 2; i++)
        {
            for (int x = 0; x < img.Width; x++)
            {
                Assert.False(Dark(x, i), $"ink at the top edge, x = {x}");
                Assert.False(Dark(x, img.Height - 1 - i), $"ink at the bottom edge, x = {x}: a label is cut off");
            }
            for (int y = 0; y < img.Height; y++)
            {
                Assert.False(Dark(i, y), $"ink at the left edge, y = {y}: a label is cut off");
                Assert.False(Dark(img.Width - 1 - i, y), $"ink at the right edge, y = {y}");
            }
        }
    }

    [Fact]
    public void Accuracy_charts_stop_at_100_percent()
    {
        var r = EvaluatorTests.HealthyRun.Value.Report;
        using var plot = Plots.AccuracyVersusEpsilon(r);
        plot.GetImageBytes(Plots.Width, Plots.Height, ScottPlot.ImageFormat.Png); // ticks are laid out when drawn
        var ticks = Assert.IsType<ScottPlot.TickGenerators.NumericManual>(plot.Axes.Left.TickGenerator).Ticks;
        var limits = plot.Axes.GetLimits();
        // A hair beyond 0 and 1 so markers at 0 % and 100 % are drawn whole; no tick beyond them.
        Assert.InRange(limits.Bottom, -0.03, 0);
        Assert.InRange(limits.Top, 1, 1.03);
        Assert.Equal(0, ticks.Min(t => t.Position));
        Assert.Equal(1, ticks.Max(t => t.Position));
        Assert.Equal("100 %", ticks.Single(t => t.Position == 1).Label);
    }
}
