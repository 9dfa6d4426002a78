using System.Globalization;
using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Evaluation;

/// <summary>What a model-based check gets: a small subset of the evaluation on the model's device.</summary>
internal sealed record SanityCheckContext(
    IClassifier Model, Tensor Inputs, Tensor Labels, ThreatModel Threat, IAttackSuite Suite,
    IReadOnlyList<IAttack> Attacks, long Seed, int NumClasses)
{
    public int Count => (int)Inputs.shape[0];
}

/// <summary>A check that runs the model (on a small subset) and reports what it measured.</summary>
internal interface IModelSanityCheck
{
    IReadOnlyList<SanityCheckResult> Run(SanityCheckContext context);
}

/// <summary>
/// Evaluation sanity checks after Carlini et al. 2019 ("On Evaluating Adversarial Robustness") and AutoAttack's
/// checks. A fired check becomes a <see cref="ReportWarning"/> with what it means and what to do.
/// </summary>
public static class SanityChecks
{
    public const string ModelScope = "model";
    public const string DataScope = "data";

    internal static IReadOnlyList<IModelSanityCheck> ModelChecks { get; } =
    [
        new ProbabilityOutputCheck(), new DeterminismCheck(), new GradientCheck(), new EpsilonZeroCheck(),
        new FgsmVersusPgdCheck(), new MoreIterationsCheck(), new LargeEpsilonCheck(), new ReducedPrecisionCheck(),
    ];

    public static IReadOnlyList<SanityCheckResult> RunModelChecks(IClassifier model, ImageDataset data, IReadOnlyList<long> rows,
        EvaluationOptions options, IReadOnlyList<IAttack> attacks)
    {
        using var scope = NewDisposeScope();
        using var idx = tensor(rows.ToArray(), ScalarType.Int64);
        var x = data.Images.index_select(0, idx).to(model.Device);
        var y = data.Labels.index_select(0, idx).to(model.Device);
        var context = new SanityCheckContext(model, x, y, new ThreatModel(options.Norm, options.Epsilon, model.Spec.Bounds),
            options.Attacks, attacks, options.Seed, model.Spec.NumClasses);
        return ModelChecks.SelectMany(c => c.Run(context)).ToArray();
    }

    public static IReadOnlyList<SanityCheckResult> RunDataChecks(IReadOnlyList<EpsilonResult> sweep, IReadOnlyList<SampleOutcome> samples,
        IReadOnlyList<AttackDescription> attacks, int mainEps, IReadOnlyList<MultiLabelEpsilonResult>? multiLabelSweep = null)
    {
        var checks = new List<SanityCheckResult> { MonotoneSweepCheck.Run(sweep, samples.Count) };
        if (multiLabelSweep is not null) checks.Add(MonotoneSweepCheck.RunHamming(multiLabelSweep, samples.Count));
        checks.Add(BlackBoxCheck.Run(samples, attacks, mainEps));
        if (samples.Any(s => s.PerEpsilon.Any(e => e.Verified is not null))) checks.Add(CertifiedButBrokenCheck.Run(samples));
        return checks;
    }

