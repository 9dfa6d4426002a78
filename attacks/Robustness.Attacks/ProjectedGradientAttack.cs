using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks;

/// <summary>
/// The one first-order engine (Madry et al. 2018; Foolbox's gradient-descent base): optional random start in the
/// ε-ball, then per step the gradient of the objective w.r.t. the input, a step of α along the norm's steepest
/// direction (sign for L∞, unit L2, sparse L1), projection onto the ball and clamping to the bounds.
/// FGSM/FGM, BIM, PGD and MI-FGSM are configurations of it (<see cref="Presets"/>).
/// Targeted runs (targets with TargetClasses) need no switch: the objectives flip sign and the criterion is target hit.
/// </summary>
public sealed record ProjectedGradientAttack(ThreatModel Threat) : AttackBase(Threat)
{
    /// <summary>Registry name reported in results (presets set "fgsm", "bim", ...).</summary>
    public string AttackName { get; init; } = "pgd";
    public int Steps { get; init; } = 10;
    /// <summary>α = RelativeStepSize · ε unless <see cref="AbsoluteStepSize"/> is set.</summary>
    public double RelativeStepSize { get; init; } = 0.25;
    public double? AbsoluteStepSize { get; init; }
    public bool RandomStart { get; init; } = true;
    /// <summary>Independent runs; per sample the first successful run wins, else the one with the highest loss.
    /// Later restarts run only on the points no earlier run broke.</summary>
    public int Restarts { get; init; } = 1;
    public IAttackObjective Objective { get; init; } = Objectives.CrossEntropy;
    /// <summary>Freeze samples as soon as they are adversarial (masked on device, no host sync).</summary>
    public bool EarlyStop { get; init; }
    /// <summary>Momentum decay μ; &gt; 0 accumulates L1-normalised gradients (MI-FGSM, Dong et al. 2018).</summary>
    public double Momentum { get; init; }
    /// <summary>Fraction of coordinates left still by an L1 step (only used for the L1 norm).</summary>
    public double L1Sparsity { get; init; } = L1Geometry.DefaultSparsity;

    public override string Name => AttackName;

    public double StepSize => AbsoluteStepSize ?? RelativeStepSize * Threat.Epsilon;

    public override IReadOnlyDictionary<string, object> Parameters => Describe(Threat,
        ("steps", Steps), ("step_size", StepSize), ("relative_step_size", RelativeStepSize),
        ("random_start", RandomStart), ("restarts", Restarts), ("loss", Objective.Name),
        ("early_stop", EarlyStop), ("momentum", Momentum), ("l1_sparsity", L1Sparsity));

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        Validate();
        if (Threat.Epsilon == 0) return new Perturbation(inputs);
        var geometry = Geometries.For(Threat.Norm, L1Sparsity);
        var criterion = Criteria.For(targets);

        var best = Once(model, geometry, inputs, targets, context);
        if (Restarts == 1) return new Perturbation(best);

        Tensor bestLoss, bestSuccess;
        using (no_grad())
        {
            var logits = model.Logits(best);
            bestLoss = Objective.Loss(logits, targets).detach();
            bestSuccess = criterion.IsAdversarial(logits, targets);
        }
        for (int r = 1; r < Restarts; r++)
        {
            // One host sync per restart: later restarts only work on the points still standing.
            var open = AttackMath.Indices(bestSuccess.logical_not());
            if (open.numel() == 0) break;
            using var scope = NewDisposeScope();
            var sub = inputs.index_select(0, open);
            var subTargets = targets.Select(open);
            var candidate = Once(model, geometry, sub, subTargets, context);
            using (no_grad())
            {
                var logits = model.Logits(candidate);
                var loss = Objective.Loss(logits, subTargets);
                var success = criterion.IsAdversarial(logits, subTargets);
                // Within the still-open points none has succeeded yet, so a success or a higher loss wins.
                var better = success.logical_or(loss.gt(bestLoss.index_select(0, open)));
                var keep = AttackMath.PerSample(better, candidate);
                var merged = where(keep, candidate, best.index_select(0, open));
                var newBest = best.index_copy(0, open, merged).MoveToOuterDisposeScope();
                var newLoss = bestLoss.index_copy(0, open, where(better, loss, bestLoss.index_select(0, open))).MoveToOuterDisposeScope();
                var newSuccess = bestSuccess.index_copy(0, open, success).MoveToOuterDisposeScope();
                best.Dispose(); bestLoss.Dispose(); bestSuccess.Dispose();
                (best, bestLoss, bestSuccess) = (newBest, newLoss, newSuccess);
            }
        }
        return new Perturbation(best);
    }

    private void Validate()
    {
        if (Steps < 1) throw new InputException($"--steps: {Name} needs at least 1 step, got {Steps}");
        if (Restarts < 1) throw new InputException($"--restarts: must be ≥ 1, got {Restarts}");
        if (!(StepSize >= 0) || double.IsInfinity(StepSize)) throw new InputException($"--step-size: must be a finite number ≥ 0, got {StepSize}");
        if (Momentum < 0 || double.IsNaN(Momentum)) throw new InputException($"--momentum: must be ≥ 0, got {Momentum}");
    }

    /// <summary>One run from a (random) start; returns the final iterate, owned by the caller's scope.</summary>
    private Tensor Once(IClassifier model, IPerturbationGeometry geometry, Tensor x, AttackTargets targets, AttackContext context)
    {
        var eps = Threat.Epsilon;
        var bounds = Threat.Bounds;
        var alpha = StepSize;
        var criterion = Criteria.For(targets);

        Tensor adv;
        using (no_grad())
            adv = RandomStart
                ? (x + geometry.RandomStart(x, eps, context.Generator)).clamp(bounds.Lower, bounds.Upper)
                : x.clone();
        Tensor? velocity = null;

        for (int step = 0; step < Steps; step++)
        {
            context.Cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var (grad, logits, _) = AttackMath.LossGradient(model, adv, Objective, targets);
            using (no_grad())
            {
                if (Momentum > 0)
                {
                    var l1 = AttackMath.Flat(grad).abs().sum(1).clamp_min(1e-12);
                    var normalised = grad / AttackMath.PerSample(l1, grad);
                    var v = velocity is null ? normalised : velocity * Momentum + normalised;
                    velocity?.Dispose();
                    velocity = v.MoveToOuterDisposeScope();
                    grad = velocity;
                }
                var next = AttackMath.ProjectAndClamp(geometry, x, adv + geometry.Direction(grad, adv, bounds) * alpha, eps, bounds);
                if (EarlyStop)
                {
                    // Samples adversarial at the current point stay there (decided on the logits we already have).
                    var done = criterion.IsAdversarial(logits, targets);
                    next = where(AttackMath.PerSample(done, next), adv, next);
                }
                next.MoveToOuterDisposeScope();
                adv.Dispose();
                adv = next;
            }
            context.StepProgress?.Report(1);
        }
        velocity?.Dispose();
        return adv;
    }
}
