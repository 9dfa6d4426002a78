using Robustness.Core;
using static TorchSharp.torch;

namespace Robustness.Models.Tests.Byom;

internal static class GradientCheck
{
    /// <summary>Input gradient of sum(logits · linspace(−1, 1, K)), the projection make_models.py differentiated.</summary>
    public static Tensor InputGradient(IGradientClassifier model, Tensor x)
    {
        using var mode = model.EvalMode();
        using var scope = NewDisposeScope();
        var leaf = x.detach().requires_grad_(true);
        var logits = model.Logits(leaf);
        var w = linspace(-1.0, 1.0, logits.shape[1]);
        var grad = autograd.grad([(logits * w).sum()], [leaf])[0];
        return grad.detach().MoveToOuterDisposeScope();
    }

    public static void AssertMatches(IGradientClassifier model, Tensor x, Tensor expected, string what)
    {
        using var scope = NewDisposeScope();
        var grad = InputGradient(model, x);
        double scale = Math.Max(1e-8, expected.abs().max().item<float>());
        double diff = (grad - expected).abs().max().item<float>();
        Assert.True(diff / scale <= 1e-4, $"{what}: input gradient differs from PyTorch's by {diff} (scale {scale})");
    }
}
