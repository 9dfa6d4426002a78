using Robustness.Core;
using Robustness.Core.Geometry;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// DeepFool (Moosavi-Dezfooli et al. 2016), L2 and L∞: linearise the decision boundaries to the top
/// <see cref="Candidates"/> classes, step to the closest one, repeat until misclassified; the accumulated
/// perturbation is scaled by 1 + <see cref="Overshoot"/>. <see cref="AttackResult.MinimumNorm"/> is the distance of
/// the adversarial found (+∞ where none within <see cref="Steps"/>). Untargeted only.
/// </summary>
public sealed record DeepFoolAttack(ThreatModel Threat) : AttackBase(Threat)
{
    public int Steps { get; init; } = 50;
    public double Overshoot { get; init; } = 0.02;
    /// <summary>How many of the most likely classes (the true one included) are considered.</summary>
    public int Candidates { get; init; } = 10;
    /// <summary>Forward/backward passes whose logits and class gradients are averaged per step (EOT, for randomised models).</summary>
    public int EotSamples { get; init; } = 1;

    public override string Name => "deepfool";

    public override IReadOnlyDictionary<string, object> Parameters => Describe(Threat,
        ("steps", Steps), ("overshoot", Overshoot), ("candidates", Candidates), ("eot_samples", EotSamples));

    protected override Perturbation Perturb(IClassifier model, Tensor x, AttackTargets targets, AttackContext context)
    {
        if (Threat.Norm == Norm.L1) throw new ParameterException("Norm", "deepfool supports the linf and l2 norms, not l1");
        if (targets.Targeted) throw new ParameterException("Targeted", "deepfool is an untargeted attack");
        if (Candidates < 2) throw new ParameterException(nameof(Candidates), $"deepfool needs at least 2 candidate classes, got {Candidates}");
        if (Steps < 1) throw new ParameterException("Steps", $"deepfool needs at least 1 step, got {Steps}");
        AttackMath.CheckEot(EotSamples);

        var (lo, hi) = (Threat.Bounds.Lower, Threat.Bounds.Upper);
        var labels = targets.Labels;
        var criterion = Criteria.For(targets);
        bool multiLabel = Objectives.IsMultiLabel(targets);
        var clean = AttackMath.CleanLogits(model, x);
        int others = multiLabel ? (int)Math.Min(Candidates, clean.shape[1]) : (int)Math.Min(Candidates, clean.shape[1]) - 1;
        var candidates = multiLabel ? TargetSelection.ClosestLabels(clean, others) : TargetSelection.TopKOthers(clean, labels, others);
        var total = zeros_like(x);
        var adv = x.clone();
        bool linf = Threat.Norm == Norm.Linf;
        // Work only on the points still classified correctly: most cross within a few steps.
        var open = AttackMath.Indices(criterion.IsAdversarial(clean, targets).logical_not());

        for (int step = 0; step < Steps && open.numel() > 0; step++)
        {
            context.Cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var y = labels.index_select(0, open);
            var classes = candidates.index_select(0, open);
            Tensor active, bestW, bestF;
            var point = adv.index_select(0, open);
            // f_k < 0 while correct, 0 on the boundary: z_k − z_y, or −s_ℓ·z_ℓ for label ℓ of a multi-label model.
            var signs = multiLabel ? MultiLabelTargets.Signs(y).to(x.dtype) : null;
            Tensor F(Tensor z, int k) => multiLabel
                ? -(Objectives.Pick(z, classes[.., k]) * Objectives.Pick(signs!, classes[.., k]))
                : Objectives.Pick(z, classes[.., k]) - Objectives.Pick(z, y);
            // Per candidate k: the gradient of f_k (stacked [n, k, ...]), with the logits; EOT averages both.
            var (grads, logits, _) = AttackMath.Expected(EotSamples, () =>
            {
                using var withGrad = enable_grad();
                var leaf = point.detach().requires_grad_(true);
                var z = model.Logits(leaf);
                var g = Enumerable.Range(0, others).Select(k =>
                    autograd.grad([F(z, k).sum()], [leaf], retain_graph: k < others - 1)[0].unsqueeze(1)).ToArray();
                return (cat(g, 1), z.detach(), z.detach());
            });
            using (no_grad())
            {
                active = criterion.IsAdversarial(logits, targets.Select(open)).logical_not();
                Tensor? bestDistance = null, bf = null, bw = null;
                for (int k = 0; k < others; k++)
                {
                    var f = F(logits, k);
                    var w = grads.select(1, k);
                    var wFlat = Geometries.Flat(w);
                    var dual = linf ? wFlat.abs().sum(1) : wFlat.norm(1, false, 2);
                    var distance = f.abs() / (dual + Keep(1e-8));
                    if (bestDistance is null) (bestDistance, bf, bw) = (distance, f, w);
                    else
                    {
                        var closer = distance.lt(bestDistance);
                        bestDistance = where(closer, distance, bestDistance);
                        bf = where(closer, f, bf!);
                        bw = where(Geometries.PerSample(closer, w), w, bw!);
                    }
                }
                (bestW, bestF) = (bw!, bf!);
            }
            using (no_grad())
            {
                var wFlat = Geometries.Flat(bestW);
                var magnitude = bestF.abs() + Keep(1e-4);
                var r = linf
                    ? bestW.sign() * Geometries.PerSample(magnitude / (wFlat.abs().sum(1) + Keep(1e-8)), bestW)
                    : bestW * Geometries.PerSample(magnitude / (wFlat.pow(Keep(2)).sum(1) + Keep(1e-8)), bestW);
                // Points already across stay where they are.
                r = r * Geometries.PerSample(active.to(r.dtype), r);
                total.index_add_(0, open, r, Keep(1));
                var moved = (x.index_select(0, open) + total.index_select(0, open) * Keep(1 + Overshoot)).clamp(Keep(lo), Keep(hi));
                adv.index_copy_(0, open, moved);
                var next = open.masked_select(active).MoveToOuterDisposeScope();
                open.Dispose();
                open = next;
            }
            context.StepProgress?.Report(1);
        }
        using (no_grad())
        {
            var logits = model.Logits(adv);
            var success = criterion.IsAdversarial(logits, targets);
            var distance = Geometry.Distance(adv - x);
            var minimumNorm = where(success, distance, full_like(distance, Keep(double.PositiveInfinity)));
            return new Perturbation(adv, minimumNorm);
        }
    }
}
