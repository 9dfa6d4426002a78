using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Core;

/// <summary>
/// Label sets of multi-label models as tensors. True labels are multi-hot rows [N, K] (1 = class present). A goal
/// (the <see cref="AttackTargets.TargetClasses"/> of a targeted multi-label attack) is a float row per sample with one
/// state per class: 1 = must be predicted, 0 = must not be, <see cref="Any"/> = either (not targeted). A class is
/// predicted when its decision logit is &gt; 0 (the classifier folds its threshold into the logits, see
/// <see cref="ModelSpec.DecisionThreshold"/>).
/// </summary>
public static class MultiLabelTargets
{
    /// <summary>Goal state of a class that may end up either way.</summary>
    public const float Any = -1f;

    /// <summary>Bool [N, K]: the class is predicted (decision logit &gt; 0).</summary>
    public static Tensor Predicted(Tensor logits) => logits.gt(Keep(0));

    /// <summary>Bool [N, K]: present in a multi-hot row (or wanted on in a goal).</summary>
    public static Tensor On(Tensor labels) => labels.gt(Keep(0.5));

    /// <summary>±1 per class, +1 where present: the sign under which a correct decision logit is positive.</summary>
    public static Tensor Signs(Tensor labels) => On(labels).to(ScalarType.Float32) * Keep(2) - Keep(1);

    /// <summary>Bool [N, K]: the prediction differs from the true label set in that class.</summary>
    public static Tensor Flipped(Tensor logits, Tensor labels) => Predicted(logits).ne(On(labels));

    /// <summary>Bool [N, K]: the goal constrains that class (its state is not <see cref="Any"/>).</summary>
    public static Tensor Constrained(Tensor goal) => goal.ge(Keep(0));

    /// <summary>Bool [N]: every constrained class of the goal is predicted as wanted.</summary>
    public static Tensor Reached(Tensor logits, Tensor goal) =>
        Predicted(logits).eq(On(goal)).logical_or(Constrained(goal).logical_not()).all(1);

    /// <summary>
    /// The goal of Song et al. (2018): the true set with the classes of <paramref name="flip"/> (bool [N, K]) turned to
    /// their opposite and every other class kept as it is (float [N, K], no <see cref="Any"/>).
    /// </summary>
    public static Tensor FlipGoal(Tensor labels, Tensor flip) =>
        where(flip, Keep(1) - On(labels).to(ScalarType.Float32), On(labels).to(ScalarType.Float32));

    /// <summary>
    /// A goal that asks only that class <paramref name="label"/> (int64 [N]) be flipped; every other class is
    /// <see cref="Any"/>. The per-label attacks of a multi-label evaluation use it.
    /// </summary>
    public static Tensor FlipOnly(Tensor labels, Tensor label)
    {
        var k = labels.shape[1];
        var one = nn.functional.one_hot(label, k).to(ScalarType.Bool);
        var flipped = Keep(1) - On(labels).to(ScalarType.Float32);
        return where(one, flipped, full_like(flipped, Keep(Any)));
    }
}