    public static ReportWarning WarningFor(SanityCheckResult r)
    {
        string m = r.Detail;
        return r.Code switch
        {
            ProbabilityOutputCheck.Code => new(r.Code,
                $"The model's outputs look like probabilities (non-negative rows summing to 1), not logits. {m}",
                "Remove the final softmax so the model returns logits; losses on probabilities saturate and make gradient attacks look weak."),
            DeterminismCheck.Code => new(r.Code,
                $"Two forward passes in eval mode gave different outputs: the model is randomised. {m}",
                "Attack it with Expectation over Transformation: the 'rand' attack preset (AutoAttack's rand version: APGD-CE and APGD-DLR, each gradient averaged over 20 forward passes; `robust eval --preset rand`), or any gradient attack with EOT (`--eot K`); attacks without EOT overestimate a randomised model's robustness. Report accuracy averaged over several passes."),
            GradientCheck.ZeroCode => new(r.Code,
                $"Many input gradients are exactly zero: gradient masking (quantisation, saturation, non-differentiable layers). {m}",
                "Do not trust white-box numbers: use BPDA (straight-through gradients) for non-differentiable layers and add a score-based attack such as 'square'."),
            GradientCheck.NonFiniteCode => new(r.Code,
                $"Some input gradients are NaN or Inf. {m}",
                "Find the numerically unstable layer (log of 0, division by 0); gradient attacks are unreliable until it is fixed."),
            EpsilonZeroCheck.Code => new(r.Code,
                $"At ε = 0 the attacks report an accuracy different from the clean accuracy. {m}",
                "With no perturbation allowed, robust accuracy must equal clean accuracy: look for randomness in the model or a bug in preprocessing."),
            FgsmVersusPgdCheck.Code => new(r.Code,
                $"FGSM (one step) broke points that PGD (iterative) did not. {m}",
                "An iterative attack should dominate a single step: increase PGD steps/restarts or tune the step size; the loss surface may be masked."),
            MoreIterationsCheck.StrongerWeakerCode => new(r.Code,
                $"PGD with twice the steps and restarts gave a higher robust accuracy than the baseline PGD. {m}",
                "A stronger attack must not do worse: check the step size, randomness in the model and the attack's loss."),
            MoreIterationsCheck.NotConvergedCode => new(r.Code,
                $"PGD with twice the steps and restarts lowered robust accuracy noticeably: the attack has not converged. {m}",
                "Increase the attacks' steps and restarts until robust accuracy stops falling, and report the stronger number."),
            LargeEpsilonCheck.Code => new(r.Code,
                $"At a very large ε (enough to turn every image mid-grey) the accuracy stays well above chance (multi-label: above what the label prior alone gives). {m}",
                "An unbounded attack must reach chance accuracy: the attack is failing (gradient masking or a bug), so the robust accuracy is not meaningful."),
            ReducedPrecisionCheck.Code => new(r.Code,
                $"The attacks with reduced-precision gradients left more points robust than the same attacks in float32. {m}",
                "Rerun with float32 gradients and report that number; reduced precision is only safe where it matches float32."),
            LinearExactCheck.Code => new(r.Code,
                r.Measured > 0 ? $"The attacks left more points robust than the exact worst case of this linear model allows. {m}"
                               : $"The attacks broke more points than the exact worst case of this linear model allows: impossible unless the bound or an attack is wrong. {m}",
                r.Measured > 0 ? "Use stronger attacks (more steps, per-label attacks for multi-label models) and report the exact number for linear models."
                               : "Report this as a bug: an attack produced a verdict a linear model cannot give inside the threat model."),
            MonotoneSweepCheck.Code or MonotoneSweepCheck.HammingCode => new(r.Code,
                $"Robust accuracy rises as ε grows. {m}",
                "A larger ball contains the smaller one, so accuracy must not rise: attacks are not converging; use more steps/restarts or check for gradient masking."),
            CertifiedButBrokenCheck.Code => new(r.Code,
                $"CERTIFICATE VIOLATED: points that interval bound propagation verified were broken by an attack (or misclassified clean). {m}",
                "A verified point cannot have an adversarial example in its ball: this is a bug in the bounds or in the model's layer description (IDescribedNetwork); trust neither number and report it."),
            BlackBoxCheck.Code => new(r.Code,
                $"The black-box attack broke points every white-box attack failed on. {m}",
                "White-box attacks should be stronger than black-box ones: suspect gradient masking and use adaptive attacks (BPDA/EOT)."),
            _ => new(r.Code, m, "See the report's sanity_checks entry."),
        };
    }

    internal static SanityCheckResult Result(string code, string scope, bool fired, double measured, double threshold, int n, string detail) =>
        new(code, scope, fired, measured, threshold, n, detail);

    internal static string F(double v) => v.ToString("0.####", CultureInfo.InvariantCulture);

    /// <summary>Clean-correct rows of the subset as an int64 index tensor (on the model's device).</summary>
    internal static (Tensor Index, int Count) CorrectRows(SanityCheckContext c)
    {
        Tensor correct;
        using (no_grad())
        using (Evaluator.EvalScope(c.Model))
        {
            var logits = c.Model.Logits(c.Inputs);
            correct = c.Labels.dim() == 2 ? MultiLabelTargets.Flipped(logits, c.Labels).any(1).logical_not() : logits.argmax(1).eq(c.Labels);
        }
        var idx = correct.nonzero().flatten();
        return (idx, (int)idx.shape[0]);
    }

