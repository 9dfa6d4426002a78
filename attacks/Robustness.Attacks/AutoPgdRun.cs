using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// The variables of Croce &amp; Hein's Algorithm 1 for a batch, one row per sample: the iterate x(k) and x(k−1), the
/// gradient and loss at x(k), the step size η, the best point x_max with f_max (and its gradient, to resume from it),
/// the checkpoint counters, and the first adversarial point found. Tensors may be shared between fields.
/// </summary>
internal sealed record ApgdState(
    Tensor X, Tensor Previous, Tensor Gradient, Tensor Loss, Tensor Eta,
    Tensor XMax, Tensor GradientAtMax, Tensor FMax,
    Tensor Increases, Tensor ReducedLast, Tensor FMaxAtCheck,
    Tensor Found, Tensor FirstAdversarial)
{
    private IEnumerable<Tensor> Tensors =>
        [X, Previous, Gradient, Loss, Eta, XMax, GradientAtMax, FMax, Increases, ReducedLast, FMaxAtCheck, Found, FirstAdversarial];

    /// <summary>
    /// Makes <paramref name="next"/> the live state: its new tensors (made in the step's dispose scope) move out of it,
    /// and the tensors of this state that <paramref name="next"/> no longer holds are disposed.
    /// </summary>
    public ApgdState HandOver(ApgdState next)
    {
        var mine = Distinct(Tensors);
        var theirs = Distinct(next.Tensors);
        foreach (var t in theirs) if (!mine.Contains(t)) ((Tensor)t).MoveToOuterDisposeScope();
        foreach (var t in mine) if (!theirs.Contains(t)) ((Tensor)t).Dispose();
        return next;
    }

    private static HashSet<object> Distinct(IEnumerable<Tensor> tensors) => new(tensors, ReferenceEqualityComparer.Instance);
}

/// <summary>One APGD run (Algorithm 1 of Croce &amp; Hein 2020) for the settings of an <see cref="AutoPgdAttack"/>.</summary>
internal sealed class AutoPgdRun(AutoPgdAttack settings, IClassifier model, IPerturbationGeometry geometry, ICriterion criterion)
{
    private readonly ThreatModel _threat = settings.Threat;

    /// <summary>The run as a stage of <see cref="StandingPoints"/>: per sample the first adversarial point found,
    /// else x_max; its success against <paramref name="judged"/>; and f_max as the score.</summary>
    public StageOutcome Outcome(Tensor x, AttackTargets objectiveTargets, AttackTargets judged, IAttackObjective objective, AttackContext context)
    {
        var final = Run(x, objectiveTargets, judged, objective, context);
        using var _ = no_grad();
        var point = where(Geometries.PerSample(final.Found, x), final.FirstAdversarial, final.XMax);
        return new StageOutcome(point, final.Found, final.FMax);
    }

    private ApgdState Run(Tensor x, AttackTargets objectiveTargets, AttackTargets judged, IAttackObjective objective, AttackContext context)
    {
        var checkpoints = new HashSet<int>(AutoPgdAttack.Checkpoints(settings.Steps));
        var state = Initial(x, objectiveTargets, judged, objective, context);
        int sinceCheck = 0;
        for (int k = 0; k < settings.Steps; k++)
        {
            context.Cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var next = Step(state, x, k, objectiveTargets, judged, objective);
            sinceCheck++;
            if (checkpoints.Contains(k + 1))
            {
                next = Checkpoint(next, sinceCheck);
                sinceCheck = 0;
            }
            state = state.HandOver(next);
            context.StepProgress?.Report(1);
        }
        return state;
    }

