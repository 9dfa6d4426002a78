using Robustness.Core.Attacking;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Core.Tests;

public class ThreatModelCheckTests
{
    private static TorchClassifier Linear(int d, int k = 3)
    {
        random.manual_seed(1);
        var net = nn.Sequential(nn.Flatten(), nn.Linear(d, k));
        return new TorchClassifier(net, new ModelSpec { Arch = "linear", InputShape = [d], NumClasses = k });
    }

    [Theory]
    [InlineData(Norm.Linf, 1e-4)]
    [InlineData(Norm.Linf, 3e-7)]
    [InlineData(Norm.L2, 1e-4)]
    [InlineData(Norm.L1, 1e-3)]
    [InlineData(Norm.Linf, 0.1)]
    [InlineData(Norm.L2, 0.5)]
    [InlineData(Norm.L1, 5.0)]
    public void FinalStepKeepsEveryRowInsideTheBallEvenForTinyEpsilon(Norm norm, double eps)
    {
        using var model = Linear(64);
        using var scope = NewDisposeScope();
        var gen = new Generator(7);
        // Pixels in [0.5, 1) have the coarsest float32 grid in [0,1]: the worst case for x + δ rounding.
        var x = (rand(256, 64, generator: gen) * Keep(0.1) + Keep(0.5)).to(ScalarType.Float32);
        var noise = randn(256, 64, generator: gen);
        var radius = Geometries.For(norm).Distance(noise).to(ScalarType.Float32).unsqueeze(1);
        var wild = x + noise / radius * Keep(2 * eps); // every row on the 2ε sphere
        var threat = new ThreatModel(norm, eps, Bounds.Unit);
        using var result = ThreatModelCheck.Finalize(model, x, wild, threat, new AttackTargets(zeros(256, ScalarType.Int64)));
        var exact = Geometries.For(norm).Distance(result.Adversarial.to(ScalarType.Float64) - x.to(ScalarType.Float64));
        Assert.True(exact.max().ToDouble() <= eps, $"max distance {exact.max().ToDouble():G17} > ε = {eps}");
        Assert.True(result.Adversarial.min().ToSingle() >= 0 && result.Adversarial.max().ToSingle() <= 1);
        // Projection is not collapse: rows keep most of their budget (clamping at 1 and float rounding take a little).
        Assert.True(exact.mean().ToDouble() > 0.5 * eps, $"mean distance {exact.mean().ToDouble():G6} for ε = {eps}");
    }

    [Fact]
    public void SuccessComesFromAFreshForwardPass()
    {
        using var model = Linear(8);
        using var scope = NewDisposeScope();
        var x = rand(32, 8);
        var labels = zeros(32, ScalarType.Int64);
        using var result = ThreatModelCheck.Finalize(model, x, x, new ThreatModel(Norm.Linf, 0.1, Bounds.Unit), new AttackTargets(labels));
        Tensor logits;
        using (no_grad()) logits = model.Logits(x);
        Assert.True(result.Success.eq(logits.argmax(1).ne(labels)).all().ToBoolean());
        Assert.Equal(0.0, result.Distance.max().ToDouble());
    }

    [Fact]
    public void VerifyRejectsPointsOutsideTheBallOrBounds()
    {
        using var scope = NewDisposeScope();
        var x = full(4, 3, Keep(0.5f));
        var threat = new ThreatModel(Norm.Linf, 0.1, Bounds.Unit);
        var far = x + Keep(0.2);
        Assert.Throws<ThreatModelViolationException>(() => ThreatModelCheck.Verify(x, far, LinfGeometry.Instance.Distance(far - x), threat));
        var outOfBox = full(4, 3, Keep(1.05f));
        var near = full(4, 3, Keep(1.0f));
        Assert.Throws<ThreatModelViolationException>(() => ThreatModelCheck.Verify(near, outOfBox, LinfGeometry.Instance.Distance(outOfBox - near), threat));
    }

    [Theory]
    [InlineData(Norm.Linf)]
    [InlineData(Norm.L2)]
    [InlineData(Norm.L1)]
    public void RandomStartsLieInTheBallAndProjectionIsIdempotent(Norm norm)
    {
        using var scope = NewDisposeScope();
        var g = Geometries.For(norm);
        var like = zeros(100, 1, 4, 4);
        var start = g.RandomStart(like, 0.3, new Generator(3));
        Assert.True(g.Distance(start).max().ToDouble() <= 0.3 * (1 + 1e-6));
        var big = randn(100, 1, 4, 4) * Keep(5);
        var p1 = g.Project(big, 0.3);
        var p2 = g.Project(p1, 0.3);
        Assert.True((p1 - p2).abs().max().ToSingle() < 1e-6);
        Assert.True(g.Distance(p1).max().ToDouble() <= 0.3 * (1 + 1e-5));
    }

    [Theory]
    [InlineData(Norm.Linf)]
    [InlineData(Norm.L2)]
    [InlineData(Norm.L1)]
    public void DirectionHasUnitDualPairing(Norm norm)
    {
        using var scope = NewDisposeScope();
        var g = Geometries.For(norm, 0.9);
        var grad = randn(10, 20);
        var current = full(10, 20, Keep(0.5f));
        var dir = g.Direction(grad, current, Bounds.Unit);
        // A steepest-ascent direction has unit norm (L∞: every coordinate ±1) and positive inner product with the gradient.
        Assert.True((grad * dir).sum(1).min().ToSingle() > 0);
        var size = g.Distance(dir);
        Assert.True((size - Keep(1)).abs().max().ToDouble() < 1e-5);
    }
}