    /// <summary>Success mask (CPU) of the worst case over <paramref name="attacks"/> on the rows, AutoAttack-style.</summary>
    internal static bool[] WorstCase(SanityCheckContext c, Tensor x, Tensor y, IReadOnlyList<IAttack> attacks, int seedSalt)
    {
        using var scope = NewDisposeScope();
        var points = new StandingPoints(x, new AttackTargets(y), KeepRule.Success);
        points.Run(StandingPoints.StagesOf(c.Model, attacks), new AttackContext(), StageSeeding.PerStage(a => Evaluator.MixSeed(c.Seed, 1000 + seedSalt, a, 0)));
        return points.Broken.cpu().data<bool>().ToArray();
    }
}

/// <summary>Rows non-negative and summing to 1: the model returns probabilities (AutoAttack's softmax check).</summary>
internal sealed class ProbabilityOutputCheck : IModelSanityCheck
{
    public const string Code = "probability-outputs";

    public IReadOnlyList<SanityCheckResult> Run(SanityCheckContext c)
    {
        if (ModelAccesses.Of(c.Model) == ModelAccess.Labels)
            return [SanityChecks.Result(Code, SanityChecks.ModelScope, false, 0, 0.99, 0, "Skipped: the model gives labels only.")];
        using var scope = NewDisposeScope();
        Tensor out_;
        using (no_grad())
        using (Evaluator.EvalScope(c.Model))
            out_ = c.Model.Logits(c.Inputs).to(ScalarType.Float64);
        // Multi-label: K sigmoid probabilities (decision logits + offset in [0, 1] everywhere) instead of logits.
        bool multi = c.Labels.dim() == 2;
        var raw = multi ? out_ + Keep(c.Model.Spec.DecisionOffset) : out_;
        var looksLikeProb = multi
            ? raw.min(1).values.ge(Keep(-1e-6)).logical_and(raw.max(1).values.le(Keep(1 + 1e-6)))
            : out_.min(1).values.ge(Keep(-1e-6)).logical_and(out_.sum(1).sub(Keep(1)).abs().le(Keep(1e-3)));
        double fraction = looksLikeProb.to(ScalarType.Float64).mean().ToDouble();
        const double threshold = 0.99;
        return [SanityChecks.Result(Code, SanityChecks.ModelScope, fraction >= threshold, fraction, threshold, c.Count,
            multi ? $"{SanityChecks.F(fraction * 100)}% of {c.Count} output rows lie in [0, 1] (probabilities, not logits)."
                  : $"{SanityChecks.F(fraction * 100)}% of {c.Count} output rows are probability vectors.")];
    }
}

/// <summary>Two eval-mode forward passes must agree; otherwise the model is randomised and needs EOT.</summary>
internal sealed class DeterminismCheck : IModelSanityCheck
{
    public const string Code = "nondeterministic-model";

    public IReadOnlyList<SanityCheckResult> Run(SanityCheckContext c)
    {
        using var scope = NewDisposeScope();
        double diff, scale;
        using (no_grad())
        using (Evaluator.EvalScope(c.Model))
        {
            var a = c.Model.Logits(c.Inputs).to(ScalarType.Float64);
            var b = c.Model.Logits(c.Inputs).to(ScalarType.Float64);
            diff = (a - b).abs().max().ToDouble();
            scale = a.abs().max().ToDouble();
        }
        double threshold = 1e-5 * Math.Max(1, scale);
        return [SanityChecks.Result(Code, SanityChecks.ModelScope, !(diff <= threshold), diff, threshold, c.Count,
            $"Largest output difference between two passes: {diff:G3}.")];
    }
}

/// <summary>
/// Input gradients of the margin loss (largest other logit − true logit). The margin is used rather than cross-entropy
/// because its gradient does not vanish on confidently classified points, so zero means masked, not merely confident.
/// </summary>
internal sealed class GradientCheck : IModelSanityCheck
{
    public const string ZeroCode = "zero-gradients";
    public const string NonFiniteCode = "nonfinite-gradients";
    public const double ZeroFractionThreshold = 0.05;

