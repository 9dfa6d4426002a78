using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks.Tests;

/// <summary>
/// Linear classifiers f(x) = Wx + b without box constraints have an exact robust accuracy: a point is robust iff for
/// every j ≠ y, (w_y − w_j)·x + b_y − b_j &gt; ε‖w_y − w_j‖_* (the dual norm). The attacks must reach it.
/// </summary>
public class ClosedFormLinearTests
{
    private const int Features = 20;
    private const int Points = 2000;
    private static readonly Bounds Huge = new(-1e6f, 1e6f);

    private sealed record Linear(TorchClassifier Model, double[,] W, double[] B, Tensor X, Tensor Y, double[,] Xs, long[] Ys);

    private static Linear Make(int classes, long seed)
    {
        random.manual_seed(seed);
        var layer = nn.Linear(Features, classes);
        var gen = new Generator((ulong)seed);
        var w = randn([classes, Features], generator: gen);
        var b = randn([classes], generator: gen) * Keep(0.5);
        using (no_grad())
        {
            layer.weight!.copy_(w);
            layer.bias!.copy_(b);
        }
        var model = new TorchClassifier(layer, Fixtures.Spec([Features], classes, Huge));
        var x = randn([Points, Features], generator: gen);
        // Labels from a slightly different linear rule, so some points are misclassified clean.
        var y = (x.matmul(w.t()) + b + randn([Points, classes], generator: gen) * Keep(0.3)).argmax(1);
        return new Linear(model, ToArray2(w), b.to(ScalarType.Float64).data<double>().ToArray(), x, y, ToArray2(x), y.data<long>().ToArray());
    }

    private static double[,] ToArray2(Tensor t)
    {
        var flat = t.to(ScalarType.Float64).contiguous().data<double>().ToArray();
        var (r, c) = ((int)t.shape[0], (int)t.shape[1]);
        var a = new double[r, c];
        for (int i = 0; i < r; i++) for (int j = 0; j < c; j++) a[i, j] = flat[i * c + j];
        return a;
    }

    /// <summary>The exact robust accuracy from the closed form, computed in float64 on the host.</summary>
    private static double ExactRobustAccuracy(Linear m, Norm norm, double eps)
    {
        int k = m.B.Length, robust = 0;
        for (int i = 0; i < Points; i++)
        {
            int y = (int)m.Ys[i];
            bool ok = true;
            for (int j = 0; j < k && ok; j++)
            {
                if (j == y) continue;
                double margin = m.B[y] - m.B[j], dual = 0;
                for (int f = 0; f < Features; f++)
                {
                    double d = m.W[y, f] - m.W[j, f];
                    margin += d * m.Xs[i, f];
                    dual = norm switch
                    {
                        Norm.Linf => dual + Math.Abs(d),
                        Norm.L2 => dual + d * d,
                        _ => Math.Max(dual, Math.Abs(d)),
                    };
                }
                if (norm == Norm.L2) dual = Math.Sqrt(dual);
                ok = margin > eps * dual;
            }
            if (ok) robust++;
        }
        return 100.0 * robust / Points;
    }

    private static double RobustAccuracy(IAttack attack, Linear m, long seed = 1)
    {
        using var scope = NewDisposeScope();
        using var result = attack.Run(m.Model, m.X, new AttackTargets(m.Y), AttackContext.Seeded(seed));
        return 100.0 * result.Success.logical_not().sum().ToInt64() / Points;
    }

    /// <summary>One targeted FGSM/FGM per other class on the pairwise margin: optimal for a linear model.</summary>
    private static WorstCaseEnsemble PairwiseEnsemble(ThreatModel threat, int classes) =>
        new(threat, Enumerable.Range(1, classes - 1).Select(offset => (IAttack)new FixedOffsetTargets(
            Presets.Fgsm(threat) with { Objective = new PairwiseMarginObjective() }, offset, classes)).ToArray());

    public static IEnumerable<object[]> Norms() =>
        [[Norm.Linf, 0.15], [Norm.L2, 0.6], [Norm.L1, 1.0]];

    [Theory]
    [MemberData(nameof(Norms))]
    public void WorstCaseEnsembleReachesExactRobustAccuracy(Norm norm, double eps)
    {
        var m = Make(5, 21);
        var threat = new ThreatModel(norm, eps, Huge);
        var exact = ExactRobustAccuracy(m, norm, eps);
        Assert.InRange(exact, 10, 90); // a meaningful ε: neither everything nor nothing robust
        var ensemble = RobustAccuracy(PairwiseEnsemble(threat, 5), m);
        Assert.InRange(ensemble, exact - 0.5, exact + 0.5);
    }

    [Theory]
    [MemberData(nameof(Norms))]
    public void UntargetedPgdIsCloseToExactAndNeverBelowIt(Norm norm, double eps)
    {
        var m = Make(5, 22);
        var threat = new ThreatModel(norm, eps, Huge);
        var exact = ExactRobustAccuracy(m, norm, eps);
        var pgd = RobustAccuracy(Presets.Pgd(threat, steps: 20) with { Objective = Objectives.Margin }, m);
        // An attack can never beat the exact answer (up to float32 rounding of points on the boundary).
        Assert.True(pgd >= exact - 0.1, $"PGD {pgd}% below the exact robust accuracy {exact}%");
        Assert.True(pgd <= exact + 2, $"PGD {pgd}% vs exact {exact}%");
        var fast = RobustAccuracy(AttackRegistry.Ensemble("fast", threat, new AttackOptions { Steps = 30, TargetCount = 4 }), m);
        Assert.True(fast >= exact - 0.1 && fast <= exact + 2, $"fast ensemble {fast}% vs exact {exact}%");
    }

