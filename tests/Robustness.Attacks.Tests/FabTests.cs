using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks.Tests;

/// <summary>FAB on the shipped Fashion-MNIST models, against DeepFool (the other minimum-norm attack for L2 and L∞).</summary>
public class FabTests
{
    private const int N = 200;

    public static IEnumerable<object[]> Cases() =>
        from model in new[] { "tiny-cnn-standard", "tiny-cnn-pgd" }
        from norm in new[] { "l2", "linf" }
        select new object[] { model, norm };

    [Theory]
    [MemberData(nameof(Cases))]
    public void FabDistancesAreAtMostDeepFools(string modelName, string normName)
    {
        using var scope = NewDisposeScope();
        using var model = Models.ModelFile.Load(Path.Combine(Fixtures.FindRepoRoot(), "data", "models", modelName + ".safetensors"), CPU);
        var (x, y) = Fixtures.Fashion;
        (x, y) = (x.narrow(0, 0, N), y.narrow(0, 0, N));
        var threat = new ThreatModel(NormNames.Parse(normName), normName == "l2" ? 1.0 : 0.05, Bounds.Unit);
        var targets = new AttackTargets(y);
        using var fab = new FabAttack(threat).Run(model, x, targets, AttackContext.Seeded(1));
        using var deepFool = new DeepFoolAttack(threat).Run(model, x, targets, AttackContext.Seeded(1));
        var f = fab.MinimumNorm!.data<double>().ToArray();
        var d = deepFool.MinimumNorm!.data<double>().ToArray();

        // Per point where DeepFool found an adversarial: FAB found one at most as far (a point FAB did not break
        // counts against it). Where both found one, FAB's is never farther.
        int deepFoolBroke = 0, fabAtMost = 0, both = 0, bothAtMost = 0;
        for (int i = 0; i < N; i++)
        {
            if (!double.IsFinite(d[i])) continue;
            deepFoolBroke++;
            if (f[i] <= d[i]) fabAtMost++;
            if (double.IsFinite(f[i])) { both++; if (f[i] <= d[i]) bothAtMost++; }
        }
        Assert.True(deepFoolBroke >= N * 0.9, $"DeepFool broke only {deepFoolBroke} of {N}");
        Assert.True(fabAtMost >= deepFoolBroke * 0.9, $"FAB's distance ≤ DeepFool's on only {fabAtMost} of {deepFoolBroke} points");
        Assert.True(bothAtMost >= both * 0.99, $"FAB farther than DeepFool on {both - bothAtMost} of the {both} points both broke");
        // Medians over all points, a point without an adversarial at +∞.
        double Median(double[] v) => v.Order().ElementAt(v.Length / 2);
        Assert.True(Median(f) <= Median(d), $"median FAB {Median(f):G4} > median DeepFool {Median(d):G4}");

        // The reported minimum norms are real: the adversarials where they are within ε are broken at ε.
        var inside = fab.MinimumNorm!.le(Keep(threat.Epsilon));
        Assert.True(inside.logical_and(fab.Success.logical_not()).sum().ToInt64() == 0, "a minimum norm within ε that is not broken at ε");
    }
}