    public IReadOnlyList<SanityCheckResult> Run(SanityCheckContext c)
    {
        if (c.Model is not IGradientClassifier g)
            return [SanityChecks.Result(ZeroCode, SanityChecks.ModelScope, false, 0, ZeroFractionThreshold, 0, "Skipped: the model provides no gradients.")];
        using var scope = NewDisposeScope();
        using var mode = g.EvalMode();
        using var grad_ = enable_grad();
        var x = c.Inputs.detach().clone().requires_grad_(true);
        var logits = c.Model.Logits(x);
        // Largest other logit − true logit; multi-label: minus the smallest per-label margin (Objectives.Margin).
        var margin = Objectives.Margin.Loss(logits, new AttackTargets(c.Labels));
        var grad = autograd.grad([margin.sum()], [x], allow_unused: true)[0];
        var flat = grad.reshape(grad.shape[0], -1).to(ScalarType.Float64);
        var finite = flat.isfinite().all(1);
        double nonFinite = 1 - finite.to(ScalarType.Float64).mean().ToDouble();
        var norms = flat.abs().sum(1);
        double zero = norms.le(Keep(1e-12)).logical_and(finite).to(ScalarType.Float64).mean().ToDouble();
        return
        [
            SanityChecks.Result(ZeroCode, SanityChecks.ModelScope, zero > ZeroFractionThreshold, zero, ZeroFractionThreshold, c.Count,
                $"{SanityChecks.F(zero * 100)}% of {c.Count} samples have a zero input gradient."),
            SanityChecks.Result(NonFiniteCode, SanityChecks.ModelScope, nonFinite > 0, nonFinite, 0, c.Count,
                $"{SanityChecks.F(nonFinite * 100)}% of {c.Count} samples have NaN/Inf input gradients."),
        ];
    }
}

/// <summary>The ensemble at ε = 0 must leave exactly the clean-correct points robust.</summary>
internal sealed class EpsilonZeroCheck : IModelSanityCheck
{
    public const string Code = "eps-zero-differs";

    public IReadOnlyList<SanityCheckResult> Run(SanityCheckContext c)
    {
        using var scope = NewDisposeScope();
        var (rows, correct) = SanityChecks.CorrectRows(c);
        if (correct == 0)
            return [SanityChecks.Result(Code, SanityChecks.ModelScope, false, 0, 0, c.Count, "Skipped: no clean-correct points in the subset.")];
        var zero = c.Threat with { Epsilon = 0 };
        var attacks = c.Suite.Build(zero);
        var broken = SanityChecks.WorstCase(c, c.Inputs.index_select(0, rows), c.Labels.index_select(0, rows), attacks, 1);
        int n = broken.Count(b => b);
        return [SanityChecks.Result(Code, SanityChecks.ModelScope, n > 0, (double)n / c.Count, 0, c.Count,
            $"Clean accuracy on the subset {SanityChecks.F((double)correct / c.Count)}, accuracy under attack at ε = 0 {SanityChecks.F((double)(correct - n) / c.Count)}.")];
    }
}

/// <summary>Per sample, FGSM must not break a point PGD left robust.</summary>
internal sealed class FgsmVersusPgdCheck : IModelSanityCheck
{
    public const string Code = "fgsm-beats-pgd";
    public const double Threshold = 0.01;

    public IReadOnlyList<SanityCheckResult> Run(SanityCheckContext c)
    {
        using var scope = NewDisposeScope();
        if (c.Model is not IGradientClassifier)
            return [SanityChecks.Result(Code, SanityChecks.ModelScope, false, 0, Threshold, 0, "Skipped: the model provides no gradients.")];
        var (rows, correct) = SanityChecks.CorrectRows(c);
        if (correct == 0)
            return [SanityChecks.Result(Code, SanityChecks.ModelScope, false, 0, Threshold, c.Count, "Skipped: no clean-correct points in the subset.")];
        var x = c.Inputs.index_select(0, rows);
        var y = c.Labels.index_select(0, rows);
        var (steps, restarts) = c.Suite.PgdBudget;
        var pgdBroken = SanityChecks.WorstCase(c, x, y, [c.Suite.Pgd(c.Threat, steps, restarts)], 2);
        var survivors = Enumerable.Range(0, correct).Where(i => !pgdBroken[i]).Select(i => (long)i).ToArray();
        int fgsmOnly = 0;
        if (survivors.Length > 0)
        {
            var sel = tensor(survivors, ScalarType.Int64, device: x.device);
            fgsmOnly = SanityChecks.WorstCase(c, x.index_select(0, sel), y.index_select(0, sel), [c.Suite.Fgsm(c.Threat)], 3).Count(b => b);
        }
        double fraction = (double)fgsmOnly / c.Count;
        return [SanityChecks.Result(Code, SanityChecks.ModelScope, fraction > Threshold, fraction, Threshold, c.Count,
            $"PGD ({steps} steps, {restarts} restart(s)) left {survivors.Length} of {correct} correct points robust; FGSM broke {fgsmOnly} of those.")];
    }
}

