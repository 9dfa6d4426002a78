using System.Globalization;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SkiaSharp;

namespace Robustness.Playground;

/// <summary>
/// The page's view drawn on the server (SkiaSharp, the library ScottPlot draws with; PNG written by ImageSharp), for
/// `robust playground --render` and anything else without a browser: the network with its neuron thumbnails and
/// weights, the output heat map of each network with training and test points, ε-balls, PGD adversarial examples with
/// arrows and IBP-certified points, the loss curves and the metrics. Colours as on the page.
/// </summary>
public static class PlaygroundRenderer
{
    private static readonly SKColor Orange = new(245, 147, 34), Grey = new(232, 234, 235), Blue = new(8, 119, 189);
    private static readonly SKColor Ink = new(31, 42, 48), Muted = new(107, 119, 128), Teal = new(24, 61, 78), Broken = new(176, 0, 32), Certified = new(26, 152, 80);

    public static SKColor Colour(double v)
    {
        if (double.IsNaN(v)) v = 0;
        v = Math.Clamp(v, -1, 1);
        var (a, b, t) = v < 0 ? (Grey, Orange, -v) : (Grey, Blue, v);
        byte L(byte x, byte y) => (byte)Math.Round(x + (y - x) * t);
        return new SKColor(L(a.Red, b.Red), L(a.Green, b.Green), L(a.Blue, b.Blue));
    }

    private static SKFont Font(float size, bool bold = false) =>
        new(SKTypeface.FromFamilyName("DejaVu Sans", bold ? SKFontStyle.Bold : SKFontStyle.Normal) ?? SKTypeface.Default, size);

