using TorchSharp;
using Robustness.Core.Geometry;
using static TorchSharp.torch;

namespace Robustness.Core.Attacks;

/// <summary>The one final step every attack goes through. A violation after it is a bug and throws.</summary>
public static class ThreatModelCheck
{
    /// <summary>Relative tolerance on ‖δ‖ ≤ ε.</summary>
    public const double RelativeTolerance = 1e-6;

    public static AttackResult Finalize(IClassifier model, Tensor clean, Tensor adversarial, ThreatModel threat, AttackTargets targets, Tensor? minimumNorm = null)
    {
        using var scope = NewDisposeScope();
        var geometry = Geometries.For(threat.Norm);
        var (lo, hi) = (threat.Bounds.Lower, threat.Bounds.Upper);
        Tensor adv;
        using (no_grad())
        {
            var x = clean.detach();
            var delta = geometry.Project(adversarial.detach().to(x.dtype) - x, threat.Epsilon);
            adv = (x + delta).clamp(lo, hi);
            // Float rounding of x+δ can overshoot ε by an ulp; pull those rows in by a hair and clamp again.
            var over = geometry.Distance(adv - x).gt(threat.Epsilon);
            if (over.any().ToBoolean())
            {
                var shrunk = (x + geometry.Project(adv - x, threat.Epsilon * (1 - 1e-5))).clamp(lo, hi);
                adv = where(Geometries.PerSample(over, adv), shrunk, adv);
            }
            adv = adv.contiguous();
        }
        var distance = geometry.Distance(adv - clean);
        Verify(clean, adv, distance, threat);
        Tensor logits;
        using (no_grad())
            logits = model.Logits(adv).detach();
        var success = Criteria.For(targets).IsAdversarial(logits, targets);
        var result = new AttackResult(adv, success, distance, logits, minimumNorm?.detach());
        result.MoveToOuterDisposeScope();
        return result;
    }

    /// <summary>Throws <see cref="ThreatModelViolationException"/> when any row leaves the ball or the bounds, or is not finite.</summary>
    public static void Verify(Tensor clean, Tensor adversarial, Tensor distance, ThreatModel threat)
    {
        using var scope = NewDisposeScope();
        if (!adversarial.isfinite().all().ToBoolean())
            throw new ThreatModelViolationException("attack produced NaN or Inf inputs");
        var maxDist = distance.max().ToDouble();
        var tol = threat.Epsilon * RelativeTolerance + 1e-9;
        if (maxDist > threat.Epsilon + tol)
            throw new ThreatModelViolationException(FormattableString.Invariant($"perturbation of {threat.Norm.Name()} norm {maxDist:G9} exceeds ε = {threat.Epsilon}"));
        var min = adversarial.min().ToSingle();
        var max = adversarial.max().ToSingle();
        if (min < threat.Bounds.Lower || max > threat.Bounds.Upper)
            throw new ThreatModelViolationException(FormattableString.Invariant($"adversarial inputs span [{min}, {max}], outside the bounds [{threat.Bounds}]"));
    }
}