/// <summary>Spot check: PGD with 2× steps and 2× restarts versus the suite's PGD on the subset.</summary>
internal sealed class MoreIterationsCheck : IModelSanityCheck
{
    public const string StrongerWeakerCode = "stronger-attack-weaker";
    public const string NotConvergedCode = "attack-not-converged";
    /// <summary>Difference in robust accuracy (fraction of the subset) beyond sampling noise of the random starts.</summary>
    public const double Tolerance = 0.03;

    public IReadOnlyList<SanityCheckResult> Run(SanityCheckContext c)
    {
        using var scope = NewDisposeScope();
        if (c.Model is not IGradientClassifier)
            return [SanityChecks.Result(NotConvergedCode, SanityChecks.ModelScope, false, 0, Tolerance, 0, "Skipped: the model provides no gradients.")];
        var (rows, correct) = SanityChecks.CorrectRows(c);
        if (correct == 0)
            return [SanityChecks.Result(NotConvergedCode, SanityChecks.ModelScope, false, 0, Tolerance, c.Count, "Skipped: no clean-correct points in the subset.")];
        var x = c.Inputs.index_select(0, rows);
        var y = c.Labels.index_select(0, rows);
        var (steps, restarts) = c.Suite.PgdBudget;
        int baseRobust = correct - SanityChecks.WorstCase(c, x, y, [c.Suite.Pgd(c.Threat, steps, restarts)], 4).Count(b => b);
        int strongRobust = correct - SanityChecks.WorstCase(c, x, y, [c.Suite.Pgd(c.Threat, 2 * steps, 2 * restarts)], 5).Count(b => b);
        double baseAcc = (double)baseRobust / c.Count, strongAcc = (double)strongRobust / c.Count;
        string detail = $"Robust accuracy on {c.Count} samples: PGD {steps}×{restarts} {SanityChecks.F(baseAcc)}, PGD {2 * steps}×{2 * restarts} {SanityChecks.F(strongAcc)}.";
        return
        [
            SanityChecks.Result(StrongerWeakerCode, SanityChecks.ModelScope, strongAcc - baseAcc > Tolerance, strongAcc - baseAcc, Tolerance, c.Count, detail),
            SanityChecks.Result(NotConvergedCode, SanityChecks.ModelScope, baseAcc - strongAcc > Tolerance, baseAcc - strongAcc, Tolerance, c.Count, detail),
        ];
    }
}

/// <summary>
/// At an ε large enough to reach the mid-grey image from any input (L∞ 0.5·range, L2 0.5·range·√d, L1 0.5·range·d)
/// an attack must bring accuracy to chance or below.
/// </summary>
internal sealed class LargeEpsilonCheck : IModelSanityCheck
{
    public const string Code = "large-eps-not-broken";
    public const double MarginOverChance = 0.1;

    public static double LargeEpsilon(Norm norm, Bounds bounds, long dimension) => norm switch
    {
        Norm.Linf => 0.5 * bounds.Range,
        Norm.L2 => 0.5 * bounds.Range * Math.Sqrt(dimension),
        Norm.L1 => 0.5 * bounds.Range * dimension,
        _ => throw new ArgumentOutOfRangeException(nameof(norm)),
    };

