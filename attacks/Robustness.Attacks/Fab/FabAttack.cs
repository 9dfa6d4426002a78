using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// FAB, the fast adaptive boundary attack (Croce &amp; Hein 2020, "Minimally distorted adversarial examples with a fast
/// adaptive boundary attack"), L∞, L2 and L1: a minimum-norm attack that walks along linearised decision boundaries
/// (<see cref="FabRun"/>) and keeps, per sample, the closest adversarial it finds. <see cref="AttackResult.MinimumNorm"/>
/// is that distance (+∞ where none; 0 where the input is already adversarial); the point goes through the shared final
/// step, so success at ε holds where the minimum norm is ≤ ε.
/// Untargeted (<c>fab</c>) it follows the closest boundary of any class; with <see cref="TargetCount"/> = k &gt; 0 it is
/// FAB-T (<c>fab-t</c>): one run per each of the 2nd…(k+1)-th most likely clean classes, each on the points still
/// standing at ε, success judged as misclassification (as AutoAttack does). Defaults are AutoAttack's.
/// </summary>
public sealed record FabAttack(ThreatModel Threat) : AttackBase(Threat)
{
    public const int DefaultSteps = 100;
    public const int DefaultTargetCount = 9;
    public const double DefaultAlphaMax = 0.1;
    public const double DefaultEta = 1.05;
    public const double DefaultBeta = 0.9;

    public int Steps { get; init; } = DefaultSteps;
    /// <summary>Runs per target (or untargeted); the first starts at the input, later ones at a random point at ε/2
    /// (AutoAttack's restarts). Each runs on the points still standing at ε.</summary>
    public int Restarts { get; init; } = 1;
    /// <summary>0: untargeted, or the caller's targets. k &gt; 0: FAB-T over the k most likely wrong classes.</summary>
    public int TargetCount { get; init; }
    /// <summary>Largest weight α of the step projected from the original point.</summary>
    public double AlphaMax { get; init; } = DefaultAlphaMax;
    /// <summary>Overshoot η ≥ 1 of both projected steps.</summary>
    public double Eta { get; init; } = DefaultEta;
    /// <summary>Backward step β: an adversarial iterate moves to x + β(x̂ − x).</summary>
    public double Beta { get; init; } = DefaultBeta;
    /// <summary>Forward/backward passes averaged per linearisation (EOT, for randomised models); 1 otherwise.</summary>
    public int EotSamples { get; init; } = 1;

    public override string Name => TargetCount > 0 ? "fab-t" : "fab";

    public override IReadOnlyDictionary<string, object> Parameters => Describe(Threat,
        ("steps", Steps), ("restarts", Restarts), ("target_classes", TargetCount), ("alpha_max", AlphaMax),
        ("eta", Eta), ("beta", Beta), ("eot_samples", EotSamples));

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        Validate();
        // At ε = 0 the input is the only admissible point: no search (and no minimum norms), as for the other attacks.
        if (Threat.Epsilon == 0) return new Perturbation(inputs);
        if (targets.Labels.dim() != 1) throw new InputException($"attack '{Name}': needs class labels, not multi-hot labels");
        var clean = AttackMath.CleanLogits(model, inputs);
        int classes = (int)clean.shape[1];
        if (classes < 2) throw new InputException($"attack '{Name}': the model has {classes} class(es); FAB needs at least 2");

        var criterion = Criteria.For(targets);
        var already = criterion.IsAdversarial(clean, targets);
        var minimumNorm = full(already.shape[0], Keep(double.PositiveInfinity), dtype: ScalarType.Float64, device: inputs.device).masked_fill(already, Keep(0));
        var run = new FabRun(this, model, criterion);
        bool topK = TargetCount > 0 && !targets.Targeted;
        var columns = topK ? TargetSelection.TopKOthers(clean, targets.Labels, Math.Min(TargetCount, classes - 1)) : null;

        var stages = new List<Stage>();
        foreach (var target in Enumerable.Range(0, columns is null ? 1 : (int)columns.shape[1]))
            for (int r = 0; r < Restarts; r++)
            {
                bool randomStart = r > 0;
                stages.Add((rows, x, t, c) =>
                {
                    var goal = columns?[.., target].index_select(0, rows) ?? t.TargetClasses;
                    var (point, distance) = run.Run(x, t, goal, randomStart, c);
                    using var _ = no_grad();
                    var kept = minimumNorm.index_select(0, rows);
                    minimumNorm.index_copy_(0, rows, minimum(kept, distance));
                    // Success at ε: an adversarial inside the ball (the final step judges it again).
                    var inside = distance.le(Keep(Threat.Epsilon * (1 + ThreatModelCheck.RelativeTolerance)));
                    return new StageOutcome(point, inside, distance.neg());
                });
            }

        // Per sample the closest adversarial over all runs (score = −distance); a run only where none is within ε yet.
        var points = new StandingPoints(inputs, targets, KeepRule.SuccessOrHigherScore, already);
        points.Run(stages, context);
        return new Perturbation(points.Adversarial, minimumNorm);
    }

    private void Validate()
    {
        if (Steps < 1) throw new ParameterException(nameof(Steps), $"{Name} needs at least 1 step, got {Steps}");
        if (Restarts < 1) throw new ParameterException(nameof(Restarts), $"must be ≥ 1, got {Restarts}");
        if (TargetCount < 0) throw new ParameterException(nameof(TargetCount), $"must be ≥ 0, got {TargetCount}");
        if (!(AlphaMax is >= 0 and <= 1)) throw new ParameterException(nameof(AlphaMax), $"must be in [0, 1], got {AlphaMax}");
        if (!(Eta >= 1) || double.IsInfinity(Eta)) throw new ParameterException(nameof(Eta), $"must be a finite number ≥ 1, got {Eta}");
        if (!(Beta is > 0 and <= 1)) throw new ParameterException(nameof(Beta), $"must be in (0, 1], got {Beta}");
        AttackMath.CheckEot(EotSamples);
    }
}
