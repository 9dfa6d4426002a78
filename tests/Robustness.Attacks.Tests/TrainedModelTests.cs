using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks.Tests;

/// <summary>Attack strength on a small CNN trained on Fashion-MNIST (held-out points).</summary>
public class TrainedModelTests
{
    private const int N = 200;
    private static readonly ThreatModel Linf = ThreatModel.Linf(0.1);

    private static double RobustAccuracy(IAttack attack, Tensor x, Tensor y, long seed = 5)
    {
        using var scope = NewDisposeScope();
        using var r = attack.Run(Fixtures.TrainedCnn, x, new AttackTargets(y), AttackContext.Seeded(seed));
        return 100.0 * r.Success.logical_not().sum().ToInt64() / x.shape[0];
    }

    [Fact]
    public void ModelIsTrained()
    {
        var (x, y) = Fixtures.FashionHeldOut(1000);
        Assert.True(Fixtures.Accuracy(Fixtures.TrainedCnn, x, y) > 0.7);
    }

    [Fact]
    public void StrongerAttacksAreStronger()
    {
        var (x, y) = Fixtures.FashionHeldOut(N);
        var clean = 100 * Fixtures.Accuracy(Fixtures.TrainedCnn, x, y);
        var fgsm = RobustAccuracy(Presets.Fgsm(Linf), x, y);
        var pgd = RobustAccuracy(Presets.Pgd(Linf, steps: 20), x, y);
        var apgd = RobustAccuracy(new AutoPgdAttack(Linf) { Steps = 40 }, x, y);
        Assert.True(fgsm < clean, $"FGSM {fgsm}% vs clean {clean}%");
        Assert.True(pgd <= fgsm, $"PGD-20 {pgd}% > FGSM {fgsm}%");
        Assert.True(apgd <= pgd + 1, $"APGD {apgd}% > PGD-20 {pgd}% + 1");
    }

    [Fact]
    public void RestartsNeverRaiseRobustAccuracy()
    {
        var (x, y) = Fixtures.FashionHeldOut(100);
        var eps = ThreatModel.Linf(0.05);
        using var scope = NewDisposeScope();
        using var one = Presets.Pgd(eps, steps: 5, restarts: 1).Run(Fixtures.TrainedCnn, x, new AttackTargets(y), AttackContext.Seeded(9));
        using var three = Presets.Pgd(eps, steps: 5, restarts: 3).Run(Fixtures.TrainedCnn, x, new AttackTargets(y), AttackContext.Seeded(9));
        // Same seed: the first restart is the single run, later restarts only add successes.
        Assert.True(one.Success.logical_and(three.Success.logical_not()).any().ToBoolean() == false, "a restart lost a success");
        Assert.True(three.Success.sum().ToInt64() >= one.Success.sum().ToInt64());
        var apgd1 = RobustAccuracy(new AutoPgdAttack(eps) { Steps = 10, Restarts = 1 }, x, y, 3);
        var apgd2 = RobustAccuracy(new AutoPgdAttack(eps) { Steps = 10, Restarts = 2 }, x, y, 3);
        Assert.True(apgd2 <= apgd1, $"APGD with 2 restarts {apgd2}% > 1 restart {apgd1}%");
    }

    [Fact]
    public void TargetedAttacksHitTheirTargets()
    {
        var (x, y) = Fixtures.FashionHeldOut(100);
        var threat = ThreatModel.Linf(0.3);
        using var scope = NewDisposeScope();
        var gen = new Generator(4);
        var targets = TargetSelection.RandomOther(y, 10, gen);
        Assert.False(targets.eq(y).any().ToBoolean());
        var attack = Presets.Pgd(threat, steps: 30);
        using var r = attack.Run(Fixtures.TrainedCnn, x, new AttackTargets(y, targets), AttackContext.Seeded(1));
        var hit = r.Logits.argmax(1).eq(targets);
        Assert.True(r.Success.eq(hit).all().ToBoolean(), "targeted success must mean target hit");
        Assert.True(hit.to(ScalarType.Float64).mean().ToDouble() > 0.8, $"only {hit.to(ScalarType.Float64).mean().ToDouble():P0} of targets hit");

        // Least-likely targets through the registry wrapper: success is judged as misclassification.
        var wrapped = AttackRegistry.Create("pgd", threat, new AttackOptions { Steps = 30, Targeted = true, TargetMode = "least-likely" });
        using var w = wrapped.Run(Fixtures.TrainedCnn, x, new AttackTargets(y), AttackContext.Seeded(1));
        Assert.True(w.Success.to(ScalarType.Float64).mean().ToDouble() > 0.8);

        // APGD-T breaks at least as many points as its first target alone would.
        var apgdT = new AutoPgdAttack(ThreatModel.Linf(0.1)) { Steps = 20, TargetCount = 3 };
        var robustT = RobustAccuracy(apgdT, x, y);
        var clean = 100 * Fixtures.Accuracy(Fixtures.TrainedCnn, x, y);
        Assert.True(robustT < clean - 20, $"APGD-T {robustT}% vs clean {clean}%");
    }

