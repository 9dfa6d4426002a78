using Robustness.Core;

namespace Robustness.Data.Toy;

/// <summary>A 2-D point with its label: ±1 for classification (+1 blue/positive, −1 orange/negative), a value in
/// [−1, 1] for regression.</summary>
public readonly record struct ToyPoint(double X1, double X2, double Label);

/// <summary>Classification or regression: what the labels of a toy set mean.</summary>
public enum ToyProblem { Classification, Regression }

/// <summary>
/// The 2-D toy sets of the TensorFlow Playground (circle, exclusive or, two Gaussians, spiral; regression plane and
/// multi-Gaussian) with its noise semantics: noise ∈ [0, 0.5] jitters the label (circle, xor, regression: the label
/// is taken at a uniformly displaced point), the position (spiral) or the spread (Gaussian variance 0.5 → 4).
/// Every point lies in the view [−6, 6]² (the Gaussian set, whose tails can leave it, redraws such coordinates), so
/// the view is also the input box of a threat model. Seeded with <see cref="Random"/>, whose seeded sequence is
/// stable across .NET versions.
/// </summary>
public static class ToyDatasets
{
    /// <summary>Half-width of the view and input box.</summary>
    public const double Extent = 6.0;
    public static Bounds Bounds => new(-(float)Extent, (float)Extent);

    public static readonly IReadOnlyList<string> ClassificationNames = ["circle", "xor", "gauss", "spiral"];
    public static readonly IReadOnlyList<string> RegressionNames = ["plane", "multigauss"];
    public static IReadOnlyList<string> Names => [.. ClassificationNames, .. RegressionNames];

    /// <summary>The TF Playground's sample counts: 500 points to classify, 1200 to regress.</summary>
    public static int DefaultCount(string name) => ProblemOf(name) == ToyProblem.Regression ? 1200 : 500;

    public static ToyProblem ProblemOf(string name) => Normalise(name) switch
    {
        "plane" or "multigauss" => ToyProblem.Regression,
        "circle" or "xor" or "gauss" or "spiral" => ToyProblem.Classification,
        _ => throw Unknown(name),
    };

    /// <param name="name">circle, xor, gauss, spiral, plane, multigauss.</param>
    /// <param name="count">Number of points (≥ 2).</param>
    /// <param name="noise">Noise in [0, 0.5] (the TF Playground's slider 0–50 divided by 100).</param>
    public static ToyPoint[] Generate(string name, int count, double noise, long seed)
    {
        if (count < 2 || count > 100_000) throw new ParameterException("Count", $"must be in [2, 100000], got {count}");
        if (!(noise >= 0 && noise <= 0.5)) throw new ParameterException("Noise", FormattableString.Invariant($"must be in [0, 0.5], got {noise}"));
        var rng = new Random(unchecked((int)(seed ^ (seed >> 32))));
        return Normalise(name) switch
        {
            "circle" => Circle(rng, count, noise),
            "xor" => Xor(rng, count, noise),
            "gauss" => TwoGaussians(rng, count, noise),
            "spiral" => Spiral(rng, count, noise),
            "plane" => Plane(rng, count, noise),
            "multigauss" => MultiGaussian(rng, count, noise),
            _ => throw Unknown(name),
        };
    }

    /// <summary>Shuffles with the seed and splits: the first <paramref name="trainPercent"/> % train, the rest test.</summary>
    public static (ToyPoint[] Train, ToyPoint[] Test) Split(ToyPoint[] points, int trainPercent, long seed)
    {
        if (trainPercent < 1 || trainPercent > 99) throw new ParameterException("TrainPercent", $"must be in [1, 99], got {trainPercent}");
        var shuffled = points.ToArray();
        new Random(unchecked((int)(seed * 31 + 7))).Shuffle(shuffled);
        int split = (int)Math.Floor(shuffled.Length * trainPercent / 100.0);
        split = Math.Clamp(split, 1, shuffled.Length - 1);
        return (shuffled[..split], shuffled[split..]);
    }

    private static string Normalise(string name) => name.Trim().ToLowerInvariant() switch
    {
        "exclusive-or" or "exclusiveor" => "xor",
        "gaussian" => "gauss",
        "multi-gaussian" or "multi-gauss" or "multigaussian" => "multigauss",
        "reg-plane" => "plane",
        var n => n,
    };

    private static ParameterException Unknown(string name) =>
        new("Dataset", $"unknown toy set '{name}' (valid: {string.Join(", ", Names)})");

    private static double Uniform(Random r, double a, double b) => a + r.NextDouble() * (b - a);

    /// <summary>Marsaglia's polar method, as the TF Playground draws its Gaussians.</summary>
    private static double Normal(Random r, double mean, double variance)
    {
        double v1, v2, s;
        do
        {
            v1 = 2 * r.NextDouble() - 1;
            v2 = 2 * r.NextDouble() - 1;
            s = v1 * v1 + v2 * v2;
        } while (s > 1 || s == 0);
        return mean + Math.Sqrt(variance) * Math.Sqrt(-2 * Math.Log(s) / s) * v1;
    }

