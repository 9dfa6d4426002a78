using Robustness.Core;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks;

/// <summary>Small tensor helpers shared by the attacks (per-sample reshapes live in <see cref="Geometries"/>).</summary>
internal static class AttackMath
{
    /// <summary>
    /// Gradient of Σ_i loss_i w.r.t. <paramref name="input"/> (a fresh leaf), with the logits and the per-sample loss.
    /// Uses autograd.grad so the model's parameter gradients are never touched.
    /// </summary>
    public static (Tensor Grad, Tensor Logits, Tensor Loss) LossGradient(
        IClassifier model, Tensor input, IAttackObjective objective, AttackTargets targets)
    {
        using var grad = enable_grad();
        // Channels-last: the convolutions' fast oneDNN path (Layout); the gradient comes back in that layout.
        var leaf = Layout.ChannelsLastView(input.detach()).requires_grad_(true);
        var logits = model.Logits(leaf);
        var loss = objective.Loss(logits, targets);
        var g = autograd.grad([loss.sum()], [leaf])[0];
        return (g, logits.detach(), loss.detach());
    }

    /// <summary>x + δ clipped back into the ε-ball and the box.</summary>
    public static Tensor ProjectAndClamp(IPerturbationGeometry geometry, Tensor clean, Tensor candidate, double eps, Bounds bounds) =>
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
