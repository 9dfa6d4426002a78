using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// The one first-order engine (Madry et al. 2018; Foolbox's gradient-descent base): a start in the ε-ball
/// (<see cref="Start"/>: uniform, none, Gaussian, given), then per step the gradient of the objective w.r.t. the input,
/// a step of α along the norm's steepest direction (sign for L∞, unit L2, sparse L1), projection onto the ball and
/// clamping to the bounds. FGSM/FGM, BIM, PGD, MI-FGSM (<see cref="Presets"/>) and TRADES' inner maximisation are
/// configurations of it. Targeted runs (targets with TargetClasses) need no switch: the objectives flip sign and the
/// criterion is target hit.
/// </summary>
public sealed record ProjectedGradientAttack(ThreatModel Threat) : AttackBase(Threat)
{
    /// <summary>The engine's defaults; presets override them.</summary>
    public const int DefaultSteps = 10;
    public const double DefaultRelativeStepSize = 0.25;

    /// <summary>Registry name reported in results (presets set "fgsm", "bim", ...).</summary>
    public string AttackName { get; init; } = "pgd";
    public int Steps { get; init; } = DefaultSteps;
    /// <summary>α = RelativeStepSize · ε unless <see cref="AbsoluteStepSize"/> is set.</summary>
    public double RelativeStepSize { get; init; } = DefaultRelativeStepSize;
    public double? AbsoluteStepSize { get; init; }
    /// <summary>Where each run starts; uniform in the ball by default.</summary>
    public IStartStrategy Start { get; init; } = Starts.Uniform;
    /// <summary>Independent runs; per sample the first successful run wins, else the one with the highest loss.
    /// Later restarts run only on the points no earlier run broke (<see cref="StandingPoints"/>).</summary>
    public int Restarts { get; init; } = 1;
    public IAttackObjective Objective { get; init; } = Objectives.CrossEntropy;
    /// <summary>Freeze samples as soon as they are adversarial (masked on device, no host sync).</summary>
    public bool EarlyStop { get; init; }
    /// <summary>Momentum decay μ; &gt; 0 accumulates L1-normalised gradients (MI-FGSM, Dong et al. 2018).</summary>
    public double Momentum { get; init; }
    /// <summary>Fraction of coordinates left still by an L1 step (only used for the L1 norm).</summary>
    public double L1Sparsity { get; init; } = L1Geometry.DefaultSparsity;
    /// <summary>Forward/backward passes whose input gradients are averaged per step (EOT, for randomised models).</summary>
    public int EotSamples { get; init; } = 1;

    public override string Name => AttackName;

    public double StepSize => AbsoluteStepSize ?? RelativeStepSize * Threat.Epsilon;

    public override IReadOnlyDictionary<string, object> Parameters => Describe(Threat,
        ("steps", Steps), ("step_size", StepSize), ("relative_step_size", RelativeStepSize),
        ("random_start", Start.IsRandom), ("start", Start.Name), ("restarts", Restarts), ("loss", Objective.Name),
        ("early_stop", EarlyStop), ("momentum", Momentum), ("l1_sparsity", L1Sparsity), ("eot_samples", EotSamples));

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        Validate();
        if (Threat.Epsilon == 0) return new Perturbation(inputs);
        var geometry = Geometries.For(Threat.Norm, L1Sparsity);
        if (Restarts == 1) return new Perturbation(Once(model, geometry, inputs, targets, context));

        var criterion = Criteria.For(targets);
        var points = new StandingPoints(inputs, targets, KeepRule.SuccessOrHigherScore);
        Stage run = (_, x, t, c) =>
        {
            var candidate = Once(model, geometry, x, t, c);
            using var noGrad = no_grad();
            var logits = model.Logits(candidate);
            return new StageOutcome(candidate, criterion.IsAdversarial(logits, t), Objective.Loss(logits, t).detach());
        };
        points.Run(Enumerable.Repeat(run, Restarts).ToArray(), context);
        return new Perturbation(points.Adversarial);
    }

    private void Validate()
    {
        if (Steps < 1) throw new ParameterException(nameof(Steps), $"{Name} needs at least 1 step, got {Steps}");
        if (Restarts < 1) throw new ParameterException(nameof(Restarts), $"must be ≥ 1, got {Restarts}");
        if (!(StepSize >= 0) || double.IsInfinity(StepSize)) throw new ParameterException(nameof(StepSize), $"must be a finite number ≥ 0, got {StepSize}");
        if (Momentum < 0 || double.IsNaN(Momentum)) throw new ParameterException(nameof(Momentum), $"must be ≥ 0, got {Momentum}");
        AttackMath.CheckEot(EotSamples);
    }

    /// <summary>One run from the start; returns the final iterate, owned by the caller's scope.</summary>
    private Tensor Once(IClassifier model, IPerturbationGeometry geometry, Tensor x, AttackTargets targets, AttackContext context)
    {
        var (eps, bounds, alpha) = (Threat.Epsilon, Threat.Bounds, StepSize);
        var criterion = Criteria.For(targets);
        var adv = Start.Start(x, Threat, geometry, context.Generator);
        Tensor? velocity = null;

        for (int step = 0; step < Steps; step++)
        {
            context.Cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var (grad, logits, _) = AttackMath.LossGradient(model, adv, Objective, targets, EotSamples);
            using (no_grad())
            {
                if (Momentum > 0)
                {
                    var l1 = Geometries.Flat(grad).abs().sum(1).clamp_min(Keep(1e-12));
                    var normalised = grad / Geometries.PerSample(l1, grad);
                    var v = velocity is null ? normalised : velocity * Keep(Momentum) + normalised;
                    velocity?.Dispose();
                    velocity = v.MoveToOuterDisposeScope();
                    grad = velocity;
                }
                var next = AttackMath.ProjectAndClamp(geometry, x, adv + geometry.Direction(grad, adv, bounds) * Keep(alpha), eps, bounds);
                if (EarlyStop)
                {
                    // Samples adversarial at the current point stay there (decided on the logits we already have).
                    var done = criterion.IsAdversarial(logits, targets);
                    next = where(Geometries.PerSample(done, next), adv, next);
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
