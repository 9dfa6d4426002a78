using System.Globalization;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Robustness.Evaluation;

/// <summary>
/// PNG pictures of adversarial examples: a strip "clean | amplified perturbation | adversarial", and a grid summarising
/// many points. The pictures hold no text: what they show is said by <see cref="Caption"/>, which the HTML report sets
/// under each image in the page's own font. Images are upscaled with nearest neighbour so single pixels stay visible.
/// Grayscale (C = 1) and RGB (C = 3) inputs are drawn as such; other channel counts as the channel mean.
/// </summary>
public static class PerturbationImages
{
    private static readonly Rgba32 Background = new(255, 255, 255, 255);
    private static readonly Rgba32 BrokenInk = new(180, 30, 30, 255);
    private static readonly Rgba32 RobustInk = new(20, 120, 40, 255);
    public const int Gap = 6;
    /// <summary>Height of the bar under each grid cell: red when the point was broken, green when it stayed robust.</summary>
    public const int VerdictBar = 4;

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

    /// <summary>
    /// What a strip shows, line by line: the true class, the clean and the adversarial prediction with their confidence,
    /// the attack, ‖δ‖ and the amplification of the middle panel. <see cref="CaptionLine.Verdict"/> marks the adversarial
    /// line: broken or robust.
    /// </summary>
    public static IReadOnlyList<CaptionLine> Caption(AdversarialExample e, IReadOnlyList<string> classNames)
    {
        string Name(int c) => c >= 0 && c < classNames.Count ? classNames[c] : c.ToString(CultureInfo.InvariantCulture);
        string Pct(double p) => double.IsNaN(p) ? "label only" : (p * 100).ToString("0", CultureInfo.InvariantCulture) + " %";
        double amp = AmplificationOf(e);
        if (e.Sets is { } sets)
        {
            string WithProbabilities(int[] set, double[] p) => set.Length == 0 ? "{}"
                : string.Join(", ", set.Select(c => $"{Name(c)} {(c < p.Length ? Pct(p[c]) : "")}".TrimEnd()));
            var change = SetChange(sets.True, sets.Adversarial, classNames);
            return
            [
                new("true labels", SetText(sets.True, classNames)),
                new("clean", WithProbabilities(sets.Clean, sets.CleanProbabilities)),
                new("adversarial", WithProbabilities(sets.Adversarial, sets.AdversarialProbabilities) + (e.Broken ? "" : ", robust"), e.Broken ? Verdict.Broken : Verdict.Robust),
                new("flipped", change.Length == 0 ? "none" : change),
                new("attack", e.AttackName),
                new("‖δ‖", e.Distance.ToString("0.####", CultureInfo.InvariantCulture)),
                new("δ shown", amp > 0 ? $"× {amp.ToString("0.#", CultureInfo.InvariantCulture)} around grey" : "δ = 0"),
            ];
        }
        return
        [
            new("true class", Name(e.Label)),
            new("clean", $"{Name(e.CleanPrediction)} ({Pct(e.CleanConfidence)})"),
            new("adversarial", $"{Name(e.AdversarialPrediction)} ({Pct(e.AdversarialConfidence)}){(e.Broken ? "" : ", robust")}", e.Broken ? Verdict.Broken : Verdict.Robust),
            new("attack", e.AttackName),
            new("‖δ‖", e.Distance.ToString("0.####", CultureInfo.InvariantCulture)),
            new("δ shown", amp > 0 ? $"× {amp.ToString("0.#", CultureInfo.InvariantCulture)} around grey" : "δ = 0"),
        ];
    }

    /// <summary>One example as a PNG strip: clean | δ (amplified around mid-grey) | adversarial, <see cref="Gap"/> pixels
    /// apart, no margin and no text.</summary>
    public static byte[] StripPng(AdversarialExample e)
    {
        using var image = Strip(e);
        return ToPng(image);
    }

    public static Image<Rgba32> Strip(AdversarialExample e)
    {
        var (c, h, w) = ShapeOf(e);
        int s = UpscaleFor(h, w);
        int panelW = w * s, panelH = h * s;
        var image = new Image<Rgba32>(3 * panelW + 2 * Gap, panelH, Background);
        double amp = AmplificationOf(e);
        var delta = new float[e.Clean.Length];
        for (int i = 0; i < delta.Length; i++)
            delta[i] = (float)(0.5 + amp * (e.Adversarial[i] - e.Clean[i]) / e.Bounds.Range);
        DrawPanel(image, Normalised(e.Clean, e), c, h, w, s, 0, 0);
        DrawPanel(image, delta, c, h, w, s, panelW + Gap, 0);
        DrawPanel(image, Normalised(e.Adversarial, e), c, h, w, s, 2 * (panelW + Gap), 0);
        return image;
    }

    /// <summary>
    /// Many examples in one image, in the order given: per cell the clean image above the adversarial one and a bar
    /// underneath, red when the point was broken and green when it stayed robust.
    /// </summary>
    public static byte[] GridPng(IReadOnlyList<AdversarialExample> examples, int columns = 8)
    {
        if (examples.Count == 0) throw new ArgumentException("no examples to draw", nameof(examples));
        var (c, h, w) = ShapeOf(examples[0]);
        int s = Math.Max(1, UpscaleFor(h, w) / 2);
        int cellW = w * s, cellH = 2 * h * s + 2 + VerdictBar;
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
            var verdict = e.Broken ? BrokenInk : RobustInk;
            for (int y = 0; y < VerdictBar; y++)
                for (int x = 0; x < cellW; x++) image[x0 + x, y0 + 2 * h * s + 2 + y] = verdict;
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

/// <summary>Whether an example was broken or stayed robust (marks the adversarial line of a caption).</summary>
public enum Verdict { Broken, Robust }

/// <summary>One line of an example's caption: what (<paramref name="Key"/>) and its value, as plain text.</summary>
public sealed record CaptionLine(string Key, string Value, Verdict? Verdict = null);