    /// <summary>The view as PNG bytes, <paramref name="width"/> pixels wide (the layout is designed at 1400).</summary>
    public static byte[] Render(PlaygroundEngine engine, int width = 1400)
    {
        float k = width / 1400f;
        int height = (int)Math.Round(720 * k);
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            canvas.Scale(k);
            Draw(canvas, engine);
        }
        using var image = SixLabors.ImageSharp.Image.LoadPixelData<Rgba32>(bitmap.Bytes, width, height);
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }

    private static void Draw(SKCanvas c, PlaygroundEngine engine)
    {
        var s = engine.State;
        var nets = engine.Snapshots();
        var grids = engine.OutputGrids();
        var thumbs = engine.Thumbnails();
        using var fill = new SKPaint { IsAntialias = true, Style = SKPaintStyle.Fill };
        using var stroke = new SKPaint { IsAntialias = true, Style = SKPaintStyle.Stroke };

        // header
        fill.Color = Teal;
        c.DrawRect(0, 0, 1400, 58, fill);
        fill.Color = SKColors.White;
        using (var f = Font(21)) c.DrawText("Robustness Playground", 22, 27, SKTextAlign.Left, f, fill);
        fill.Color = new SKColor(184, 203, 211);
        using (var f = Font(12)) c.DrawText(Summary(engine), 22, 46, SKTextAlign.Left, f, fill);

        DrawNetwork(c, engine, nets[0], thumbs, fill, stroke);

        // heat maps
        const float mapSize = 300, mapY = 104;
        float mapX = 690;
        using var captionFont = Font(13, bold: true);
        using var textFont = Font(12);
        for (int i = 0; i < nets.Count; i++)
        {
            float x = mapX + i * (mapSize + 48);
            var n = nets[i];
            fill.Color = Ink;
            c.DrawText($"{ObjectiveLabel(n.Objective)} training" + (n.Role == "standard" && n.ForkedAtEpoch > 0 ? $" (from epoch {n.ForkedAtEpoch})" : ""), x, mapY - 12, SKTextAlign.Left, captionFont, fill);
            DrawMap(c, engine, grids[i], n, x, mapY, mapSize, fill, stroke);
            fill.Color = new SKColor(74, 86, 94);
            var a = n.Attack;
            var lines = s.IsClassification
                ? new[]
                {
                    $"test loss {F(n.TestLoss)}   training loss {F(n.TrainLoss)}",
                    $"clean {P(n.TestAccuracy)}   robust {P(a?.RobustAccuracy)}   IBP-certified {P(a?.CertifiedAccuracy)}",
                    a?.SmoothedCertifiedAccuracy is { } sm ? $"randomized smoothing ({a.SmoothingParameters}): {P(sm)} certified at ε" : "",
                }
                : [$"test loss {F(n.TestLoss)}   training loss {F(n.TrainLoss)}", $"adversarial test loss {F(a?.RobustLoss)}"];
            for (int j = 0; j < lines.Length; j++) c.DrawText(lines[j], x, mapY + mapSize + 36 + j * 17, SKTextAlign.Left, textFont, fill);
        }
        if (nets.Count == 1) DrawLoss(c, nets, mapX + mapSize + 48, mapY, 330, 150, fill, stroke);
        else DrawLoss(c, nets, 30, 596, 620, 92, fill, stroke);

        // legend
        for (int i = 0; i < 160; i++)
        {
            fill.Color = Colour(i / 159.0 * 2 - 1);
            c.DrawRect(mapX + i, 500, 1, 10, fill);
        }
        using var small = Font(10.5f);
        fill.Color = Muted;
        c.DrawText("-1", mapX, 524, SKTextAlign.Left, small, fill);
        c.DrawText("0", mapX + 80, 524, SKTextAlign.Center, small, fill);
        c.DrawText("1", mapX + 160, 524, SKTextAlign.Right, small, fill);
        var norm = s.Norm == Core.Norm.Linf ? "L∞" : "L2";
        var what = s.IsClassification
            ? $"robust: PGD-{s.AttackSteps} (α = {s.AttackStepSize:0.##}ε, random start) at {norm} ε = {s.Epsilon:0.00} on {engine.TestPoints.Length} test points; green rings: IBP-certified; red squares: adversarial examples that flip the prediction"
            : $"adversarial loss: PGD-{s.AttackSteps} maximising the squared error in the {norm} ε = {s.Epsilon:0.00} ball";
        c.DrawText("orange = negative, blue = positive; white-edged dots: training data, dark-edged: test data", mapX + 180, 510, SKTextAlign.Left, small, fill);
        c.DrawText(what, 30, 708, SKTextAlign.Left, small, fill);
    }

    private static string Summary(PlaygroundEngine e)
    {
        var s = e.State;
        return string.Create(CultureInfo.InvariantCulture,
            $"{s.ActiveDataset} · noise {s.Noise} · {s.PercTrainData}% training · features {string.Join(", ", s.Features)} · hidden {(s.NetworkShape.Count == 0 ? "none" : string.Join(",", s.NetworkShape))} · {s.Activation} · lr {s.LearningRate} · {s.Optimizer} · {ObjectiveLabel(s.Objective)} · {(s.Norm == Core.Norm.Linf ? "L∞" : "L2")} ε {s.Epsilon:0.00} · epoch {e.Epoch} · seed {s.Seed}");
    }

    private static string ObjectiveLabel(string o) => o switch
    {
        "standard" => "Standard", "pgd" => "PGD-AT", "trades" => "TRADES", "gaussian" => "Gaussian noise", "fgsm-rs" => "FGSM-RS", _ => o,
    };

    private static SKBitmap GridBitmap(byte[] bytes, int n, bool discrete)
    {
        var bmp = new SKBitmap(n, n, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        for (int r = 0; r < n; r++)
            for (int col = 0; col < n; col++)
            {
                double v = bytes[r * n + col] / 127.5 - 1;
                bmp.SetPixel(col, r, Colour(discrete ? (v >= 0 ? 1 : -1) : v));
            }
        return bmp;
    }

    private static void DrawImage(SKCanvas c, SKBitmap bmp, SKRect dest)
    {
        using var image = SKImage.FromBitmap(bmp);
        c.DrawImage(image, dest, new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.None));
    }

    private static void DrawMap(SKCanvas c, PlaygroundEngine engine, byte[] grid, NetworkSnapshot n, float x0, float y0, float size, SKPaint fill, SKPaint stroke)
    {
        var s = engine.State;
        using (var bmp = GridBitmap(grid, engine.GridSize, s.Discretize)) DrawImage(c, bmp, new SKRect(x0, y0, x0 + size, y0 + size));
        float X(double v) => x0 + (float)((v + 6) / 12 * size);
        float Y(double v) => y0 + (float)((6 - v) / 12 * size);
        float k = size / 12f, eps = (float)s.Epsilon;
        SKColor PointColour(double label) => Colour(s.IsClassification ? (label > 0 ? 1 : -1) : label);
        var test = engine.TestPoints;
        if (s.ShowBalls && eps > 0)
        {
            stroke.StrokeWidth = 1;
            stroke.Color = new SKColor(40, 50, 56, 90);
            foreach (var p in test)
            {
                fill.Color = s.IsClassification ? (p.Label > 0 ? new SKColor(8, 119, 189, 34) : new SKColor(245, 147, 34, 40)) : new SKColor(60, 60, 60, 20);
                if (s.Norm == Core.Norm.Linf)
                {
                    var r = new SKRect(X(p.X1) - eps * k, Y(p.X2) - eps * k, X(p.X1) + eps * k, Y(p.X2) + eps * k);
                    c.DrawRect(r, fill); c.DrawRect(r, stroke);
                }
                else { c.DrawCircle(X(p.X1), Y(p.X2), eps * k, fill); c.DrawCircle(X(p.X1), Y(p.X2), eps * k, stroke); }
            }
        }
        void Dot(Data.Toy.ToyPoint p, SKColor edge)
        {
            fill.Color = PointColour(p.Label);
            c.DrawCircle(X(p.X1), Y(p.X2), 3.2f, fill);
            stroke.Color = edge; stroke.StrokeWidth = 1;
            c.DrawCircle(X(p.X1), Y(p.X2), 3.2f, stroke);
        }
        foreach (var p in engine.TrainPoints) Dot(p, SKColors.White);
        if (s.ShowTestData) foreach (var p in test) Dot(p, Ink);
        var a = n.Attack;
        if (s.ShowCertified && a?.Certified is { } cert)
        {
            stroke.Color = Certified; stroke.StrokeWidth = 1.6f;
            for (int i = 0; i < test.Length; i++) if (cert[i]) c.DrawCircle(X(test[i].X1), Y(test[i].X2), 6.2f, stroke);
        }
        if (s.ShowCertified && a?.SmoothedRadius is { } radii)
        {
            stroke.Color = new SKColor(26, 152, 80, 200); stroke.StrokeWidth = 1;
            using var dash = SKPathEffect.CreateDash([3, 2], 0);
            stroke.PathEffect = dash;
            for (int i = 0; i < test.Length; i++) if (radii[i] > 0) c.DrawCircle(X(test[i].X1), Y(test[i].X2), radii[i] * k, stroke);
            stroke.PathEffect = null;
        }
        if (s.ShowAttack && a is not null && a.Adversarial.Length == test.Length * 2)
        {
            for (int i = 0; i < test.Length; i++)
            {
                float xa = X(test[i].X1), ya = Y(test[i].X2), xb = X(a.Adversarial[2 * i]), yb = Y(a.Adversarial[2 * i + 1]);
                bool broken = a.Broken[i];
                var colour = broken ? Broken : new SKColor(31, 42, 48, 115);
                stroke.Color = colour; stroke.StrokeWidth = broken ? 1.5f : 1f;
                float len = MathF.Sqrt((xb - xa) * (xb - xa) + (yb - ya) * (yb - ya));
                if (len > 2)
                {
                    c.DrawLine(xa, ya, xb, yb, stroke);
                    float ang = MathF.Atan2(yb - ya, xb - xa), h = Math.Min(6, len * 0.6f);
                    using var head = new SKPath();
                    head.MoveTo(xb, yb);
                    head.LineTo(xb - h * MathF.Cos(ang - 0.45f), yb - h * MathF.Sin(ang - 0.45f));
                    head.LineTo(xb - h * MathF.Cos(ang + 0.45f), yb - h * MathF.Sin(ang + 0.45f));
                    head.Close();
                    fill.Color = colour;
                    c.DrawPath(head, fill);
                }
                if (broken)
                {
                    var r = new SKRect(xb - 2.6f, yb - 2.6f, xb + 2.6f, yb + 2.6f);
                    fill.Color = PointColour(test[i].Label);
                    c.DrawRect(r, fill);
                    stroke.Color = Broken; stroke.StrokeWidth = 1.3f;
                    c.DrawRect(r, stroke);
                }
            }
        }
        stroke.Color = new SKColor(196, 205, 211); stroke.StrokeWidth = 1;
        c.DrawRect(x0, y0, size, size, stroke);
        fill.Color = Muted;
        using var f = Font(9.5f);
        for (int v = -6; v <= 6; v += 2)
        {
            c.DrawText(v.ToString(CultureInfo.InvariantCulture), x0 - 4, Y(v) + 3, SKTextAlign.Right, f, fill);
            c.DrawText(v.ToString(CultureInfo.InvariantCulture), X(v), y0 + size + 13, SKTextAlign.Center, f, fill);
        }
    }

    private static void DrawNetwork(SKCanvas c, PlaygroundEngine engine, NetworkSnapshot n, byte[][] thumbs, SKPaint fill, SKPaint stroke)
    {
        var net = engine.Model.Network;
        var widths = net.Widths;
        const float node = 38, gap = 12, top = 110, left = 110, right = 610;
        int cols = widths.Length;
        float ColX(int col) => cols == 1 ? left : left + (right - left) * col / (cols - 1);
        float NodeY(int j) => top + j * (node + gap);
        using var label = Font(12);
        using var head = Font(11, bold: true);
        fill.Color = new SKColor(74, 86, 94);
        c.DrawText("FEATURES", ColX(0) + node / 2, 88, SKTextAlign.Center, head, fill);
        for (int l = 1; l < cols - 1; l++) c.DrawText($"LAYER {l} · {widths[l]}", ColX(l) + node / 2, 88, SKTextAlign.Center, head, fill);
        c.DrawText("OUTPUT", ColX(cols - 1) + node / 2, 88, SKTextAlign.Center, head, fill);
        // links: weights[layer][to][from]
        for (int l = 0; l < cols - 1; l++)
            for (int to = 0; to < widths[l + 1]; to++)
                for (int from = 0; from < widths[l]; from++)
                {
                    double w = n.Weights[l][to][from];
                    float x0 = ColX(l) + node, y0 = NodeY(from) + node / 2, x1 = ColX(l + 1), y1 = NodeY(to) + node / 2, mx = (x0 + x1) / 2;
                    using var path = new SKPath();
                    path.MoveTo(x0, y0);
                    path.CubicTo(mx, y0, mx, y1, x1, y1);
                    stroke.Color = Colour(w);
                    stroke.StrokeWidth = (float)Math.Clamp(0.8 + Math.Abs(w) * 1.8, 0.6, 10);
                    c.DrawPath(path, stroke);
                }
        int t = 0;
        for (int l = 0; l < cols; l++)
            for (int j = 0; j < widths[l]; j++)
            {
                float x = ColX(l), y = NodeY(j);
                if (t < thumbs.Length)
                    using (var bmp = GridBitmap(thumbs[t], PlaygroundEngine.ThumbnailSize, engine.State.Discretize && l == cols - 1))
                        DrawImage(c, bmp, new SKRect(x, y, x + node, y + node));
                t++;
                stroke.Color = new SKColor(154, 165, 172); stroke.StrokeWidth = 1;
                c.DrawRect(x, y, node, node, stroke);
                if (l == 0)
                {
                    fill.Color = new SKColor(55, 67, 74);
                    c.DrawText(FeatureLabel(net.FeatureNames[j]), x - 8, y + node / 2 + 4, SKTextAlign.Right, label, fill);
                }
                else
                {
                    fill.Color = Colour(n.Biases[l - 1][j]);
                    c.DrawRect(x - 5, y + node - 4, 9, 9, fill);
                    stroke.Color = new SKColor(125, 136, 144);
                    c.DrawRect(x - 5, y + node - 4, 9, 9, stroke);
                }
            }
        // gradient-norm strip under the network
        float stripY = top + 8 * (node + gap) + 10;
        using var small = Font(10);
        fill.Color = Muted;
        c.DrawText("gradient norm per layer ‖∇W‖ (log scale, mean over the last updates)", left - 80, stripY, SKTextAlign.Left, small, fill);
        for (int l = 0; l < n.GradientNorms.Length; l++)
        {
            double v = n.GradientNorms[l];
            double lv = v > 0 ? Math.Log10(v) : -8, frac = Math.Clamp((lv + 8) / 9, 0, 1);
            float cx = (ColX(l) + node + ColX(l + 1)) / 2, bw = Math.Min(50, (ColX(l + 1) - ColX(l)) * 0.55f), h = 34;
            fill.Color = new SKColor(238, 241, 243);
            c.DrawRect(cx - bw / 2, stripY + 8, bw, h, fill);
            fill.Color = lv < -4 ? new SKColor(198, 40, 40) : lv < -2 ? new SKColor(239, 138, 31) : new SKColor(46, 125, 50);
            c.DrawRect(cx - bw / 2, stripY + 8 + h * (float)(1 - frac), bw, h * (float)frac, fill);
            fill.Color = new SKColor(74, 86, 94);
            c.DrawText(v > 0 ? v.ToString("0.0e+0", CultureInfo.InvariantCulture) : "0", cx, stripY + h + 22, SKTextAlign.Center, small, fill);
        }
    }

    private static string FeatureLabel(string f) => f switch
    {
        "x1" => "X1", "x2" => "X2", "x1sq" => "X1²", "x2sq" => "X2²", "x1x2" => "X1X2", "sinx1" => "sin(X1)", "sinx2" => "sin(X2)", _ => f,
    };

    private static void DrawLoss(SKCanvas c, IReadOnlyList<NetworkSnapshot> nets, float x0, float y0, float w, float h, SKPaint fill, SKPaint stroke)
    {
        fill.Color = new SKColor(247, 249, 250);
        c.DrawRect(x0, y0, w, h, fill);
        double maxY = 0; int maxX = 1;
        foreach (var n in nets)
            foreach (var p in n.History)
            {
                maxX = Math.Max(maxX, p.Epoch);
                if (double.IsFinite(p.TrainLoss)) maxY = Math.Max(maxY, p.TrainLoss);
                if (double.IsFinite(p.TestLoss)) maxY = Math.Max(maxY, p.TestLoss);
            }
        if (maxY <= 0) maxY = 1;
        float X(double e) => x0 + 4 + (w - 8) * (float)(e / maxX);
        float Y(double v) => y0 + h - 4 - (h - 10) * (float)Math.Min(1, v / maxY);
        foreach (var n in nets)
        {
            bool main = n.Role == "main";
            using var dash = main ? null : SKPathEffect.CreateDash([4, 3], 0);
            foreach (var (pick, colour) in new (Func<LossPoint, double>, SKColor)[] { (p => p.TrainLoss, new SKColor(154, 165, 172)), (p => p.TestLoss, main ? Ink : new SKColor(194, 24, 91)) })
            {
                using var path = new SKPath();
                bool started = false;
                foreach (var p in n.History)
                {
                    var v = pick(p);
                    if (!double.IsFinite(v)) continue;
                    if (!started) { path.MoveTo(X(p.Epoch), Y(v)); started = true; } else path.LineTo(X(p.Epoch), Y(v));
                }
                stroke.Color = colour; stroke.StrokeWidth = 1.6f; stroke.PathEffect = dash;
                c.DrawPath(path, stroke);
                stroke.PathEffect = null;
            }
        }
        using var small = Font(10);
        fill.Color = Muted;
        c.DrawText($"loss (max {maxY:0.00})   " + (nets.Count > 1 ? "test: solid defended, dashed standard · training: grey" : "test: dark · training: grey"), x0, y0 - 5, SKTextAlign.Left, small, fill);
        c.DrawText($"epoch {maxX}", x0 + w, y0 - 5, SKTextAlign.Right, small, fill);
    }

    private static string F(double? v) => v is { } x && double.IsFinite(x) ? x.ToString("0.000", CultureInfo.InvariantCulture) : "–";
    private static string P(double? v) => v is { } x && double.IsFinite(x) ? (100 * x).ToString("0.0", CultureInfo.InvariantCulture) + "%" : "–";
}
