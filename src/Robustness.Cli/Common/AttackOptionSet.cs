using System.CommandLine;
using Robustness.Attacks;
using Robustness.Core;
using Robustness.Models;

namespace Robustness.Cli.Common;

/// <summary>The attack hyper-parameter options shared by `attack` and `eval`, and their translation to <see cref="AttackOptions"/>.</summary>
public sealed class AttackOptionSet
{
    public Option<int?> Steps { get; } = new("--steps") { Description = "Iterations (pgd/bim/mi-fgsm default 10; apgd 100; cw 100; deepfool 50)." };
    public Option<double?> StepSize { get; } = new("--step-size") { Description = "Absolute step size α in input units (overrides --rel-step-size)." };
    public Option<double?> RelStepSize { get; } = new("--rel-step-size") { Description = "Step size relative to ε (pgd default 2.5/steps, bim 1/steps·… see README)." };
    public Option<int?> Restarts { get; } = new("--restarts") { Description = "Random restarts; per sample the best adversarial is kept." };
    public Option<bool> Targeted { get; } = new("--targeted") { Description = "Targeted attack (targets from --target-mode)." };
    public Option<string> TargetMode { get; } = new("--target-mode") { Description = "random (another class, seeded), least-likely, or top-k.", DefaultValueFactory = _ => "random" };
    public Option<int?> TargetCount { get; } = new("--target-count") { Description = "Number of target classes for top-k / apgd-t (default 9)." };
    public Option<string?> Loss { get; } = new("--loss") { Description = "Objective for gradient attacks: ce, margin, dlr, hinge (C&W with --confidence); multi-label models: ce (= bce), bce, margin, hinge." };
    public Option<int?> Queries { get; } = new("--queries")
    {
        Description = $"Query budget per sample of the query-based attacks, a hard limit (square {new SquareAttack(ThreatModel.Linf(0.1)).Queries}, " +
            $"hopskipjump {new HopSkipJumpAttack(ThreatModel.Linf(0.1)).Queries}, boundary {new BoundaryAttack(ThreatModel.Linf(0.1)).Queries} by default).",
    };
    public Option<int?> SquareHalving { get; } = new("--square-halving")
    {
        Description = "Square: successive halving of the budget from this many queries on (at 2x, 4x, ... of it only the half of the standing points " +
            $"with the smallest margin go on); 0 = off. Default off, {AutoAttackVersions.StandardPresetSquareHalvingFrom} in the standard preset.",
    };
    public Option<bool> EarlyStop { get; } = new("--early-stop") { Description = "Stop moving a sample once it is adversarial (hopskipjump, boundary: once inside ε; saves queries, their minimum norm is then not the best)." };
    public Option<double?> Momentum { get; } = new("--momentum") { Description = "Momentum decay of mi-fgsm (default 1.0)." };
    public Option<double?> Confidence { get; } = new("--confidence") { Description = "C&W confidence κ (default 0)." };
    public Option<int?> Eot { get; } = new("--eot")
    {
        Description = "Expectation over Transformation: every gradient attack averages its input gradient over K forward/backward passes " +
            "(for randomised models; default 1, the rand preset 20). Square ignores it.",
    };

    public Option<string> Precision { get; } = new("--precision")
    {
        Description = "Arithmetic of the attacks' gradient passes: float32, or bf16 (about 2x faster on CPUs with AVX512-BF16 or AMX). " +
            "Every point is still judged by the float32 model, so bf16 can only weaken an attack: compare it with float32 on your model first (docs/performance.md).",
        DefaultValueFactory = _ => "float32",
    };

    public Option<string?> LabelAttacks { get; } = new("--label-attacks")
    {
        Description = "Multi-label models: attacks run per label after the ensemble, on every correct decision still standing, each asked to flip that label " +
            "(default: the same attacks; 'none' skips them, which can overestimate per-label robustness).",
    };
    public Option<string?> TargetLabels { get; } = new("--target-labels")
    {
        Description = "Multi-label models: targeted evaluation (Song et al. 2018) towards the true set with these labels turned on (+Name) or off (-Name), " +
            "the others unchanged; success = the whole target set reached. E.g. +Bag,-Trouser.",
    };
    public Option<int?> Flip { get; } = new("--flip") { Description = "Multi-label models: targeted evaluation towards the true set with k random labels flipped (seeded), the others unchanged." };

    public IEnumerable<Option> All => [Steps, StepSize, RelStepSize, Restarts, Targeted, TargetMode, TargetCount, Loss, Queries, SquareHalving, EarlyStop, Momentum, Confidence, Eot, Precision, LabelAttacks, TargetLabels, Flip];

    /// <summary>The multi-label settings: label attacks (null = same as the ensemble, "none"), and the target goal text.</summary>
    public (string? LabelAttacks, string? TargetLabels, int? Flip) ReadMultiLabel(ParseResult p)
    {
        var (labels, target, flip) = (p.GetValue(LabelAttacks), p.GetValue(TargetLabels), p.GetValue(Flip));
        if (target is not null && flip is not null) throw new InputException("--target-labels and --flip: give one or the other");
        if (flip is <= 0) throw new InputException($"--flip: must be ≥ 1, got {flip}");
        return (labels, target, flip);
    }

    public GradientPrecision ReadPrecision(ParseResult p) => GradientPrecisions.Parse(p.GetValue(Precision) ?? "float32");

    public void AddTo(Command command)
    {
        foreach (var o in All) command.Options.Add(o);
    }

    public AttackOptions Read(ParseResult p)
    {
        var o = new AttackOptions
        {
            Steps = p.GetValue(Steps),
            StepSize = p.GetValue(StepSize),
            RelativeStepSize = p.GetValue(RelStepSize),
            Restarts = p.GetValue(Restarts),
            Targeted = p.GetValue(Targeted),
            TargetMode = p.GetValue(TargetMode) ?? "random",
            TargetCount = p.GetValue(TargetCount),
            Loss = p.GetValue(Loss),
            Queries = p.GetValue(Queries),
            SquareHalvingFrom = p.GetValue(SquareHalving),
            EarlyStop = p.GetValue(EarlyStop),
            Momentum = p.GetValue(Momentum),
            Confidence = p.GetValue(Confidence),
            EotSamples = p.GetValue(Eot),
        };
        if (o.Loss is { } loss) Objectives.Parse(loss);
        if (o.Steps is <= 0) throw new InputException($"--steps: must be > 0, got {o.Steps}");
        if (o.Restarts is <= 0) throw new InputException($"--restarts: must be > 0, got {o.Restarts}");
        if (o.EotSamples is <= 0) throw new InputException($"--eot: must be > 0, got {o.EotSamples}");
        if (o.Queries is <= 0) throw new InputException($"--queries: must be > 0, got {o.Queries}");
        if (o.SquareHalvingFrom is < 0) throw new InputException($"--square-halving: must be ≥ 0 (0 = off), got {o.SquareHalvingFrom}");
        if (o.StepSize is { } a && (!(a > 0) || double.IsInfinity(a))) throw new InputException($"--step-size: must be a finite number > 0, got {a}");
        if (o.RelativeStepSize is { } r && (!(r > 0) || double.IsInfinity(r))) throw new InputException($"--rel-step-size: must be a finite number > 0, got {r}");
        return o;
    }
}
