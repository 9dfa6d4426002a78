using System.Globalization;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Robustness.Evaluation;

/// <summary>
/// PNG pictures of adversarial examples: a strip "clean | amplified perturbation | adversarial" with a caption, and a
/// grid summarising many points. Images are upscaled with nearest neighbour so single pixels stay visible.
/// Grayscale (C = 1) and RGB (C = 3) inputs are drawn as such; other channel counts as the channel mean.
/// </summary>
public static class PerturbationImages
{
    private static readonly Rgba32 Background = new(255, 255, 255, 255);
    private static readonly Rgba32 Ink = new(20, 20, 20, 255);
    private static readonly Rgba32 BrokenInk = new(180, 30, 30, 255);
    private static readonly Rgba32 RobustInk = new(20, 120, 40, 255);
    private const int Gap = 6;
    private const int CaptionScale = 2;

    /// <summary>Nearest-neighbour upscale factor: about 112 px on the long side, between 1 and 8.</summary>
    public static int UpscaleFor(int height, int width) => Math.Clamp((int)Math.Ceiling(112.0 / Math.Max(height, width)), 1, 8);

    /// <summary>The amplification of δ in the middle panel: 0.5 / max|δ| in units of the bounds' range (0 when δ = 0).</summary>
    public static double AmplificationOf(AdversarialExample e)
    {
        double max = 0;
        for (int i = 0; i < e.Clean.Length; i++) max = Math.Max(max, Math.Abs(e.Adversarial[i] - e.Clean[i]));
        double rangeUnits = max / e.Bounds.Range;
        return rangeUnits > 0 ? 0.5 / rangeUnits : 0;
    }

    /// <summary>Multi-label: the labels that differ between two sets, "-removed +added" (empty when none).</summary>
    public static string SetChange(IReadOnlyList<int> before, IReadOnlyList<int> after, IReadOnlyList<string> classNames)
    {
        string Name(int c) => c >= 0 && c < classNames.Count ? classNames[c] : c.ToString(CultureInfo.InvariantCulture);
        return string.Join(" ", before.Except(after).Select(c => "-" + Name(c)).Concat(after.Except(before).Select(c => "+" + Name(c))));
    }

    /// <summary>A label set as names ("{}" when empty).</summary>
    public static string SetText(IReadOnlyList<int> set, IReadOnlyList<string> classNames) =>
        set.Count == 0 ? "{}" : string.Join(", ", set.Select(c => c >= 0 && c < classNames.Count ? classNames[c] : c.ToString(CultureInfo.InvariantCulture)));

    /// <summary>The caption lines of a strip.</summary>
    public static IReadOnlyList<string> Caption(AdversarialExample e, IReadOnlyList<string> classNames)
    {
        string Name(int c) => c >= 0 && c < classNames.Count ? classNames[c] : c.ToString(CultureInfo.InvariantCulture);
        string Pct(double p) => double.IsNaN(p) ? "(LABEL ONLY)" : (p * 100).ToString("0", CultureInfo.InvariantCulture) + "%";
        double amp = AmplificationOf(e);
        string delta = amp > 0 ? $"DELTA X{amp.ToString("0.#", CultureInfo.InvariantCulture)} {e.AttackName} D={e.Distance.ToString("0.###", CultureInfo.InvariantCulture)}" : $"DELTA = 0 ({e.AttackName})";
        if (e.Sets is { } sets)
        {
            string WithProbabilities(int[] set, double[] p) => set.Length == 0 ? "{}"
                : string.Join(", ", set.Select(c => $"{Name(c)} {(c < p.Length ? Pct(p[c]) : "")}".TrimEnd()));
            var change = SetChange(sets.True, sets.Adversarial, classNames);
            return
            [
                $"TRUE: {SetText(sets.True, classNames)}",
                $"CLEAN: {WithProbabilities(sets.Clean, sets.CleanProbabilities)}",
                $"ADV: {WithProbabilities(sets.Adversarial, sets.AdversarialProbabilities)}{(e.Broken ? "" : " (ROBUST)")}",
                $"FLIPPED: {(change.Length == 0 ? "NONE" : change)}",
                delta,
            ];
        }
        return
        [
            $"TRUE: {Name(e.Label)}",
            $"CLEAN: {Name(e.CleanPrediction)} {Pct(e.CleanConfidence)}",
            $"ADV: {Name(e.AdversarialPrediction)} {Pct(e.AdversarialConfidence)}{(e.Broken ? "" : " (ROBUST)")}",
            delta,
        ];
    }

    /// <summary>One example as a PNG strip: clean | δ (amplified around mid-grey) | adversarial, caption below.</summary>
    public static byte[] StripPng(AdversarialExample e, IReadOnlyList<string> classNames)
    {
        using var image = Strip(e, classNames);
        return ToPng(image);
    }

