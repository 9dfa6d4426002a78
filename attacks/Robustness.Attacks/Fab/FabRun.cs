using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// One FAB run (Croce &amp; Hein 2020, Algorithm 1) on a batch, for the settings of a <see cref="FabAttack"/>. Per
/// iteration: linearise the logit differences at the current point x̂; take the class whose linearised boundary is
/// closest (in the dual norm) — or the given target; project x̂ and the original x onto that hyperplane inside the box
/// (<see cref="BoxHyperplaneProjection"/>), d₁ and d₂; mix the two steps with α = min(‖d₁‖/(‖d₁‖+‖d₂‖), α_max) and
/// overshoot η: x̂ ← clip((1−α)(x̂ + η d₁) + α(x + η d₂)); where x̂ is adversarial, keep it if it is the closest so far
/// and step back towards x: x̂ ← x + β(x̂ − x).
/// </summary>
internal sealed class FabRun(FabAttack settings, IClassifier model, ICriterion criterion)
{
    private readonly ThreatModel _threat = settings.Threat;
    private readonly IPerturbationGeometry _geometry = Geometries.For(settings.Threat.Norm);

    /// <summary>Per row: the closest adversarial found (the input where none) and its distance (+∞ where none).</summary>
    /// <param name="targetClasses">The class whose boundary to cross (FAB-T), or null for the closest boundary.</param>
    public (Tensor Point, Tensor Distance) Run(Tensor x, AttackTargets judged, Tensor? targetClasses, bool randomStart, AttackContext context)
    {
        var bounds = _threat.Bounds;
        long n = x.shape[0];
        Tensor current, best, bestDistance;
        using (no_grad())
        {
            current = randomStart ? RandomStart(x, context.Generator) : x.clone();
            best = x.clone();
            bestDistance = full(n, Keep(double.PositiveInfinity), dtype: ScalarType.Float64, device: x.device);
        }
        var flatX = Geometries.Flat(x);
        for (int step = 0; step < settings.Steps; step++)
        {
            context.Cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var (f, w) = Boundary(current, judged.Labels, targetClasses);
            Tensor next, nextBest, nextDistance;
            using (no_grad())
            {
                var flat = Geometries.Flat(current);
                // The linearised boundary's value at x̂ is f; at x it is f + w·(x − x̂).
                var atOriginal = f.to(ScalarType.Float64) + (w.to(ScalarType.Float64) * (flatX - flat).to(ScalarType.Float64)).sum(1);
                var both = BoxHyperplaneProjection.Project(_threat.Norm, cat([flat, flatX]), cat([w, w]), cat([f.to(ScalarType.Float64), atOriginal]), bounds);
                var d1 = both.narrow(0, 0, n).reshape(x.shape);
                var d2 = both.narrow(0, n, n).reshape(x.shape);
                var a1 = _geometry.Distance(d1).clamp_min(Keep(1e-8));
                var a2 = _geometry.Distance(d2).clamp_min(Keep(1e-8));
                var alpha = Geometries.PerSample((a1 / (a1 + a2)).clamp(Keep(0), Keep(settings.AlphaMax)).to(x.dtype), x);
                next = ((current + d1 * Keep(settings.Eta)) * (Keep(1) - alpha) + (x + d2 * Keep(settings.Eta)) * alpha).clamp(Keep(bounds.Lower), Keep(bounds.Upper));

                var adversarial = criterion.IsAdversarial(model.Logits(next), judged);
                var distance = _geometry.Distance(next.to(ScalarType.Float64) - x.to(ScalarType.Float64));
                var closer = adversarial.logical_and(distance.lt(bestDistance));
                nextBest = where(Geometries.PerSample(closer, x), next, best);
                nextDistance = where(closer, distance, bestDistance);
                // Adversarial: step back towards the original, to search closer to it.
                next = where(Geometries.PerSample(adversarial, x), x + (next - x) * Keep(settings.Beta), next);
            }
            Swap(ref current, next);
            Swap(ref best, nextBest);
            Swap(ref bestDistance, nextDistance);
            context.StepProgress?.Report(1);
        }
        current.Dispose();
        return (best, bestDistance);
    }

