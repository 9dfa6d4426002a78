using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Core;

/// <summary>
/// A per-sample loss that an attack ascends. Targeted objectives are already sign-flipped. The objectives follow the
/// labels they are given: class indices (int64 [N]) for softmax classifiers, multi-hot rows (float [N,K]) for
/// multi-label classifiers with K sigmoid outputs (goals of targeted multi-label attacks: <see cref="MultiLabelTargets"/>).
/// </summary>
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
    /// <summary>The C&amp;W hinge with confidence 0 (<see cref="HingeObjective"/>).</summary>
    public static IAttackObjective Hinge { get; } = new HingeObjective();

    public static readonly IReadOnlyList<string> Names = ["ce", "margin", "dlr", "bce", "hinge"];

    public static IAttackObjective Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "ce" or "cross-entropy" => CrossEntropy,
        "margin" or "cw" => Margin,
        "dlr" => Dlr,
        "bce" => BinaryCrossEntropy,
        "hinge" => Hinge,
        _ => throw new ParameterException("Loss", $"unknown objective '{name}' (valid: {string.Join(", ", Names)})"),
    };

    /// <summary>True when the targets are multi-hot rows (a multi-label model), not class indices.</summary>
    public static bool IsMultiLabel(AttackTargets targets) => targets.Labels.dim() == 2;

    /// <summary>
    /// Per-class margins of a multi-label model, positive where the decision is as wanted: s·z with s = +1 for classes
    /// that are (untargeted: truly; targeted: wanted) on, −1 for the others. Classes the goal leaves free (targeted)
    /// are masked: the bool [N,K] mask is true where a class counts.
    /// </summary>
    public static (Tensor Margins, Tensor Counted) LabelMargins(Tensor logits, AttackTargets t)
    {
        var reference = t.TargetClasses ?? t.Labels;
        var margins = MultiLabelTargets.Signs(reference).to(logits.dtype) * logits;
        var counted = t.TargetClasses is { } goal ? MultiLabelTargets.Constrained(goal) : ones_like(margins, dtype: ScalarType.Bool);
        return (margins, counted);
    }

    /// <summary>Largest logit among classes other than <paramref name="cls"/>, per sample.</summary>
    public static Tensor MaxOther(Tensor logits, Tensor cls)
    {
        var mask = nn.functional.one_hot(cls, logits.shape[1]).to(ScalarType.Bool);
        return logits.masked_fill(mask, Keep(float.NegativeInfinity)).amax([1L]);
    }

    public static Tensor Pick(Tensor logits, Tensor cls) => logits.gather(1, cls.unsqueeze(1)).squeeze(1);
}

/// <summary>
/// Cross-entropy of the true class (untargeted) or minus that of the target (targeted). For multi-label targets the
/// model's cross-entropy is that of its K Bernoulli outputs, i.e. <see cref="BinaryCrossEntropyObjective"/>: this is
/// what "ce" attacks (FGSM, PGD, APGD-CE, …) maximise on a multi-label model.
/// </summary>
public sealed class CrossEntropyObjective : IAttackObjective
{
    public string Name => "ce";

    public Tensor Loss(Tensor logits, AttackTargets t) =>
        Objectives.IsMultiLabel(t) ? Objectives.BinaryCrossEntropy.Loss(logits, t)
        : t.TargetClasses is { } target
            ? -nn.functional.cross_entropy(logits, target, reduction: nn.Reduction.None)
            : nn.functional.cross_entropy(logits, t.Labels, reduction: nn.Reduction.None);
}

/// <summary>
/// Carlini–Wagner margin, positive exactly where the attack succeeded: max_{j≠y} z_j − z_y (untargeted),
/// z_t − max_{j≠t} z_j (targeted). Multi-label (per-class margins m = s·z of <see cref="Objectives.LabelMargins"/>):
/// −min_ℓ m_ℓ untargeted (the class closest to flipping, positive once one is flipped), min over the targeted classes
/// of m_ℓ targeted (positive once every targeted class is as wanted).
/// </summary>
public sealed class MarginObjective : IAttackObjective
{
    public string Name => "margin";

