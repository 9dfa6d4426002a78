using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Evaluation;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Evaluation.Tests;

/// <summary>Each check against a model (or attack) built to trigger it, and against the healthy model.</summary>
public class SanityCheckTests
{
    private static IReadOnlyList<SanityCheckResult> RunCheck(IModelSanityCheck check, IClassifier model, IAttackSuite? suite = null, int n = 60, Tensor? inputs = null, double eps = 0.1)
    {
        using var scope = NewDisposeScope();
        var data = Fixtures.Data;
        var x = inputs ?? data.Images.narrow(0, 0, n);
        var y = data.Labels.narrow(0, 0, x.shape[0]);
        suite ??= Fixtures.FgsmPgd();
        var threat = ThreatModel.Linf(eps);
        var context = new SanityCheckContext(model, x, y, threat, suite, suite.Build(threat), 5, Fixtures.Classes);
        return check.Run(context);
    }

    private static SanityCheckResult One(IReadOnlyList<SanityCheckResult> results, string code) => results.Single(r => r.Code == code);

    [Fact]
    public void Probability_outputs_fire_on_a_softmax_model_only()
    {
        Assert.True(One(RunCheck(new ProbabilityOutputCheck(), Fixtures.SoftmaxOutput()), ProbabilityOutputCheck.Code).Fired);
        Assert.False(One(RunCheck(new ProbabilityOutputCheck(), Fixtures.Healthy()), ProbabilityOutputCheck.Code).Fired);
    }

    [Fact]
    public void Randomness_fires_on_a_noisy_model_only()
    {
        Assert.True(One(RunCheck(new DeterminismCheck(), Fixtures.Randomised()), DeterminismCheck.Code).Fired);
        Assert.False(One(RunCheck(new DeterminismCheck(), Fixtures.Healthy()), DeterminismCheck.Code).Fired);
    }

    [Fact]
    public void Eps_zero_differs_fires_on_a_noisy_model_only()
    {
        Assert.True(One(RunCheck(new EpsilonZeroCheck(), Fixtures.Randomised()), EpsilonZeroCheck.Code).Fired);
        Assert.False(One(RunCheck(new EpsilonZeroCheck(), Fixtures.Healthy()), EpsilonZeroCheck.Code).Fired);
    }

    [Fact]
    public void Zero_gradients_fire_on_a_quantising_model_only()
    {
        var masked = One(RunCheck(new GradientCheck(), Fixtures.Quantising()), GradientCheck.ZeroCode);
        Assert.True(masked.Fired);
        Assert.Equal(1.0, masked.Measured, 6);
        Assert.False(One(RunCheck(new GradientCheck(), Fixtures.Healthy()), GradientCheck.ZeroCode).Fired);
        Assert.False(One(RunCheck(new GradientCheck(), Fixtures.Healthy()), GradientCheck.NonFiniteCode).Fired);
    }

    [Fact]
    public void Nonfinite_gradients_fire_when_sqrt_meets_zero_pixels()
    {
        using var scope = NewDisposeScope();
        var x = Fixtures.Data.Images.narrow(0, 0, 20).clone();
        x[.., .., 0, 0] = 0; // d sqrt(x)/dx is infinite at 0
        Assert.True(One(RunCheck(new GradientCheck(), Fixtures.SqrtInput(), inputs: x), GradientCheck.NonFiniteCode).Fired);
    }

    [Fact]
    public void Large_eps_fires_when_the_attack_cannot_move()
    {
        // Quantised input: zero gradient everywhere, and PGD without random start stays at the clean point.
        var noStart = new DelegateAttackSuite(t => [Presets.Fgsm(t)])
        {
            PgdFactory = (t, steps, restarts) => Presets.Pgd(t, steps, restarts) with { Start = Starts.None },
        };
        Assert.True(One(RunCheck(new LargeEpsilonCheck(), Fixtures.Quantising(), noStart), LargeEpsilonCheck.Code).Fired);
        Assert.False(One(RunCheck(new LargeEpsilonCheck(), Fixtures.Healthy(), noStart), LargeEpsilonCheck.Code).Fired);
    }

    [Fact]
    public void Large_eps_scales_with_the_norm()
    {
        Assert.Equal(0.5, LargeEpsilonCheck.LargeEpsilon(Norm.Linf, Bounds.Unit, 100));
        Assert.Equal(5.0, LargeEpsilonCheck.LargeEpsilon(Norm.L2, Bounds.Unit, 100), 12);
        Assert.Equal(50.0, LargeEpsilonCheck.LargeEpsilon(Norm.L1, Bounds.Unit, 100));
    }

    [Fact]
    public void Fgsm_beating_pgd_fires_when_pgd_is_crippled()
    {
        // A PGD whose steps are far too small cannot leave the neighbourhood of the clean point; FGSM (one ε step) can.
        var crippled = new DelegateAttackSuite(t => [Presets.Fgsm(t)])
        {
            PgdFactory = (t, steps, restarts) => Presets.Pgd(t, steps, restarts) with { Start = Starts.None, AbsoluteStepSize = t.Epsilon * 1e-3 },
        };
        var bigEps = ThreatModel.Linf(0.2);
        using var scope = NewDisposeScope();
        var x = Fixtures.Data.Images.narrow(0, 0, 60);
        var y = Fixtures.Data.Labels.narrow(0, 0, 60);
        var fired = new FgsmVersusPgdCheck().Run(new SanityCheckContext(Fixtures.Healthy(), x, y, bigEps, crippled, crippled.Build(bigEps), 5, Fixtures.Classes));
        Assert.True(One(fired, FgsmVersusPgdCheck.Code).Fired);
        Assert.False(One(RunCheck(new FgsmVersusPgdCheck(), Fixtures.Healthy()), FgsmVersusPgdCheck.Code).Fired);
    }

