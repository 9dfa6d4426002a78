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
    public void Strip_shows_clean_amplified_delta_and_adversarial(int c, int h, int w)
    {
        var e = Example(c, h, w, 0.05f);
        using var img = Image.Load<Rgba32>(PerturbationImages.StripPng(e, Fixtures.ClassNames));
        int s = PerturbationImages.UpscaleFor(h, w);
        Assert.Equal(4, s);
        Assert.True(img.Width >= 3 * w * s);
        // Amplification: 0.5 / max|δ| = 10, so δ = +0.05 shows as 0.5 + 0.5 = white and δ = 0 as mid-grey.
        Assert.Equal(10, PerturbationImages.AmplificationOf(e), 4);
        int left = (img.Width - (3 * w * s + 2 * 6)) / 2, top = 6;
        // Pixel (0,0) has index 0 → perturbed; pixel (1,0) has index 1 → unperturbed (in channel 0).
        var clean00 = img[left + 1, top + 1];
        Assert.Equal(ToByte(e.Clean[0]), clean00.R);
        var deltaPerturbed = img[left + w * s + 6 + 1, top + 1];
        var deltaZero = img[left + w * s + 6 + s + 1, top + 1];
        Assert.Equal(255, deltaPerturbed.R);
        Assert.InRange((int)deltaZero.R, 126, 129);
        var adv00 = img[left + 2 * (w * s + 6) + 1, top + 1];
        Assert.Equal(ToByte(e.Adversarial[0]), adv00.R);
        if (c == 3) Assert.Equal(ToByte(e.Clean[h * w]), clean00.G);
        // The caption is drawn: some dark ink below the panels.
        bool ink = false;
        for (int y = top + h * s + 6; y < img.Height && !ink; y++)
            for (int x = 0; x < img.Width && !ink; x++)
                ink = img[x, y].R < 60 || img[x, y].G < 60;
        Assert.True(ink);
        Assert.Contains(PerturbationImages.Caption(e, Fixtures.ClassNames), l => l.Contains("X10"));
    }

    private static byte ToByte(float v) => (byte)Math.Clamp((int)MathF.Round(v * 255f), 0, 255);

    [Fact]
    public void Grid_holds_every_example()
    {
        var examples = Enumerable.Range(0, 11).Select(_ => Example(1, 10, 10, 0.1f)).ToArray();
        using var img = Image.Load<Rgba32>(PerturbationImages.GridPng(examples, columns: 4));
        Assert.True(img.Width > 4 * 10 && img.Height > 3 * 20);
        Assert.Throws<ArgumentException>(() => PerturbationImages.GridPng([Example(1, 10, 10, 0.1f), Example(3, 10, 10, 0.1f)]));
    }

    [Fact]
    public void Bitmap_font_draws_every_printable_ascii_character()
    {
        for (char ch = ' '; ch <= '~'; ch++) Assert.True(BitmapFont.HasGlyph(ch), $"no glyph for '{ch}'");
        using var img = new Image<Rgba32>(BitmapFont.Measure("A1", 2) + 2, 20, new Rgba32(255, 255, 255, 255));
        BitmapFont.Draw(img, "A1", 1, 1, new Rgba32(0, 0, 0, 255), 2);
        int black = 0;
        for (int y = 0; y < img.Height; y++) for (int x = 0; x < img.Width; x++) if (img[x, y].R == 0) black++;
        // 'A' has 18 ink pixels and '1' has 10 in the 5×7 font, each a 2×2 block at scale 2.
        Assert.Equal((18 + 10) * 4, black);
        Assert.Equal("abcd..", BitmapFont.Truncate("abcdefgh", 6));
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
}
