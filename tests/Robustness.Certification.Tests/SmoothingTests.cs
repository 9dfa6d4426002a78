using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Certification.Tests;

/// <summary>
/// Randomized smoothing on a linear base classifier f(x) = [w·x + b &gt; 0], where everything is known in closed form:
/// p_A = Φ(d/σ) with d = |w·x + b|/‖w‖ the distance to the hyperplane, so the exact certified radius σ·Φ⁻¹(p_A) is d.
/// </summary>
public class SmoothingTests
{
    private const int Dim = 16;

    /// <summary>Logits [0, w·x + b]: class 1 on the positive side of the hyperplane.</summary>
    private static (TorchClassifier Model, Tensor W, double B) LinearModel()
    {
        manual_seed(7);
        var fc = nn.Linear(Dim, 2);
        var w = randn(Dim, dtype: float32);
        w /= w.norm();
        const double b = -0.1;
        using (no_grad())
        {
            fc.weight!.copy_(stack([zeros(Dim), w]));
            fc.bias!.copy_(tensor(new[] { 0f, (float)b }));
        }
        var spec = new ModelSpec { Arch = "linear", InputShape = [Dim], NumClasses = 2, Bounds = new Bounds(-10, 10) };
        return (new TorchClassifier(fc, spec), w, b);
    }

    private static double Distance(Tensor w, double b, Tensor x) => Math.Abs((w * x).sum().ToDouble() + b);

    [Fact]
    public void Certified_radius_never_exceeds_the_exact_radius_and_comes_close_to_it()
    {
        var (model, w, b) = LinearModel();
        using var _ = model;
        var smoothing = new RandomizedSmoothing(0.5) { N0 = 100, N = 20_000, Alpha = 1e-6, BatchSize = 4096 };
        using var generator = new Generator(11);
        int certified = 0;
        for (int i = 0; i < 24; i++)
        {
            using var scope = NewDisposeScope();
            var x = randn(Dim, generator: generator) * Keep(0.3);
            double d = Distance(w, b, x);
            int side = (w * x).sum().ToDouble() + b > 0 ? 1 : 0;
            var c = smoothing.Certify(model, x, generator);
            if (c.Abstained) { Assert.True(d < 0.1, $"abstained at distance {d} from the boundary"); continue; }
            certified++;
            Assert.Equal(side, c.Prediction);
            Assert.True(c.Radius <= d, $"point {i}: certified radius {c.Radius} exceeds the exact radius {d}");
            // With n = 20,000 the lower bound loses little: within 0.15σ of the truth until the sample cap σ·Φ⁻¹(α^(1/n)).
            double cap = smoothing.MaxCertifiableRadius(smoothing.N);
            Assert.True(c.Radius >= Math.Min(d, cap) - 0.15 * smoothing.Sigma, $"point {i}: radius {c.Radius} far below {Math.Min(d, cap)}");
        }
        Assert.True(certified >= 15, $"only {certified} points certified");
    }

    [Fact]
    public void Predict_abstains_on_the_boundary_and_answers_away_from_it()
    {
        var (model, w, b) = LinearModel();
        using var _ = model;
        var smoothing = new RandomizedSmoothing(0.25) { Alpha = 0.001, BatchSize = 1000 };
        using var generator = new Generator(12);
        using var scope = NewDisposeScope();
        var onBoundary = w * Keep(-b);                       // w·x + b = 0
        int answered = 0;
        for (int t = 0; t < 10; t++)
            if (!smoothing.Predict(model, onBoundary, 1000, generator).Abstained) answered++;
        Assert.True(answered <= 1, $"PREDICT answered {answered} of 10 times on the decision boundary");
        var far = w * Keep(2);                                 // distance 1.9 on the positive side
        var p = smoothing.Predict(model, far, 1000, generator);
        Assert.Equal(1, p.Prediction);
        Assert.True(p.PValue < 1e-100);
    }

    [Fact]
    public void Max_certifiable_radius_is_the_all_correct_bound()
    {
        // σ·Φ⁻¹(α^(1/n)) at σ = 0.25, α = 0.001 (mpmath): n = 100,000 → 0.952864140847488, n = 10,000 → 0.799644378684583.
        // Ours is lower by the Clopper–Pearson safety margin (10⁻⁹ in p̲_A, under 10⁻⁵σ in radius), never higher.
        var s = new RandomizedSmoothing(0.25);
        foreach (var (n, exact) in new[] { (100_000L, 0.952864140847488), (10_000L, 0.799644378684583) })
        {
            var r = s.MaxCertifiableRadius(n);
            Assert.True(r <= exact && r > exact - 1e-5 * s.Sigma, $"n = {n}: {r} vs {exact}");
        }
    }

    [Theory]
    [InlineData(0.0, 100, 1000, 0.001, "Sigma")]
    [InlineData(-1.0, 100, 1000, 0.001, "Sigma")]
    [InlineData(0.25, 2000, 1000, 0.001, "N0")]
    [InlineData(0.25, 100, 1000, 0.0, "Alpha")]
    [InlineData(0.25, 100, 1000, 1.0, "Alpha")]
    [InlineData(0.25, 0, 1000, 0.01, "N0")]
    public void Bad_parameters_are_named(double sigma, int n0, int n, double alpha, string parameter)
    {
        var e = Assert.Throws<ParameterException>(() => new RandomizedSmoothing(sigma) { N0 = n0, N = n, Alpha = alpha }.Validate());
        Assert.Equal(parameter, e.Parameter);
    }

    [Fact]
    public void Smoothed_attack_crosses_the_boundary_only_when_the_ball_reaches_it()
    {
        var (model, w, b) = LinearModel();
        using var _ = model;
        const double sigma = 0.25;
        var smoothing = new RandomizedSmoothing(sigma) { BatchSize = 2000 };
        using var generator = new Generator(13);
        using var scope = NewDisposeScope();
        var x = (w * Keep(0.6)).unsqueeze(0);                  // distance 0.5 from the boundary, class 1
        var y = tensor(new long[] { 1 });
        foreach (var (eps, flips) in new[] { (0.3, false), (0.8, true) })
        {
            var attack = new SmoothedPgdAttack(sigma, new ThreatModel(Norm.L2, eps, model.Spec.Bounds)) { Steps = 20, NoiseSamples = 64 };
            var adv = attack.Run(model, x, y, generator);
            Assert.True((adv - x).norm().ToDouble() <= eps);
            var p = smoothing.Predict(model, adv[0], 4000, generator);
            Assert.True(flips ? p.Prediction == 0 : p.Prediction == 1, $"ε = {eps}: PREDICT gave {p.Prediction}");
        }
    }
}
