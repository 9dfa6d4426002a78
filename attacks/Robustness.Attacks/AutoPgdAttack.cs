using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks;

/// <summary>
/// Auto-PGD (Croce &amp; Hein 2020): PGD with momentum (α = 0.75) and a step size that starts at 2ε and halves at
/// checkpoints p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06) when (a) at most ρ = 0.75 of the
/// steps since the last checkpoint increased the loss, or (b) neither the step size nor the best loss changed since
/// the previous checkpoint; on halving a sample restarts from its best point (<see cref="AutoPgdRun"/>).
/// Untargeted with CE or DLR (APGD-CE, APGD-DLR); with <see cref="TargetCount"/> &gt; 0 it is APGD-T: one targeted-DLR
/// run per each of the top-k wrong classes, each on the points still robust, success judged as misclassification.
/// L∞ and L2 follow the paper; L1 uses the same schedule with the sparse L1 step of the geometry.
/// Multi-label targets (multi-hot labels): CE is the models' binary cross-entropy (<see cref="CrossEntropyObjective"/>);
/// DLR ranks the classes of one softmax and has no multi-label form, so wherever this attack would use it (APGD-DLR,
/// APGD-T) it uses <see cref="MultiLabelObjective"/> instead (the per-label margin); APGD-T's k targets are the k labels
/// closest to flipping (smallest |decision logit|), one run each asking only that label to flip.
/// </summary>
public sealed record AutoPgdAttack(ThreatModel Threat) : AttackBase(Threat)
{
    public const double Rho = 0.75;
    public const double MomentumAlpha = 0.75;
    /// <summary>Defaults of AutoAttack's APGD.</summary>
    public const int DefaultSteps = 100;
    public const int DefaultTargetCount = 9;

    public int Steps { get; init; } = DefaultSteps;
    /// <summary>Runs from fresh random starts, each only on the points still robust.</summary>
    public int Restarts { get; init; } = 1;
    /// <summary>The objective of untargeted runs (CE or DLR; any objective works).</summary>
    public IAttackObjective Objective { get; init; } = Objectives.CrossEntropy;
    /// <summary>0: untargeted (or the caller's own targets). k &gt; 0: APGD-T over the k most likely wrong classes.</summary>
    public int TargetCount { get; init; }
    /// <summary>Initial step size relative to ε (2 in the paper).</summary>
    public double InitialRelativeStepSize { get; init; } = 2.0;
    public double L1Sparsity { get; init; } = L1Geometry.DefaultSparsity;
    /// <summary>Used in place of DLR on multi-label targets (scale-dependent, unlike DLR).</summary>
    public IAttackObjective MultiLabelObjective { get; init; } = Objectives.Margin;
    /// <summary>Forward/backward passes whose input gradients (and losses) are averaged per step: EOT for randomised
    /// models (AutoAttack's <c>eot_iter</c>; 20 in its <c>rand</c> version).</summary>
    public int EotSamples { get; init; } = 1;

    public override string Name => TargetCount > 0 ? "apgd-t" : "apgd-" + Objective.Name;

    public override IReadOnlyDictionary<string, object> Parameters => Describe(Threat,
        ("steps", Steps), ("restarts", Restarts), ("loss", TargetCount > 0 ? "dlr-targeted" : Objective.Name),
        ("target_classes", TargetCount), ("initial_step_size", InitialRelativeStepSize * Threat.Epsilon),
        ("rho", Rho), ("momentum", MomentumAlpha), ("l1_sparsity", L1Sparsity), ("eot_samples", EotSamples));

    /// <summary>
    /// Checkpoint iterations w_j = ⌈p_j · Steps⌉ (without 0). Computed in integers as the reference implementation
    /// does (first interval 22% of the steps, each next one 3% shorter, at least 6%), which avoids float rounding.
    /// </summary>
    public static IReadOnlyList<int> Checkpoints(int steps)
    {
        var points = new List<int>();
        int length = Math.Max((int)(0.22 * steps), 1);
        int shrink = Math.Max((int)(0.03 * steps), 1);
        int minimum = Math.Max((int)(0.06 * steps), 1);
        for (int at = length; at < steps; length = Math.Max(length - shrink, minimum), at += length)
            points.Add(at);
        return points;
    }

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        if (Steps < 1) throw new ParameterException(nameof(Steps), $"{Name} needs at least 1 step, got {Steps}");
        if (Restarts < 1) throw new ParameterException(nameof(Restarts), $"must be ≥ 1, got {Restarts}");
        AttackMath.CheckEot(EotSamples);
        if (Threat.Epsilon == 0) return new Perturbation(inputs);
        var clean = AttackMath.CleanLogits(model, inputs);
        bool multiLabel = Objectives.IsMultiLabel(targets);
        var objective = multiLabel && Objective is DlrObjective ? MultiLabelObjective : Objective;
        var targetedObjective = multiLabel ? MultiLabelObjective : Objectives.Dlr;
        // DLR reads the 3rd (untargeted) or 4th (targeted) largest logit.
        bool targetedDlr = !multiLabel && (TargetCount > 0 || (targets.Targeted && Objective is DlrObjective));
        int needed = multiLabel ? 1 : targetedDlr ? 4 : Objective is DlrObjective ? 3 : 2;
        if (clean.shape[1] < needed)
            throw new InputException($"attack '{Name}': the DLR loss needs at least {needed} classes, the model has {clean.shape[1]}");

        var run = new AutoPgdRun(this, model, Geometries.For(Threat.Norm, L1Sparsity), Criteria.For(targets));
        bool topK = TargetCount > 0 && !targets.Targeted;
        var stages = new List<Stage>();
        if (topK)
        {
            int k = Math.Min(TargetCount, (int)clean.shape[1] - (multiLabel ? 0 : 1));
            // Per sample the k most likely wrong classes; multi-label: the k labels closest to flipping, each as a goal
            // that asks only that label to flip.
            var topTargets = multiLabel ? TargetSelection.ClosestLabels(clean, k) : TargetSelection.TopKOthers(clean, targets.Labels, k);
            for (int target = 0; target < k; target++)
            {
                var column = topTargets[.., target];
                for (int r = 0; r < Restarts; r++)
                    stages.Add((rows, x, t, c) =>
                    {
                        var chosen = column.index_select(0, rows);
                        var goal = multiLabel ? MultiLabelTargets.FlipOnly(t.Labels, chosen) : chosen;
                        return run.Outcome(x, new AttackTargets(t.Labels, goal), t, targetedObjective, c);
                    });
            }
        }
        else
            stages.AddRange(Enumerable.Repeat<Stage>((_, x, t, c) => run.Outcome(x, t, t, objective, c), Restarts));

        // Targeted rounds keep the first attempt (later ones only where they succeed); restarts keep the highest loss.
        var points = new StandingPoints(inputs, targets, topK ? KeepRule.SuccessOrFirstAttempt : KeepRule.SuccessOrHigherScore,
            Criteria.For(targets).IsAdversarial(clean, targets));
        points.Run(stages, context);
        return new Perturbation(points.Adversarial);
    }
}