    [Theory]
    [InlineData("cw", "l2", 1.0)]
    [InlineData("deepfool", "l2", 1.0)]
    [InlineData("deepfool", "linf", 0.05)]
    public void MinimumNormAttacksAreConsistent(string name, string normName, double eps)
    {
        var (x, y) = Fixtures.FashionHeldOut(30);
        var threat = new ThreatModel(NormNames.Parse(normName), eps, Bounds.Unit);
        var attack = AttackRegistry.Create(name, threat, new AttackOptions { Steps = name == "cw" ? 30 : 50, BinarySearchSteps = 4, LearningRate = 0.05, InitialConst = 0.1 });
        using var scope = NewDisposeScope();
        using var r = attack.Run(Fixtures.TrainedCnn, x, new AttackTargets(y), AttackContext.Seeded(2));
        var norms = r.MinimumNorm ?? throw new Xunit.Sdk.XunitException("no MinimumNorm");
        var finite = norms.isfinite();
        Assert.True(finite.to(ScalarType.Float64).mean().ToDouble() >= 0.9, $"only {finite.sum().ToInt64()} of {x.shape[0]} with an adversarial");
        // Points whose minimal adversarial lies inside the ball must be reported broken at ε.
        var inside = norms.le(Keep(eps * 0.999));
        var consistent = inside.logical_not().logical_or(r.Success);
        Assert.True(consistent.to(ScalarType.Float64).mean().ToDouble() >= 0.97,
            $"{inside.logical_and(r.Success.logical_not()).sum().ToInt64()} points with minimum norm ≤ ε not broken at ε");
        Assert.True(inside.sum().ToInt64() > 0 && inside.logical_not().logical_and(finite).sum().ToInt64() > 0, "ε should split the points");
    }

    [Fact]
    public void SquareReducesAccuracyWithoutGradients()
    {
        var (x, y) = Fixtures.FashionHeldOut(100);
        var clean = 100 * Fixtures.Accuracy(Fixtures.TrainedCnn, x, y);
        var scoreOnly = new ScoreOnlyClassifier(Fixtures.TrainedCnn);
        var linf = RobustAccuracy2(new SquareAttack(Linf) { Queries = 300 }, scoreOnly, x, y);
        Assert.True(linf < clean - 10, $"Square L∞ {linf}% vs clean {clean}%");
        var l2 = RobustAccuracy2(new SquareAttack(new ThreatModel(Norm.L2, 2.0, Bounds.Unit)) { Queries = 300 }, scoreOnly, x, y);
        Assert.True(l2 < clean - 10, $"Square L2 {l2}% vs clean {clean}%");
    }

    private static double RobustAccuracy2(IAttack attack, IClassifier model, Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        using var r = attack.Run(model, x, new AttackTargets(y), AttackContext.Seeded(5));
        return 100.0 * r.Success.logical_not().sum().ToInt64() / x.shape[0];
    }
}

/// <summary>bf16 gradient passes (Models.Bf16GradientClassifier) on the shipped PGD-trained model.</summary>
public class Bf16AttackTests
{
    [Fact]
    public void Bf16AttackIsJudgedInFloat32AndAsStrongAsFloat32()
    {
        using var scope = NewDisposeScope();
        using var model = Models.ModelFile.Load(Path.Combine(Fixtures.FindRepoRoot(), "data", "models", "tiny-cnn-pgd.safetensors"), CPU);
        using var view = new Models.Bf16GradientClassifier(model);
        var (x, y) = Fixtures.Fashion;
        (x, y) = (x.narrow(0, 0, 256), y.narrow(0, 0, 256));
        var attack = Presets.Pgd(ThreatModel.Linf(0.1), steps: 10, restarts: 1) with { RelativeStepSize = 0.25 };

        using var f32 = attack.Run(model, x, new AttackTargets(y), AttackContext.Seeded(7));
        using var bf16 = attack.Run(view, x, new AttackTargets(y), AttackContext.Seeded(7));

        // The verdict comes from the float32 model on the returned points, whatever arithmetic proposed them.
        Tensor judged;
        using (no_grad()) judged = model.Logits(bf16.Adversarial);
        // (Equal up to summation order: the final step feeds the network a channels-last copy. bf16 would differ by ~1e-2.)
        var gap = (judged - bf16.Logits).abs().max().ToSingle();
        Assert.True(gap < 1e-4f, $"bf16 result's logits differ from the float32 model's by {gap}");
        Assert.True(bf16.Distance.max().ToDouble() <= 0.1 * (1 + 1e-6));
        Assert.False(bf16.Adversarial.eq(f32.Adversarial).all().ToBoolean(), "the bf16 view was not used");

        double Robust(AttackResult r) => 100.0 * r.Logits.argmax(1).eq(y).logical_and(r.Success.logical_not()).sum().ToInt64() / 256;
        var (a, b) = (Robust(f32), Robust(bf16));
        Assert.InRange(a, 50, 95); // a robust model, so the comparison means something
        Assert.True(Math.Abs(a - b) <= 2.0, $"PGD-10 robust accuracy float32 {a:F1}% vs bf16 {b:F1}%");
    }
}
