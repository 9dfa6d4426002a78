using Robustness.Core;
using Robustness.Core.Geometry;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// Carlini &amp; Wagner (2017) L2: minimise ‖x' − x‖₂² + c·max(z_y − max_{j≠y} z_j + κ, 0) over x' = box(tanh(w)) with
/// Adam, binary search over c per sample. The hinge is max(κ − margin, 0) with the margin of <see cref="MarginObjective"/>,
/// so multi-label targets give Song et al.'s ML-CW (the smallest per-label margin; targeted: over the goal's labels). <see cref="AttackResult.MinimumNorm"/> is the smallest successful L2
/// distance found (+∞ where none). The returned point is that best adversarial; the shared final step projects it into
/// the ε-ball, so success at ε is reported honestly (it holds where the minimum norm is ≤ ε).
/// </summary>
public sealed record CarliniWagnerL2Attack(ThreatModel Threat) : AttackBase(Threat)
{
    public int Steps { get; init; } = 100;
    public int BinarySearchSteps { get; init; } = 9;
    /// <summary>Confidence κ: required logit margin of the adversarial.</summary>
    public double Confidence { get; init; }
    public double InitialConst { get; init; } = 1e-3;
    public double LearningRate { get; init; } = 1e-2;
    /// <summary>Stop an inner optimisation when the loss has not decreased by 0.01% over a tenth of the steps.</summary>
    public bool AbortEarly { get; init; } = true;
    /// <summary>Forward/backward passes whose gradients (and logits) are averaged per step (EOT, for randomised models).</summary>
    public int EotSamples { get; init; } = 1;

    public override string Name => "cw";

    public override IReadOnlyDictionary<string, object> Parameters => Describe(Threat,
        ("steps", Steps), ("binary_search_steps", BinarySearchSteps), ("confidence", Confidence),
        ("initial_const", InitialConst), ("learning_rate", LearningRate), ("abort_early", AbortEarly), ("eot_samples", EotSamples));

    protected override Perturbation Perturb(IClassifier model, Tensor x, AttackTargets targets, AttackContext context)
    {
        if (Threat.Norm != Norm.L2) throw new ParameterException("Norm", $"cw (Carlini–Wagner) is an L2 attack, got {Threat.Norm.Name()}");
        if (Steps < 1 || BinarySearchSteps < 1) throw new ParameterException(Steps < 1 ? nameof(Steps) : nameof(BinarySearchSteps), $"cw needs at least 1, got {Math.Min(Steps, BinarySearchSteps)}");
        if (!(LearningRate > 0)) throw new ParameterException(nameof(LearningRate), $"cw needs a learning rate > 0, got {LearningRate}");
        AttackMath.CheckEot(EotSamples);

        var (lo, hi) = ((double)Threat.Bounds.Lower, (double)Threat.Bounds.Upper);
        var n = x.shape[0];
        var device = x.device;
        Tensor w0;
        using (no_grad())
        {
            // Inputs at the bounds map to ±atanh(0.999999): finite, and reachable again by the optimiser.
            w0 = (((x - Keep(lo)) / Keep(hi - lo) * Keep(2) - Keep(1)) * Keep(0.999999)).atanh();
        }

        var c = full(n, Keep(InitialConst), dtype: ScalarType.Float64, device: device);
        var lower = zeros(n, dtype: ScalarType.Float64, device: device);
        var upper = full(n, Keep(1e10), dtype: ScalarType.Float64, device: device);
        var bestNorm = full(n, Keep(double.PositiveInfinity), dtype: ScalarType.Float64, device: device);
        var bestAdv = x.clone();
        const double beta1 = 0.9, beta2 = 0.999;
        int abortEvery = Math.Max(1, Steps / 10);

        for (int search = 0; search < BinarySearchSteps; search++)
        {
            context.Cancel.ThrowIfCancellationRequested();
            var modifier = zeros_like(x);
            var m = zeros_like(x);
            var v = zeros_like(x);
            var succeeded = zeros(n, dtype: ScalarType.Bool, device: device);
            var cx = c.to(x.dtype);
            double previousLoss = double.PositiveInfinity;
            for (int step = 0; step < Steps; step++)
            {
                context.Cancel.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var (grad, logits, loss) = AttackMath.Expected(EotSamples, () =>
                {
                    using var withGrad = enable_grad();
                    var leaf = modifier.detach().requires_grad_(true);
                    var point = (leaf + w0).tanh().add(Keep(1)).mul(Keep((hi - lo) / 2)).add(Keep(lo));
                    var z = model.Logits(point);
                    // Margin > 0 exactly where the attack succeeded (untargeted or targeted, single- or multi-label).
                    var hinge = (Keep(Confidence) - Objectives.Margin.Loss(z, targets)).clamp_min(Keep(0));
                    var distSq = Geometries.Flat(point - x).pow(Keep(2)).sum(1);
                    var total = distSq + cx * hinge;
                    return (autograd.grad([total.sum()], [leaf])[0], z.detach(), total.detach());
                });
                Tensor candidate;
                using (no_grad()) candidate = (modifier + w0).tanh().add(Keep(1)).mul(Keep((hi - lo) / 2)).add(Keep(lo));
                using (no_grad())
                {
                    // Adam on the tanh-space modifier.
                    int t = step + 1;
                    m.mul_(Keep(beta1)).add_(grad * Keep(1 - beta1));
                    v.mul_(Keep(beta2)).add_(grad.pow(Keep(2)) * Keep(1 - beta2));
                    var mHat = m / Keep(1 - Math.Pow(beta1, t));
                    var vHat = v / Keep(1 - Math.Pow(beta2, t));
                    modifier.sub_(mHat / (vHat.sqrt() + Keep(1e-8)) * Keep(LearningRate));

                    var success = Objectives.Margin.Loss(logits.detach(), targets).gt(Keep(Confidence));
                    var dist = Geometries.Flat(candidate.detach() - x).to(ScalarType.Float64).norm(1, false, 2);
                    var improved = success.logical_and(dist.lt(bestNorm));
                    bestNorm.copy_(where(improved, dist, bestNorm));
                    bestAdv.copy_(where(Geometries.PerSample(improved, x), candidate.detach(), bestAdv));
                    succeeded.logical_or_(success);
                    if (AbortEarly && (step + 1) % abortEvery == 0)
                    {
                        // One host sync per tenth of the steps.
                        var total = loss.detach().sum().ToDouble();
                        if (total > previousLoss * 0.9999) break;
                        previousLoss = total;
                    }
                }
                context.StepProgress?.Report(1);
            }
            using (no_grad())
            {
                upper.copy_(where(succeeded, minimum(upper, c), upper));
                lower.copy_(where(succeeded, lower, maximum(lower, c)));
                var bisect = (lower + upper) / Keep(2);
                c.copy_(where(upper.lt(Keep(1e9)), bisect, c * Keep(10)));
            }
            modifier.Dispose(); m.Dispose(); v.Dispose(); succeeded.Dispose(); cx.Dispose();
        }
        return new Perturbation(bestAdv, bestNorm);
    }
}
