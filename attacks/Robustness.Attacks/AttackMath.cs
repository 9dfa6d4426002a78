using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks;

/// <summary>Small tensor helpers shared by the attacks (Core keeps its own versions internal).</summary>
internal static class AttackMath
{
    /// <summary>Reshapes a per-sample [N] tensor so it broadcasts against [N, ...].</summary>
    public static Tensor PerSample(Tensor perSample, Tensor like)
    {
        var shape = new long[like.dim()];
        Array.Fill(shape, 1L);
        shape[0] = -1;
        return perSample.reshape(shape);
    }

    public static Tensor Flat(Tensor t) => t.reshape(t.shape[0], -1);

    /// <summary>
    /// Gradient of Σ_i loss_i w.r.t. <paramref name="input"/> (a fresh leaf), with the logits and the per-sample loss.
    /// Uses autograd.grad so the model's parameter gradients are never touched.
    /// </summary>
    public static (Tensor Grad, Tensor Logits, Tensor Loss) LossGradient(
        IClassifier model, Tensor input, IAttackObjective objective, AttackTargets targets)
    {
        using var grad = enable_grad();
        // Channels-last: the convolutions' fast oneDNN path (MemoryLayout); the gradient comes back in that layout.
        var leaf = MemoryLayout.ChannelsLast(input).requires_grad_(true);
        var logits = model.Logits(leaf);
        var loss = objective.Loss(logits, targets);
        var g = autograd.grad([loss.sum()], [leaf])[0];
        return (g, logits.detach(), loss.detach());
    }

    /// <summary>x + δ clipped back into the ε-ball and the box.</summary>
    public static Tensor ProjectAndClamp(Core.Geometry.IPerturbationGeometry geometry, Tensor clean, Tensor candidate, double eps, Bounds bounds) =>
        (clean + geometry.Project(candidate - clean, eps)).clamp(bounds.Lower, bounds.Upper);

    /// <summary>Logits of the model without building a graph.</summary>
    public static Tensor CleanLogits(IClassifier model, Tensor x)
    {
        using var _ = no_grad();
        return model.Logits(x).detach();
    }

    /// <summary>Row indices (int64, on the same device) where <paramref name="mask"/> is true. Synchronises with the host.</summary>
    public static Tensor Indices(Tensor mask) => mask.nonzero().reshape(-1);

}
