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

/// <summary>Multi-label: adversarial when the thresholded prediction (logit &gt; 0) differs from the goal in any class.</summary>
public sealed class LabelsFlippedCriterion : ICriterion
{
    public string Name => "labels-flipped";
    public Tensor IsAdversarial(Tensor logits, AttackTargets t)
    {
        var predicted = logits.gt(0);
        return t.TargetClasses is { } goal
            ? predicted.eq(goal.gt(0.5)).all(1)
            : predicted.ne(t.Labels.gt(0.5)).any(1);
    }
}
