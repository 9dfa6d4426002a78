using Robustness.Core;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>Small tensor helpers shared by the attacks (per-sample reshapes live in <see cref="Geometries"/>).</summary>
internal static class AttackMath
{
    /// <summary>
    /// Gradient of Σ_i loss_i w.r.t. <paramref name="input"/> (a fresh leaf), with the logits and the per-sample loss.
    /// Uses autograd.grad so the model's parameter gradients are never touched.
    /// </summary>
    /// <remarks>With <paramref name="eotSamples"/> = K &gt; 1 this is Expectation over Transformation (Athalye et al.
    /// 2018): K forward/backward passes, and the gradient, logits and loss are their means — the estimate of the
    /// expected gradient a randomised model (noise, random transformations inside the forward pass) needs. For a
    /// deterministic model K passes give K times the same gradient.</remarks>
    public static (Tensor Grad, Tensor Logits, Tensor Loss) LossGradient(
        IClassifier model, Tensor input, IAttackObjective objective, AttackTargets targets, int eotSamples = 1) =>
        Expected(eotSamples, () =>
        {
            using var grad = enable_grad();
            // Channels-last: the convolutions' fast oneDNN path (Layout); the gradient comes back in that layout.
            var leaf = Layout.ChannelsLastView(input.detach()).requires_grad_(true);
            var logits = model.Logits(leaf);
            var loss = objective.Loss(logits, targets);
            var g = autograd.grad([loss.sum()], [leaf])[0];
            return (g, logits.detach(), loss.detach());
        });

    /// <summary>
    /// The mean of <paramref name="samples"/> calls of <paramref name="pass"/> (one forward/backward pass each, e.g. a
    /// gradient with its logits and loss): EOT for every gradient attack. One call when samples is 1. Each pass runs
    /// in its own dispose scope, so only the running sums stay alive.
    /// </summary>
    public static (Tensor Grad, Tensor Logits, Tensor Loss) Expected(int samples, Func<(Tensor Grad, Tensor Logits, Tensor Loss)> pass)
    {
        if (samples < 1) throw new ParameterException("EotSamples", $"must be ≥ 1, got {samples}");
        if (samples == 1) return pass();
        Tensor? g = null, l = null, f = null;
        for (int i = 0; i < samples; i++)
        {
            using var scope = NewDisposeScope();
            var (gi, li, fi) = pass();
            using var _ = no_grad();
            if (g is null) (g, l, f) = (gi.detach().clone().MoveToOuterDisposeScope(), li.detach().clone().MoveToOuterDisposeScope(), fi.detach().clone().MoveToOuterDisposeScope());
            else { g.add_(gi); l!.add_(li); f!.add_(fi); }
        }
        using (no_grad()) { g!.div_(Keep(samples)); l!.div_(Keep(samples)); f!.div_(Keep(samples)); }
        return (g!, l!, f!);
    }

    /// <summary>Validates an attack's EOT sample count (the record property <c>EotSamples</c>).</summary>
    public static void CheckEot(int samples)
    {
        if (samples < 1) throw new ParameterException("EotSamples", $"must be ≥ 1, got {samples}");
    }

    /// <summary>x + δ clipped back into the ε-ball and the box.</summary>
    public static Tensor ProjectAndClamp(IPerturbationGeometry geometry, Tensor clean, Tensor candidate, double eps, Bounds bounds) =>
        (clean + geometry.Project(candidate - clean, eps)).clamp(Keep(bounds.Lower), Keep(bounds.Upper));

    /// <summary>Logits of the model without building a graph.</summary>
    public static Tensor CleanLogits(IClassifier model, Tensor x)
    {
        using var _ = no_grad();
        return model.Logits(x).detach();
    }

    /// <summary>Row indices (int64, on the same device) where <paramref name="mask"/> is true. Synchronises with the host.</summary>
    public static Tensor Indices(Tensor mask) => mask.nonzero().reshape(-1);
}