    private static double MostFrequentSetShare(Tensor labels)
    {
        var rows = MultiLabelTargets.On(labels).cpu().to(ScalarType.Byte).contiguous().data<byte>().ToArray();
        int n = (int)labels.shape[0], k = (int)labels.shape[1];
        if (n == 0) return 0;
        var counts = Enumerable.Range(0, n).GroupBy(i => Convert.ToHexString(rows, i * k, k)).Max(g => g.Count());
        return (double)counts / n;
    }

    public IReadOnlyList<SanityCheckResult> Run(SanityCheckContext c)
    {
        using var scope = NewDisposeScope();
        bool multi = c.Labels.dim() == 2;
        // Multi-label: the share of the subset's most frequent label set (what a constant prediction gets).
        double chance = multi ? MostFrequentSetShare(c.Labels) : 1.0 / Math.Max(1, c.NumClasses);
        double threshold = chance + MarginOverChance;
        var (rows, correct) = SanityChecks.CorrectRows(c);
        long dimension = c.Inputs.numel() / Math.Max(1, c.Count);
        double eps = LargeEpsilon(c.Threat.Norm, c.Threat.Bounds, dimension);
        var threat = c.Threat with { Epsilon = eps };
        int robust = correct;
        if (correct > 0)
        {
            IAttack attack = c.Model is IGradientClassifier
                ? c.Suite.Pgd(threat, Math.Max(20, c.Suite.PgdBudget.Steps), 1)
                : c.Suite.Build(threat)[0];
            robust -= SanityChecks.WorstCase(c, c.Inputs.index_select(0, rows), c.Labels.index_select(0, rows), [attack], 6).Count(b => b);
        }
        double acc = (double)robust / c.Count;
        return [SanityChecks.Result(Code, SanityChecks.ModelScope, acc > threshold, acc, threshold, c.Count,
            multi ? $"Subset accuracy at {c.Threat.Norm.Name()} ε = {SanityChecks.F(eps)}: {SanityChecks.F(acc)} (most frequent label set {SanityChecks.F(chance)})."
                  : $"Accuracy at {c.Threat.Norm.Name()} ε = {SanityChecks.F(eps)}: {SanityChecks.F(acc)} (chance {SanityChecks.F(chance)}).")];
    }
}

/// <summary>Robust accuracy must not rise with ε (the balls are nested).</summary>
internal static class MonotoneSweepCheck
{
    public const string Code = "non-monotone-sweep";
    public const string HammingCode = "non-monotone-hamming-sweep";

    /// <summary>Multi-label: robust Hamming accuracy must not rise with ε either (one sample's worth of decisions of slack).</summary>
    public static SanityCheckResult RunHamming(IReadOnlyList<MultiLabelEpsilonResult> sweep, int total) =>
        Check(HammingCode, "robust Hamming accuracy", sweep.Select(e => (e.Epsilon, e.RobustHammingAccuracy)).ToArray(), total);

    public static SanityCheckResult Run(IReadOnlyList<EpsilonResult> sweep, int total) =>
        Check(Code, "robust accuracy", sweep.Select(e => (e.Epsilon, e.RobustAccuracy)).ToArray(), total);

    private static SanityCheckResult Check(string code, string what, (double Epsilon, double Accuracy)[] sweep, int total)
    {
        // One sample of slack: attacks with random starts may flip a single borderline point.
        double tolerance = total > 0 ? 1.0 / total : 0;
        double worstRise = 0;
        string where_ = "";
        for (int i = 1; i < sweep.Length; i++)
        {
            double rise = sweep[i].Accuracy - sweep[i - 1].Accuracy;
            if (rise > worstRise)
            {
                worstRise = rise;
                where_ = $" From ε = {SanityChecks.F(sweep[i - 1].Epsilon)} to {SanityChecks.F(sweep[i].Epsilon)} it rises by {SanityChecks.F(rise)}.";
            }
        }
        return SanityChecks.Result(code, SanityChecks.DataScope, worstRise > tolerance + 1e-12, worstRise, tolerance, total,
            $"Largest rise of {what} between consecutive ε: {SanityChecks.F(worstRise)}.{where_}");
    }
}

/// <summary>Certified ≤ empirical, per sample and ε: a point IBP verified must be clean-correct and unbroken.</summary>
public static class CertifiedButBrokenCheck
{
    public const string Code = "certified-but-broken";