    public static Image<Rgba32> Strip(AdversarialExample e, IReadOnlyList<string> classNames)
    {
        var (c, h, w) = ShapeOf(e);
        int s = UpscaleFor(h, w);
        int panelW = w * s, panelH = h * s;
        int width = Math.Max(3 * panelW + 4 * Gap, 2 * Gap + BitmapFont.Measure(new string('M', 32), CaptionScale));
        var lines = Caption(e, classNames);
        int lineH = (BitmapFont.GlyphHeight + 3) * CaptionScale;
        int height = Gap + panelH + Gap + lines.Count * lineH + Gap;
        var image = new Image<Rgba32>(width, height, Background);
        double amp = AmplificationOf(e);
        var delta = new float[e.Clean.Length];
        for (int i = 0; i < delta.Length; i++)
            delta[i] = (float)(0.5 + amp * (e.Adversarial[i] - e.Clean[i]) / e.Bounds.Range);
        int left = (width - (3 * panelW + 2 * Gap)) / 2;
        DrawPanel(image, Normalised(e.Clean, e), c, h, w, s, left, Gap);
        DrawPanel(image, delta, c, h, w, s, left + panelW + Gap, Gap);
        DrawPanel(image, Normalised(e.Adversarial, e), c, h, w, s, left + 2 * (panelW + Gap), Gap);
        int maxChars = BitmapFont.Fit(width - 2 * Gap, CaptionScale);
        for (int l = 0; l < lines.Count; l++)
        {
            var ink = l == 2 ? (e.Broken ? BrokenInk : RobustInk) : Ink;
            BitmapFont.Draw(image, BitmapFont.Truncate(lines[l], maxChars), Gap, Gap + panelH + Gap + l * lineH, ink, CaptionScale);
        }
        return image;
    }

    /// <summary>
    /// Many examples in one image: per cell the clean image above the adversarial one, with "true>adversarial"
    /// class indices underneath (red when broken, green when the point stayed robust).
    /// </summary>
    public static byte[] GridPng(IReadOnlyList<AdversarialExample> examples, int columns = 8)
    {
        if (examples.Count == 0) throw new ArgumentException("no examples to draw", nameof(examples));
        var (c, h, w) = ShapeOf(examples[0]);
        int s = Math.Max(1, UpscaleFor(h, w) / 2);
        int cellW = Math.Max(w * s, BitmapFont.Measure("00>00")), cellH = 2 * h * s + 2 + BitmapFont.GlyphHeight + 2;
        columns = Math.Clamp(columns, 1, examples.Count);
        int rows = (examples.Count + columns - 1) / columns;
        using var image = new Image<Rgba32>(Gap + columns * (cellW + Gap), Gap + rows * (cellH + Gap), Background);
        for (int k = 0; k < examples.Count; k++)
        {
            var e = examples[k];
            var (ck, hk, wk) = ShapeOf(e);
            if (ck != c || hk != h || wk != w) throw new ArgumentException("all examples in a grid must have the same shape", nameof(examples));
            int x0 = Gap + (k % columns) * (cellW + Gap), y0 = Gap + (k / columns) * (cellH + Gap);
            DrawPanel(image, Normalised(e.Clean, e), c, h, w, s, x0, y0);
            DrawPanel(image, Normalised(e.Adversarial, e), c, h, w, s, x0, y0 + h * s + 2);
            // Multi-label: how many labels the adversarial flipped.
            var text = e.Sets is { } sets
                ? FormattableString.Invariant($"{sets.True.Except(sets.Adversarial).Count() + sets.Adversarial.Except(sets.True).Count()}F")
                : FormattableString.Invariant($"{e.Label}>{e.AdversarialPrediction}");
            BitmapFont.Draw(image, BitmapFont.Truncate(text, BitmapFont.Fit(cellW)), x0, y0 + 2 * h * s + 3, e.Broken ? BrokenInk : RobustInk);
        }
        return ToPng(image);
    }

    public static byte[] ToPng(Image<Rgba32> image)
    {
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }

    private static (int C, int H, int W) ShapeOf(AdversarialExample e)
    {
        var shape = e.Shape;
        var (c, h, w) = shape.Length switch
        {
            3 => (shape[0], shape[1], shape[2]),
            2 => (1, shape[0], shape[1]),
            // Flat inputs (e.g. 2-D toy data) as a one-row image.
            1 => (1, 1, shape[0]),
            _ => throw new ArgumentException($"cannot draw a sample of shape [{string.Join(",", shape)}]"),
        };
        if (c * h * w != e.Clean.Length || e.Adversarial.Length != e.Clean.Length)
            throw new ArgumentException("example pixel arrays do not match its shape");
        return (c, h, w);
    }

    private static float[] Normalised(float[] v, AdversarialExample e)
    {
        var o = new float[v.Length];
        for (int i = 0; i < v.Length; i++) o[i] = (v[i] - e.Bounds.Lower) / e.Bounds.Range;
        return o;
    }

    /// <summary>Draws a [C,H,W] image with values in [0,1] (clamped) at (x0, y0), each pixel as an s×s block.</summary>
    private static void DrawPanel(Image<Rgba32> image, float[] v, int c, int h, int w, int s, int x0, int y0)
    {
        int plane = h * w;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                byte r, g, b;
                if (c == 3)
                {
                    r = Byte(v[y * w + x]); g = Byte(v[plane + y * w + x]); b = Byte(v[2 * plane + y * w + x]);
                }
                else
                {
                    float sum = 0;
                    for (int ch = 0; ch < c; ch++) sum += v[ch * plane + y * w + x];
                    r = g = b = Byte(sum / c);
                }
                var px = new Rgba32(r, g, b, 255);
                for (int dy = 0; dy < s; dy++)
                    for (int dx = 0; dx < s; dx++)
                    {
                        int X = x0 + x * s + dx, Y = y0 + y * s + dy;
                        if (X < image.Width && Y < image.Height) image[X, Y] = px;
                    }
            }
    }

    private static byte Byte(float v) => (byte)Math.Clamp((int)MathF.Round(v * 255f), 0, 255);
}