    /// <summary>
    /// The linearised boundary at <paramref name="at"/>: value f = z_j − z_y and gradient w = ∇(z_j − z_y) of the class j
    /// chosen — the target, or the class with the smallest |f_j| / ‖∇f_j‖_* (dual norm). Gradients and logits are
    /// averaged over <see cref="FabAttack.EotSamples"/> passes.
    /// </summary>
    private (Tensor Value, Tensor Normal) Boundary(Tensor at, Tensor labels, Tensor? targetClasses)
    {
        var (grads, logits, _) = AttackMath.Expected(settings.EotSamples, () =>
        {
            using var grad = enable_grad();
            var leaf = Layout.ChannelsLastView(at.detach()).requires_grad_(true);
            var z = model.Logits(leaf);
            var zy = Objectives.Pick(z, labels);
            Tensor[] columns = targetClasses is { } t ? [t] : Enumerable.Range(0, (int)z.shape[1]).Select(j => full_like(labels, Keep(j))).ToArray();
            var g = columns.Select((c, i) => autograd.grad([(Objectives.Pick(z, c) - zy).sum()], [leaf], retain_graph: i < columns.Length - 1)[0]
                .contiguous().reshape(at.shape[0], 1, -1)).ToArray();
            return (cat(g, 1), z.detach(), zy.detach());
        });
        using var _ = no_grad();
        var zLabel = Objectives.Pick(logits, labels).unsqueeze(1);
        if (targetClasses is { } target)
            return ((Objectives.Pick(logits, target).unsqueeze(1) - zLabel).squeeze(1), grads.squeeze(1));

        var values = logits - zLabel;                                          // [n, K]; 0 for the label itself
        var dual = _threat.Norm switch
        {
            Norm.Linf => grads.abs().sum(2),
            Norm.L2 => grads.pow(Keep(2)).sum(2).sqrt(),
            _ => grads.abs().amax([2L]),
        };
        var own = nn.functional.one_hot(labels, values.shape[1]).to(ScalarType.Bool);
        var distance = (values.abs() / (dual + Keep(1e-12))).masked_fill(own, Keep(float.PositiveInfinity));
        var j = distance.argmin(1);
        var normal = grads.gather(1, j.view(-1, 1, 1).expand(-1, 1, grads.shape[2])).squeeze(1);
        return (Objectives.Pick(values, j), normal);
    }

    /// <summary>AutoAttack's restart start: a random direction at half ε (L∞: uniform coordinates scaled to max ε/2;
    /// L2, L1: a Gaussian scaled to norm ε/2), clipped to the box.</summary>
    private Tensor RandomStart(Tensor x, Generator? generator)
    {
        var half = _threat.Epsilon / 2;
        var t = _threat.Norm == Norm.Linf
            ? rand(x.shape, dtype: x.dtype, generator: generator).to(x.device) * Keep(2) - Keep(1)
            : randn(x.shape, dtype: x.dtype, generator: generator).to(x.device);
        var size = _threat.Norm switch
        {
            Norm.Linf => Geometries.Flat(t).abs().amax([1L]),
            Norm.L2 => Geometries.Flat(t).norm(1, false, 2),
            _ => Geometries.Flat(t).abs().sum(1),
        };
        return (x + t / Geometries.PerSample(size.clamp_min(Keep(1e-12)), t) * Keep(half)).clamp(Keep(_threat.Bounds.Lower), Keep(_threat.Bounds.Upper));
    }

    private static void Swap(ref Tensor field, Tensor value)
    {
        if (ReferenceEquals(field, value)) return;
        value.MoveToOuterDisposeScope();
        field.Dispose();
        field = value;
    }
}