    /// <summary>x(0) uniform in the ball; f and ∇f there; η = 2ε (relative step size × ε).</summary>
    private ApgdState Initial(Tensor x, AttackTargets objectiveTargets, AttackTargets judged, IAttackObjective objective, AttackContext context)
    {
        var x0 = Starts.Uniform.Start(x, _threat, geometry, context.Generator);
        var (g0, logits0, f0) = AttackMath.LossGradient(model, x0, objective, objectiveTargets, settings.EotSamples);
        using var _ = no_grad();
        var n = x.shape[0];
        return new ApgdState(
            X: x0, Previous: x0, Gradient: g0, Loss: f0,
            Eta: full(n, Keep(settings.InitialRelativeStepSize * _threat.Epsilon), dtype: x.dtype, device: x.device),
            XMax: x0, GradientAtMax: g0, FMax: f0,
            Increases: zeros(n, dtype: ScalarType.Int64, device: x.device),
            ReducedLast: zeros(n, dtype: ScalarType.Bool, device: x.device),
            FMaxAtCheck: f0,
            Found: criterion.IsAdversarial(logits0, judged), FirstAdversarial: x0);
    }

    /// <summary>z(k+1) = P(x(k) + η∇), x(k+1) = P(x(k) + α(z − x(k)) + (1 − α)(x(k) − x(k−1))) (plain step at k = 0);
    /// then f and ∇f at x(k+1), the running best and the first adversarial.</summary>
    private ApgdState Step(ApgdState s, Tensor x, int k, AttackTargets objectiveTargets, AttackTargets judged, IAttackObjective objective)
    {
        var (eps, bounds) = (_threat.Epsilon, _threat.Bounds);
        Tensor xNext;
        using (no_grad())
        {
            var eta = Geometries.PerSample(s.Eta, s.X);
            var z = AttackMath.ProjectAndClamp(geometry, x, s.X + geometry.Direction(s.Gradient, s.X, bounds) * eta, eps, bounds);
            const double a = AutoPgdAttack.MomentumAlpha;
            xNext = k == 0 ? z
                : AttackMath.ProjectAndClamp(geometry, x, s.X + (z - s.X) * Keep(a) + (s.X - s.Previous) * Keep(1 - a), eps, bounds);
        }
        var (grad, logits, loss) = AttackMath.LossGradient(model, xNext, objective, objectiveTargets, settings.EotSamples);
        using var _ = no_grad();
        var success = criterion.IsAdversarial(logits, judged);
        var firstHit = Geometries.PerSample(success.logical_and(s.Found.logical_not()), xNext);
        var improved = loss.gt(s.FMax);
        var rows = Geometries.PerSample(improved, xNext);
        return s with
        {
            X = xNext, Previous = s.X, Gradient = grad, Loss = loss,
            XMax = where(rows, xNext, s.XMax), GradientAtMax = where(rows, grad, s.GradientAtMax), FMax = where(improved, loss, s.FMax),
            Increases = s.Increases + loss.gt(s.Loss).to(ScalarType.Int64),
            Found = s.Found.logical_or(success), FirstAdversarial = where(firstHit, xNext, s.FirstAdversarial),
        };
    }

    /// <summary>At a checkpoint: halve η where (1) at most ρ of the steps since the last checkpoint increased f, or
    /// (2) η was not halved last time and f_max did not improve since; those samples resume from x_max.</summary>
    private static ApgdState Checkpoint(ApgdState s, int sinceCheck)
    {
        using var _ = no_grad();
        var condition1 = s.Increases.to(ScalarType.Float64).le(Keep(AutoPgdAttack.Rho * sinceCheck));
        var condition2 = s.ReducedLast.logical_not().logical_and(s.FMaxAtCheck.ge(s.FMax));
        var halve = condition1.logical_or(condition2);
        var back = Geometries.PerSample(halve, s.X);
        return s with
        {
            Eta = where(halve, s.Eta * Keep(0.5), s.Eta),
            X = where(back, s.XMax, s.X), Gradient = where(back, s.GradientAtMax, s.Gradient),
            Increases = zeros_like(s.Increases), ReducedLast = halve, FMaxAtCheck = s.FMax,
        };
    }
}