    public Tensor Loss(Tensor logits, AttackTargets t)
    {
        if (Objectives.IsMultiLabel(t))
        {
            var (m, counted) = Objectives.LabelMargins(logits, t);
            var worst = m.masked_fill(counted.logical_not(), Keep(float.PositiveInfinity)).amin([1L]);
            return t.TargetClasses is null ? -worst : worst;
        }
        return t.TargetClasses is { } target
            ? Objectives.Pick(logits, target) - Objectives.MaxOther(logits, target)
            : Objectives.MaxOther(logits, t.Labels) - Objectives.Pick(logits, t.Labels);
    }
}

/// <summary>
/// The hinge of Carlini &amp; Wagner (their f₆) with confidence κ, per sample to maximise: min(margin, κ) with the
/// single-label margin of <see cref="MarginObjective"/>. Multi-label, per class as in Song et al. (2018, ML-CW): the sum
/// over classes of min(−m_ℓ, κ) untargeted (pushes every class towards flipping until it is κ past the boundary) and of
/// min(m_ℓ, κ) over the targeted classes, i.e. −Σ max(0, κ − m_ℓ) + const, targeted.
/// </summary>
public sealed record HingeObjective(double Confidence = 0) : IAttackObjective
{
    public string Name => "hinge";

    public Tensor Loss(Tensor logits, AttackTargets t)
    {
        if (!(Confidence >= 0) || double.IsInfinity(Confidence))
            throw new ParameterException(nameof(Confidence), $"must be a finite number ≥ 0, got {Confidence}");
        if (!Objectives.IsMultiLabel(t)) return Objectives.Margin.Loss(logits, t).clamp_max(Keep(Confidence));
        var (m, counted) = Objectives.LabelMargins(logits, t);
        var perClass = (t.TargetClasses is null ? -m : m).clamp_max(Keep(Confidence));
        return (perClass * counted.to(perClass.dtype)).sum([1L]);
    }
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
        if (Objectives.IsMultiLabel(t))
            throw new ParameterException("Loss", "dlr ranks the classes of one softmax and needs single-label targets; multi-label models use bce, margin or hinge");
        var sorted = logits.sort(1, descending: true).Values;
        var zy = Objectives.Pick(logits, t.Labels);
        if (t.TargetClasses is { } target)
        {
            var denom = sorted[.., 0] - (sorted[.., 2] + sorted[.., 3]) * Keep(0.5) + Keep(1e-12);
            return -(zy - Objectives.Pick(logits, target)) / denom;
        }
        var maxOther = Objectives.MaxOther(logits, t.Labels);
        return -(zy - maxOther) / (sorted[.., 0] - sorted[.., 2] + Keep(1e-12));
    }
}

/// <summary>
/// Binary cross-entropy with logits against multi-hot labels [N,K] (multi-label models), summed over classes: against
/// the true set (untargeted, to maximise), or minus that against the goal over the classes it constrains (targeted;
/// see <see cref="MultiLabelTargets"/>). Soft labels in [0, 1] work as well.
/// </summary>
public sealed class BinaryCrossEntropyObjective : IAttackObjective
{
    public string Name => "bce";

    public Tensor Loss(Tensor logits, AttackTargets t)
    {
        if (!Objectives.IsMultiLabel(t))
            throw new ParameterException("Loss", "bce needs multi-hot labels [N,K] (a multi-label model); single-label models use ce, margin, dlr or hinge");
        if (t.TargetClasses is not { } target)
            return nn.functional.binary_cross_entropy_with_logits(logits, t.Labels.to(logits.dtype), reduction: nn.Reduction.None).sum([1L]);
        var counted = MultiLabelTargets.Constrained(target);
        var goal = MultiLabelTargets.On(target).to(logits.dtype);
        var bce = nn.functional.binary_cross_entropy_with_logits(logits, goal, reduction: nn.Reduction.None);
        return -(bce * counted.to(bce.dtype)).sum([1L]);
    }
}
