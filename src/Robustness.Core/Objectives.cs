using static TorchSharp.torch;

namespace Robustness.Core;

/// <summary>A per-sample loss that an attack ascends. Targeted objectives are already sign-flipped.</summary>
public interface IAttackObjective
{
    string Name { get; }
    /// <summary>Per-sample loss [N] to maximise.</summary>
    Tensor Loss(Tensor logits, AttackTargets targets);
}

public static class Objectives
{
    public static IAttackObjective CrossEntropy { get; } = new CrossEntropyObjective();
    public static IAttackObjective Margin { get; } = new MarginObjective();
    public static IAttackObjective Dlr { get; } = new DlrObjective();
    public static IAttackObjective BinaryCrossEntropy { get; } = new BinaryCrossEntropyObjective();

    public static readonly IReadOnlyList<string> Names = ["ce", "margin", "dlr", "bce"];

    public static IAttackObjective Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "ce" or "cross-entropy" => CrossEntropy,
        "margin" or "cw" => Margin,
        "dlr" => Dlr,
        "bce" => BinaryCrossEntropy,
        _ => throw new ParameterException("Loss", $"unknown objective '{name}' (valid: {string.Join(", ", Names)})"),
    };

    /// <summary>Largest logit among classes other than <paramref name="cls"/>, per sample.</summary>
    public static Tensor MaxOther(Tensor logits, Tensor cls)
    {
        var mask = nn.functional.one_hot(cls, logits.shape[1]).to(ScalarType.Bool);
        return logits.masked_fill(mask, float.NegativeInfinity).amax([1L]);
    }

    public static Tensor Pick(Tensor logits, Tensor cls) => logits.gather(1, cls.unsqueeze(1)).squeeze(1);
}

/// <summary>Cross-entropy of the true class (untargeted) or minus that of the target (targeted).</summary>
public sealed class CrossEntropyObjective : IAttackObjective
{
    public string Name => "ce";

    public Tensor Loss(Tensor logits, AttackTargets t) => t.TargetClasses is { } target
        ? -nn.functional.cross_entropy(logits, target, reduction: nn.Reduction.None)
        : nn.functional.cross_entropy(logits, t.Labels, reduction: nn.Reduction.None);
}

/// <summary>Carlini–Wagner margin: max_{j≠y} z_j − z_y (untargeted), z_t − max_{j≠t} z_j (targeted).</summary>
public sealed class MarginObjective : IAttackObjective
{
    public string Name => "margin";

    public Tensor Loss(Tensor logits, AttackTargets t) => t.TargetClasses is { } target
        ? Objectives.Pick(logits, target) - Objectives.MaxOther(logits, target)
        : Objectives.MaxOther(logits, t.Labels) - Objectives.Pick(logits, t.Labels);
}

/// <summary>
/// Difference of logits ratio (Croce &amp; Hein 2020): scale-invariant margin. Untargeted:
/// −(z_y − max_{j≠y} z_j)/(z_π1 − z_π3); targeted: −(z_y − z_t)/(z_π1 − (z_π3 + z_π4)/2).
/// </summary>
public sealed class DlrObjective : IAttackObjective
{
    public string Name => "dlr";

    public Tensor Loss(Tensor logits, AttackTargets t)
    {
        var sorted = logits.sort(1, descending: true).Values;
        var zy = Objectives.Pick(logits, t.Labels);
        if (t.TargetClasses is { } target)
        {
            var denom = sorted[.., 0] - (sorted[.., 2] + sorted[.., 3]) * 0.5 + 1e-12;
            return -(zy - Objectives.Pick(logits, target)) / denom;
        }
        var maxOther = Objectives.MaxOther(logits, t.Labels);
        return -(zy - maxOther) / (sorted[.., 0] - sorted[.., 2] + 1e-12);
    }
}

/// <summary>Binary cross-entropy against multi-hot labels [N,K] (multi-label models), summed over classes.</summary>
public sealed class BinaryCrossEntropyObjective : IAttackObjective
{
    public string Name => "bce";

    public Tensor Loss(Tensor logits, AttackTargets t)
    {
        var goal = t.TargetClasses is { } target ? target.to(logits.dtype) : t.Labels.to(logits.dtype);
        var bce = nn.functional.binary_cross_entropy_with_logits(logits, goal, reduction: nn.Reduction.None).sum([1L]);
        return t.TargetClasses is null ? bce : -bce;
    }
}
