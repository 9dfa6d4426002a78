using static TorchSharp.torch;

namespace Robustness.Core;

/// <summary>Per-sample "is this input adversarial?" decided from the model's logits.</summary>
public interface ICriterion
{
    string Name { get; }
    /// <summary>Bool [N].</summary>
    Tensor IsAdversarial(Tensor logits, AttackTargets targets);
}

public static class Criteria
{
    public static ICriterion Misclassified { get; } = new MisclassifiedCriterion();
    public static ICriterion TargetHit { get; } = new TargetHitCriterion();
    public static ICriterion LabelsFlipped { get; } = new LabelsFlippedCriterion();

    /// <summary>The natural criterion for the targets: target hit when targeted, else misclassified (labels flipped for multi-hot labels).</summary>
    public static ICriterion For(AttackTargets targets) =>
        targets.Targeted ? (targets.Labels.dim() == 2 ? LabelsFlipped : TargetHit)
        : targets.Labels.dim() == 2 ? LabelsFlipped : Misclassified;
}

public sealed class MisclassifiedCriterion : ICriterion
{
    public string Name => "misclassified";
    public Tensor IsAdversarial(Tensor logits, AttackTargets t) => logits.argmax(1).ne(t.Labels);
}

public sealed class TargetHitCriterion : ICriterion
{
    public string Name => "target-hit";
    public Tensor IsAdversarial(Tensor logits, AttackTargets t) =>
        logits.argmax(1).eq(t.TargetClasses ?? throw new InvalidOperationException("target-hit criterion needs target classes"));
}

/// <summary>
/// Multi-label (labels multi-hot [N,K], a class is predicted when its decision logit is &gt; 0). Untargeted: adversarial
/// when at least one class is flipped with respect to the true set. Targeted (Song et al. 2018; the goal in
/// <see cref="AttackTargets.TargetClasses"/>, see <see cref="MultiLabelTargets"/>): adversarial when every class the
/// goal constrains is predicted as wanted — with a goal that keeps the untargeted classes at their true state, that is
/// "the targeted labels as wanted and the others unchanged".
/// </summary>
public sealed class LabelsFlippedCriterion : ICriterion
{
    public string Name => "labels-flipped";
    public Tensor IsAdversarial(Tensor logits, AttackTargets t) =>
        t.TargetClasses is { } goal
            ? MultiLabelTargets.Reached(logits, goal)
            : MultiLabelTargets.Flipped(logits, t.Labels).any(1);
}
