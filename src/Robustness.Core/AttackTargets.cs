using static TorchSharp.torch;

namespace Robustness.Core;

/// <summary>
/// What an attack works against: the true labels (int64 [N], or multi-hot float [N,K] for multi-label models)
/// and, for a targeted attack, the target classes (int64 [N]). Does not own the tensors.
/// </summary>
public sealed record AttackTargets(Tensor Labels, Tensor? TargetClasses = null)
{
    public bool Targeted => TargetClasses is not null;

    /// <summary>The same targets restricted to the rows in <paramref name="index"/> (int64 indices).</summary>
    public AttackTargets Select(Tensor index) =>
        new(Labels.index_select(0, index), TargetClasses?.index_select(0, index));
}