    public static SanityCheckResult Run(IReadOnlyList<SampleOutcome> samples)
    {
        var bad = samples.SelectMany(s => s.PerEpsilon.Where(e => e.Verified == true && (e.Broken || !s.CleanCorrect)).Select(e => (s.Index, e.Epsilon))).ToArray();
        var detail = bad.Length == 0
            ? "Every verified point stayed correct under every attack."
            : $"{bad.Length} verified (point, ε) pair(s) broken, e.g. {string.Join(", ", bad.Take(5).Select(b => $"sample {b.Index} at ε = {SanityChecks.F(b.Epsilon)}"))}.";
        return SanityChecks.Result(Code, SanityChecks.DataScope, bad.Length > 0, bad.Length, 0, samples.Count, detail);
    }
}

/// <summary>Points first broken by a black-box attack (score-based, decision-based or transfer) after every
/// white-box (gradient) attack before it failed on them.</summary>
internal static class BlackBoxCheck
{
    public const string Code = "black-box-beats-white-box";

    public static SanityCheckResult Run(IReadOnlyList<SampleOutcome> samples, IReadOnlyList<AttackDescription> attacks, int mainEps)
    {
        int firstBlackBox = -1;
        bool whiteBefore = false;
        for (int a = 0; a < attacks.Count; a++)
        {
            if (!attacks[a].BlackBox) whiteBefore = true;
            else if (whiteBefore) { firstBlackBox = a; break; }
        }
        if (firstBlackBox < 0)
            return SanityChecks.Result(Code, SanityChecks.DataScope, false, 0, 0, samples.Count,
                "Not applicable: no black-box attack runs after a white-box attack.");
        int n = samples.Count(s => s.CleanCorrect && s.PerEpsilon[mainEps].BrokenBy >= firstBlackBox
            && attacks[s.PerEpsilon[mainEps].BrokenBy].BlackBox);
        double fraction = samples.Count == 0 ? 0 : (double)n / samples.Count;
        return SanityChecks.Result(Code, SanityChecks.DataScope, n > 0, fraction, 0, samples.Count,
            $"{n} of {samples.Count} points were broken only by a black-box attack.");
    }
}

/// <summary>
/// When the attacks differentiate a reduced-precision view (<see cref="IReducedPrecisionClassifier"/>, e.g.
/// <c>--precision bf16</c>): the main-ε attacks, same seeds, on the subset's clean-correct points, once through the view
/// and once through the float32 model. Fires when the view leaves more than 0.5 points more robust — the bar under which
/// bf16 is offered at all. Not run (no result) for float32 evaluations.
/// </summary>
internal sealed class ReducedPrecisionCheck : IModelSanityCheck
{
    public const string Code = "reduced-precision-weaker";
    /// <summary>Robust accuracy (fraction of the subset) the reduced-precision attacks may exceed float32 by.</summary>
    public const double Tolerance = 0.005;

    public IReadOnlyList<SanityCheckResult> Run(SanityCheckContext c)
    {
        if (c.Model is not IReducedPrecisionClassifier view) return [];
        using var scope = NewDisposeScope();
        var (rows, correct) = SanityChecks.CorrectRows(c);
        if (correct == 0)
            return [SanityChecks.Result(Code, SanityChecks.ModelScope, false, 0, Tolerance, c.Count, "Skipped: no clean-correct points in the subset.")];
        var x = c.Inputs.index_select(0, rows);
        var y = c.Labels.index_select(0, rows);
        int reduced = correct - SanityChecks.WorstCase(c, x, y, c.Attacks, 6).Count(b => b);
        int full = correct - SanityChecks.WorstCase(c with { Model = view.FullPrecision }, x, y, c.Attacks, 6).Count(b => b);
        double gap = (double)(reduced - full) / c.Count;
        string detail = $"Robust accuracy on {c.Count} samples under the main-ε attacks: {view.Precision} gradients {SanityChecks.F((double)reduced / c.Count)}, " +
            $"float32 gradients {SanityChecks.F((double)full / c.Count)}.";
        return [SanityChecks.Result(Code, SanityChecks.ModelScope, gap > Tolerance, gap, Tolerance, c.Count, detail)];
    }
}
