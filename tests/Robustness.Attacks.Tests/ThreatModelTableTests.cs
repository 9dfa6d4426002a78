using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks.Tests;

/// <summary>
/// One table over attack × norm × ε (ε = 0 included) on a random MLP and a quickly trained CNN: every result stays in
/// the ε-ball and the bounds, robust accuracy never exceeds clean accuracy, ε = 0 reproduces the clean predictions,
/// and Success agrees with a fresh forward pass.
/// </summary>
public class ThreatModelTableTests
{
    private static readonly Dictionary<Norm, double[]> Epsilons = new()
    {
        [Norm.Linf] = [0, 0.03, 0.2],
        [Norm.L2] = [0, 0.5, 2.0],
        [Norm.L1] = [0, 2.0, 8.0],
    };

    private static readonly string[] AttackNames =
        ["fgsm", "bim", "pgd", "pgd-restarts", "pgd-targeted", "mi-fgsm", "apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "cw", "deepfool", "square", "fast"];

    public static IEnumerable<object[]> Cases()
    {
        // Every ε on the cheap random MLP; the middle ε on the trained CNN (realistic gradients, more cost).
        foreach (var model in new[] { "mlp", "cnn" })
            foreach (var norm in Enum.GetValues<Norm>())
                foreach (var eps in model == "mlp" ? Epsilons[norm] : [Epsilons[norm][1]])
                    foreach (var attack in AttackNames)
                        if (Supports(attack, norm))
                            yield return [model, norm.Name(), eps, attack];
    }

    private static bool Supports(string attack, Norm norm) => attack switch
    {
        "cw" => norm == Norm.L2,
        "deepfool" or "square" => norm != Norm.L1,
        _ => true,
    };

    internal static IAttack Build(string name, ThreatModel threat)
    {
        var small = new AttackOptions { Steps = 8, Queries = 60, TargetCount = 3, BinarySearchSteps = 3 };
        return name switch
        {
            "pgd-restarts" => AttackRegistry.Create("pgd", threat, small with { Restarts = 3 }),
            "pgd-targeted" => AttackRegistry.Create("pgd", threat, small with { Targeted = true, TargetMode = "least-likely" }),
            "cw" => AttackRegistry.Create("cw", threat, small with { Steps = 20, LearningRate = 0.05 }),
            "fgsm" => AttackRegistry.Create("fgsm", threat),
            "fast" => AttackRegistry.Ensemble("fast", threat, small),
            _ => AttackRegistry.Create(name, threat, small),
        };
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void AttackRespectsThreatModel(string modelName, string normName, double eps, string attackName)
    {
        using var scope = NewDisposeScope();
        var norm = NormNames.Parse(normName);
        TorchClassifier model;
        Tensor x, y;
        if (modelName == "mlp")
        {
            model = Fixtures.RandomMlp(11);
            (x, y) = Fixtures.RandomData(model, 48, 3);
        }
        else
        {
            model = Fixtures.TrainedCnn;
            (x, y) = Fixtures.FashionHeldOut(24);
        }
        var threat = new ThreatModel(norm, eps, Bounds.Unit);
        var attack = Build(attackName, threat);
        Assert.NotEmpty(attack.Parameters);
        Assert.Equal(norm.Name(), attack.Parameters["norm"]);

        using var result = attack.Run(model, x, new AttackTargets(y), AttackContext.Seeded(42));

        // In the ball and the box, measured here in float64 rather than trusting the result's own distance.
        var delta = (result.Adversarial.to(ScalarType.Float64) - x.to(ScalarType.Float64)).reshape(x.shape[0], -1);
        var dist = norm switch
        {
            Norm.Linf => delta.abs().amax([1L]),
            Norm.L2 => delta.norm(1, false, 2),
            _ => delta.abs().sum(1),
        };
        Assert.True(dist.max().ToDouble() <= eps * (1 + 1e-6) + 1e-9, $"‖δ‖ = {dist.max().ToDouble()} > ε = {eps}");
        Assert.True(result.Adversarial.min().ToSingle() >= 0f && result.Adversarial.max().ToSingle() <= 1f, "outside [0,1]");
        Assert.Equal(x.shape, result.Adversarial.shape);

        using var noGrad = no_grad();
        var logits = model.Logits(result.Adversarial);
        var fresh = logits.argmax(1).ne(y);
        Assert.True(fresh.eq(result.Success).all().ToBoolean(), "Success disagrees with a fresh forward pass");

        var cleanCorrect = model.Logits(x).argmax(1).eq(y);
        var robust = result.Success.logical_not().sum().ToInt64();
        Assert.True(robust <= cleanCorrect.sum().ToInt64(), $"robust {robust} > clean correct {cleanCorrect.sum().ToInt64()}");

        if (eps == 0)
        {
            Assert.True(result.Adversarial.eq(x).all().ToBoolean(), "ε = 0 must return the clean inputs");
            Assert.True(result.Success.eq(cleanCorrect.logical_not()).all().ToBoolean(), "ε = 0 must give the clean predictions");
        }
        if (result.MinimumNorm is { } minimumNorm)
            Assert.Equal(x.shape[0], minimumNorm.shape[0]);
    }
}