    private static ToyPoint[] Circle(Random r, int n, double noise)
    {
        const double radius = 5;
        var points = new List<ToyPoint>(n);
        double Label(double x, double y) => Math.Sqrt(x * x + y * y) < radius * 0.5 ? 1 : -1;
        void Ring(int count, double rMin, double rMax)
        {
            for (int i = 0; i < count; i++)
            {
                double rr = Uniform(r, rMin, rMax), angle = Uniform(r, 0, 2 * Math.PI);
                double x = rr * Math.Sin(angle), y = rr * Math.Cos(angle);
                double nx = Uniform(r, -radius, radius) * noise, ny = Uniform(r, -radius, radius) * noise;
                points.Add(new ToyPoint(x, y, Label(x + nx, y + ny)));
            }
        }
        Ring(n / 2, 0, radius * 0.5);
        Ring(n - n / 2, radius * 0.7, radius);
        return [.. points];
    }

    private static ToyPoint[] Xor(Random r, int n, double noise)
    {
        const double padding = 0.3;
        var points = new ToyPoint[n];
        for (int i = 0; i < n; i++)
        {
            double x = Uniform(r, -5, 5); x += x > 0 ? padding : -padding;
            double y = Uniform(r, -5, 5); y += y > 0 ? padding : -padding;
            double nx = Uniform(r, -5, 5) * noise, ny = Uniform(r, -5, 5) * noise;
            points[i] = new ToyPoint(x, y, (x + nx) * (y + ny) >= 0 ? 1 : -1);
        }
        return points;
    }

    private static ToyPoint[] TwoGaussians(Random r, int n, double noise)
    {
        double variance = 0.5 + noise / 0.5 * (4 - 0.5);
        var points = new List<ToyPoint>(n);
        double Draw(double mean)
        {
            // Truncated to the view: a coordinate outside [−6, 6] is drawn again.
            while (true) { var v = Normal(r, mean, variance); if (Math.Abs(v) <= Extent) return v; }
        }
        for (int i = 0; i < n / 2; i++) points.Add(new ToyPoint(Draw(2), Draw(2), 1));
        for (int i = n / 2; i < n; i++) points.Add(new ToyPoint(Draw(-2), Draw(-2), -1));
        return [.. points];
    }

    private static ToyPoint[] Spiral(Random r, int n, double noise)
    {
        var points = new List<ToyPoint>(n);
        void Arm(int count, double deltaT, double label)
        {
            for (int i = 0; i < count; i++)
            {
                double rr = (double)i / count * 5;
                double t = 1.75 * i / count * 2 * Math.PI + deltaT;
                double x = rr * Math.Sin(t) + Uniform(r, -1, 1) * noise;
                double y = rr * Math.Cos(t) + Uniform(r, -1, 1) * noise;
                points.Add(new ToyPoint(x, y, label));
            }
        }
        Arm(n / 2, 0, 1);
        Arm(n - n / 2, Math.PI, -1);
        return [.. points];
    }

    private static ToyPoint[] Plane(Random r, int n, double noise)
    {
        var points = new ToyPoint[n];
        for (int i = 0; i < n; i++)
        {
            double x = Uniform(r, -Extent, Extent), y = Uniform(r, -Extent, Extent);
            double nx = Uniform(r, -Extent, Extent) * noise, ny = Uniform(r, -Extent, Extent) * noise;
            // The label scale maps x + y ∈ [−10, 10] linearly to [−1, 1] (unclamped, as in the TF Playground).
            points[i] = new ToyPoint(x, y, (x + nx + y + ny) / 10);
        }
        return points;
    }

    private static readonly (double X, double Y, double Sign)[] Bumps =
        [(-4, 2.5, 1), (0, 2.5, -1), (4, 2.5, 1), (-4, -2.5, -1), (0, -2.5, 1), (4, -2.5, -1)];

    private static ToyPoint[] MultiGaussian(Random r, int n, double noise)
    {
        static double Label(double x, double y)
        {
            double label = 0;
            foreach (var (cx, cy, sign) in Bumps)
            {
                double d = Math.Sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy));
                double v = sign * Math.Clamp(1 - d / 2, 0, 1);
                if (Math.Abs(v) > Math.Abs(label)) label = v;
            }
            return label;
        }
        var points = new ToyPoint[n];
        for (int i = 0; i < n; i++)
        {
            double x = Uniform(r, -Extent, Extent), y = Uniform(r, -Extent, Extent);
            double nx = Uniform(r, -Extent, Extent) * noise, ny = Uniform(r, -Extent, Extent) * noise;
            points[i] = new ToyPoint(x, y, Label(x + nx, y + ny));
        }
        return points;
    }
}