    /// <summary>Per point the exact distance to the decision boundary: min over j ≠ y of margin_j / ‖w_y − w_j‖_*
    /// (the class region is an intersection of half-spaces); 0 where the point is misclassified.</summary>
    private static double[] ExactMinimumDistance(Linear m, Norm norm)
    {
        int k = m.B.Length;
        var result = new double[Points];
        for (int i = 0; i < Points; i++)
        {
            int y = (int)m.Ys[i];
            double best = double.PositiveInfinity;
            for (int j = 0; j < k; j++)
            {
                if (j == y) continue;
                double margin = m.B[y] - m.B[j], dual = 0;
                for (int f = 0; f < Features; f++)
                {
                    double d = m.W[y, f] - m.W[j, f];
                    margin += d * m.Xs[i, f];
                    dual = norm switch { Norm.Linf => dual + Math.Abs(d), Norm.L2 => dual + d * d, _ => Math.Max(dual, Math.Abs(d)) };
                }
                if (norm == Norm.L2) dual = Math.Sqrt(dual);
                best = Math.Min(best, Math.Max(margin, 0) / dual);
            }
            result[i] = best;
        }
        return result;
    }

    [Theory]
    [MemberData(nameof(Norms))]
    public void FabFindsTheClosedFormMinimumDistance(Norm norm, double eps)
    {
        var m = Make(5, 24);
        var exact = ExactMinimumDistance(m, norm);
        using var scope = NewDisposeScope();
        using var r = new FabAttack(new ThreatModel(norm, eps, Huge)).Run(m.Model, m.X, new AttackTargets(m.Y), AttackContext.Seeded(1));
        var found = r.MinimumNorm!.data<double>().ToArray();
        for (int i = 0; i < Points; i++)
        {
            if (exact[i] == 0) { Assert.Equal(0, found[i]); continue; }
            // Never below the true minimum (up to float32 rounding), and within 1 % of it.
            Assert.True(found[i] >= exact[i] * (1 - 1e-4) && found[i] <= exact[i] * 1.01,
                $"point {i}: FAB {found[i]:G6} vs exact {exact[i]:G6} ({norm.Name()})");
        }
        // Success at ε exactly where the minimum distance is within ε (up to FAB's 1 % and float rounding).
        var success = r.Success.data<bool>().ToArray();
        for (int i = 0; i < Points; i++)
            if (exact[i] <= eps / 1.01 || exact[i] > eps * 1.0001) Assert.Equal(exact[i] <= eps, success[i]);
    }

    [Theory]
    [MemberData(nameof(Norms))]
    public void FabTargetedOverEveryClassReachesExactRobustAccuracy(Norm norm, double eps)
    {
        var m = Make(5, 25);
        var threat = new ThreatModel(norm, eps, Huge);
        var exact = ExactRobustAccuracy(m, norm, eps);
        Assert.InRange(exact, 10, 90);
        var fabT = AttackRegistry.Create("fab-t", threat);
        using var scope = NewDisposeScope();
        using var r = fabT.Run(m.Model, m.X, new AttackTargets(m.Y), AttackContext.Seeded(1));
        var robust = 100.0 * r.Success.logical_not().sum().ToInt64() / Points;
        // Four targets cover every other class: only points within FAB's 1 % of ε may survive wrongly.
        Assert.True(robust >= exact - 0.1 && robust <= exact + 1, $"FAB-T {robust}% vs exact {exact}%");
        // Points no target broke were attacked towards every class: their minimum norm is the closed form.
        var distance = ExactMinimumDistance(m, norm);
        var found = r.MinimumNorm!.data<double>().ToArray();
        var broken = r.Success.data<bool>().ToArray();
        for (int i = 0; i < Points; i++)
            if (!broken[i]) Assert.True(found[i] >= distance[i] * (1 - 1e-4) && found[i] <= distance[i] * 1.01, $"point {i}: FAB-T {found[i]} vs {distance[i]}");
    }

    [Fact]
    public void FgsmIsExactForBinaryLinearClassifier()
    {
        var m = Make(2, 23);
        const double eps = 0.2;
        var threat = new ThreatModel(Norm.Linf, eps, Huge);
        var exact = ExactRobustAccuracy(m, Norm.Linf, eps);
        Assert.InRange(exact, 10, 90);
        var fgsm = RobustAccuracy(Presets.Fgsm(threat), m);
        Assert.InRange(fgsm, exact - 0.1, exact + 0.1);
    }

    /// <summary>Targets t = (y + offset) mod K, for sweeping every other class.</summary>
    private sealed record FixedOffsetTargets(ProjectedGradientAttack Inner, int Offset, int Classes) : AttackBase(Inner.Threat)
    {
        public override string Name => Inner.Name + "+" + Offset;
        public override IReadOnlyDictionary<string, object> Parameters => Inner.Parameters;
        protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
        {
            var target = (targets.Labels + Keep(Offset)).remainder(Keep(Classes));
            using var r = Inner.Run(model, inputs, new AttackTargets(targets.Labels, target), context);
            return new Perturbation(r.Adversarial.clone());
        }
    }
}
