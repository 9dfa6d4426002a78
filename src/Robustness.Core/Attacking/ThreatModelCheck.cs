using TorchSharp;
using Robustness.Core.Geometry;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Core.Attacking;

/// <summary>The one final step every attack goes through. A violation after it is a bug and throws.</summary>
public static class ThreatModelCheck
{
    /// <summary>Relative tolerance on ‖δ‖ ≤ ε.</summary>
    public const double RelativeTolerance = 1e-6;

    /// <summary>Float-step corrections of x + δ rounding; more than a few means the attack left the ball (a bug).</summary>
    private const int MaxRoundingFixes = 16;

    /// <param name="queries">Query-based attacks: queries per sample (int64 [N]); passed through.</param>
    /// <param name="queriesToSuccess">Queries until the attack first held an adversarial (−1 none): kept only where this
    /// step's verdict confirms success; where the verdict finds an adversarial the attack did not mark, all its queries count.</param>
    public static AttackResult Finalize(IClassifier model, Tensor clean, Tensor adversarial, ThreatModel threat, AttackTargets targets, Tensor? minimumNorm = null,
        Tensor? queries = null, Tensor? queriesToSuccess = null)
    {
        using var scope = NewDisposeScope();
        var geometry = Geometries.For(threat.Norm);
        Tensor adv;
        using (no_grad())
        {
            var x = clean.detach();
            var x64 = x.to(ScalarType.Float64);
            adv = Contain(x, adversarial, threat);
            // x + δ is rounded to float32, which can overshoot ε by an ulp of x (relative to a tiny ε, a lot).
            // Rows that overshoot move every changed coordinate one float step towards x until they fit: this stays
            // between x and x_adv (so inside the bounds) and shrinks |δ_i| by exactly the rounding that caused it.
            for (int fix = 0; fix < MaxRoundingFixes; fix++)
            {
                var over = geometry.Distance(adv.to(ScalarType.Float64) - x64).gt(Keep(threat.Epsilon));
                if (!over.any().ToBoolean()) break;
                var move = Geometries.PerSample(over, adv).logical_and(adv.ne(x));
                adv = where(move, adv.nextafter(x), adv);
            }
            adv = adv.contiguous();
        }
        // In float64: the difference of two float32 values is exact there.
        var distance = geometry.Distance(adv.to(ScalarType.Float64) - clean.to(ScalarType.Float64));
        Verify(clean, adv, distance, threat);
        Tensor logits;
        using (no_grad())
            logits = model.Logits(Layout.ChannelsLastView(adv)).detach();
        var success = Criteria.For(targets).IsAdversarial(logits, targets);
        Tensor? used = null, toSuccess = null;
        if (queries is not null)
        {
            used = queries.to(ScalarType.Int64).cpu().clone();
            var marked = (queriesToSuccess ?? full_like(used, Keep(-1L))).to(ScalarType.Int64).cpu();
            var ok = success.cpu();
            toSuccess = where(ok, where(marked.ge(Keep(0)), marked, used), full_like(used, Keep(-1L)));
        }
        var result = new AttackResult(adv, success, distance, logits, minimumNorm?.detach(), used, toSuccess);
        result.MoveToOuterDisposeScope();
        return result;
    }

    /// <summary>
    /// x + Π_ε(x_adv − x), clamped to the bounds: the projection of the final step without its measurements (no host
    /// synchronisation, no forward pass). What adversarial training uses (<see cref="AttackBase.Craft"/>), where only
    /// the points matter. Float rounding of x + δ can exceed ε by an ulp; <see cref="Finalize"/> corrects that.
    /// </summary>
    public static Tensor Contain(Tensor clean, Tensor adversarial, ThreatModel threat)
    {
        using var _ = no_grad();
        var x = clean.detach();
        var delta = Geometries.For(threat.Norm).Project(adversarial.detach().to(x.dtype) - x, threat.Epsilon);
        return (x + delta).clamp(Keep(threat.Bounds.Lower), Keep(threat.Bounds.Upper));
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