    [Fact]
    public void Not_converged_fires_when_doubling_the_steps_helps_a_lot()
    {
        // One tiny step without random start: doubling the steps doubles how far PGD gets.
        var weak = new DelegateAttackSuite(t => [Presets.Fgsm(t)], Steps: 1, Restarts: 1)
        {
            PgdFactory = (t, steps, restarts) => Presets.Pgd(t, steps, restarts) with { Start = Starts.None, AbsoluteStepSize = 0.5 * t.Epsilon },
        };
        using var scope = NewDisposeScope();
        var eps = ThreatModel.Linf(0.2);
        var x = Fixtures.Data.Images.narrow(0, 0, 100);
        var y = Fixtures.Data.Labels.narrow(0, 0, 100);
        var results = new MoreIterationsCheck().Run(new SanityCheckContext(Fixtures.Healthy(), x, y, eps, weak, weak.Build(eps), 5, Fixtures.Classes));
        Assert.True(One(results, MoreIterationsCheck.NotConvergedCode).Fired, One(results, MoreIterationsCheck.NotConvergedCode).Detail);
        Assert.False(One(results, MoreIterationsCheck.StrongerWeakerCode).Fired);
    }

    [Fact]
    public void Non_monotone_sweep_fires_on_a_rising_curve()
    {
        static EpsilonResult E(double eps, double acc) => new(eps, acc, (int)(acc * 100), []);
        Assert.True(MonotoneSweepCheck.Run([E(0, 0.9), E(0.1, 0.5), E(0.2, 0.6)], 100).Fired);
        Assert.False(MonotoneSweepCheck.Run([E(0, 0.9), E(0.1, 0.5), E(0.2, 0.5)], 100).Fired);
        // One sample of slack for random starts.
        Assert.False(MonotoneSweepCheck.Run([E(0, 0.9), E(0.1, 0.5), E(0.2, 0.51)], 100).Fired);
    }

    [Fact]
    public void Black_box_beating_white_box_fires_on_the_quantising_model()
    {
        // PGD sees zero gradients (it only moves by its random start); Square needs no gradients and finds the way.
        var suite = new RegistryAttackSuite("pgd,square", new AttackOptions { Queries = 300 });
        var options = Fixtures.Options(suite, 0.15) with { SampleCount = 60, SanityChecks = false };
        var report = new Evaluator().Evaluate(Fixtures.Quantising(), Fixtures.Data, options).Report;
        var check = report.SanityChecks.Single(c => c.Code == BlackBoxCheck.Code);
        Assert.True(check.Fired, check.Detail);
        Assert.Contains(report.Warnings, w => w.Code == BlackBoxCheck.Code && w.Advice.Length > 0);

        var healthy = new Evaluator().Evaluate(Fixtures.Healthy(), Fixtures.Data, options).Report;
        Assert.False(healthy.SanityChecks.Single(c => c.Code == BlackBoxCheck.Code).Fired);
    }

    [Fact]
    public void Reduced_precision_fires_when_its_gradients_are_worse_than_float32()
    {
        var full = Fixtures.Healthy();
        // A view whose gradient passes carry no information (what a broken reduced-precision path would do)...
        var broken = One(RunCheck(new ReducedPrecisionCheck(), new GradientView(full, useful: false), n: 100, eps: 0.3), ReducedPrecisionCheck.Code);
        Assert.True(broken.Fired, broken.Detail);
        Assert.True(broken.Measured > 0.1, broken.Detail);
        // ...and one that differentiates exactly like float32.
        var faithful = One(RunCheck(new ReducedPrecisionCheck(), new GradientView(full, useful: true), n: 100, eps: 0.3), ReducedPrecisionCheck.Code);
        Assert.False(faithful.Fired, faithful.Detail);
        Assert.Equal(0, faithful.Measured);
        // Float32 evaluations do not run it.
        Assert.Empty(RunCheck(new ReducedPrecisionCheck(), full));
    }

    /// <summary>A reduced-precision stand-in: no_grad passes are the full model's; gradient passes useful or blind.</summary>
    private sealed class GradientView(TorchClassifier full, bool useful) : IReducedPrecisionClassifier
    {
        public IGradientClassifier FullPrecision => full;
        public string Precision => "test";
        public ModelSpec Spec => full.Spec;
        public Device Device => full.Device;
        public nn.Module<Tensor, Tensor> Module => full.Module;
        public Tensor Logits(Tensor inputs) =>
            !is_grad_enabled() || useful ? full.Logits(inputs) : full.Logits(inputs.detach()) + inputs.sum() * Keep(0);
        public void Refresh() { }
        public void Dispose() { }
    }

    [Fact]
    public void Every_check_code_has_specific_advice()
    {
        var codes = new[] { ProbabilityOutputCheck.Code, DeterminismCheck.Code, GradientCheck.ZeroCode, GradientCheck.NonFiniteCode,
            EpsilonZeroCheck.Code, FgsmVersusPgdCheck.Code, MoreIterationsCheck.NotConvergedCode, MoreIterationsCheck.StrongerWeakerCode,
            LargeEpsilonCheck.Code, MonotoneSweepCheck.Code, BlackBoxCheck.Code, ReducedPrecisionCheck.Code };
        var advice = codes.Select(c => SanityChecks.WarningFor(new SanityCheckResult(c, "model", true, 1, 0, 1, "detail")).Advice).ToArray();
        Assert.Equal(codes.Length, advice.Distinct().Count());
    }
}
