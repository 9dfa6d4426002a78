using Robustness.Core;
using Robustness.Core.Graphs;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Certification;

/// <summary>Per-sample outcome of a verification batch: Verified bool [N] and the smallest margin lower bound float64 [N].</summary>
public sealed class VerificationResult(Tensor verified, Tensor margin) : IDisposable
{
    /// <summary>True where every margin lower bound z_y − z_j (j ≠ y) is positive: no input in the ball changes the prediction.</summary>
    public Tensor Verified { get; } = verified;
    /// <summary>min_{j≠y} of the margin lower bounds (positive = verified); −∞.. for hopeless points.</summary>
    public Tensor WorstMargin { get; } = margin;

    public void MoveToOuterDisposeScope()
    {
        Verified.MoveToOuterDisposeScope();
        WorstMargin.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Verified.Dispose();
        WorstMargin.Dispose();
    }
}

/// <summary>Which bounds a verifier computes.</summary>
public enum BoundMethod
{
    /// <summary>Interval bound propagation (Gowal et al. 2018).</summary>
    Ibp,
    /// <summary>The better, per margin, of IBP and CROWN-IBP (Zhang et al. 2020); IBP alone where CROWN has no relaxation.</summary>
    CrownIbp,
}

public static class BoundMethods
{
    public static string Name(this BoundMethod m) => m == BoundMethod.CrownIbp ? "crown-ibp" : "ibp";
}

/// <summary>
/// Verification by interval bound propagation at L∞ radius ε: a point is verified when the lower bound of z_y − z_j
/// is positive for every j ≠ y over the whole ball (intersected with the input bounds). The propagation runs in float64
/// and widens every layer for the rounding of the float32 network (<see cref="FloatingPointSlack.Float32Network"/>), so
/// a verified point is robust for the classifier as it actually computes, not only for its exact-arithmetic idealisation.
/// </summary>
public sealed record IntervalVerifier(double Epsilon)
{
    public Norm Norm => Norm.Linf;
    public IntervalBoundPropagation Propagation { get; init; } = new() { Slack = FloatingPointSlack.Float32Network };
    /// <summary>Arithmetic of the bounds (float64 by default; float32 with slack is sound too but looser).</summary>
    public ScalarType Arithmetic { get; init; } = ScalarType.Float64;
    public BoundMethod Method { get; init; } = BoundMethod.Ibp;

    public string Name => Method.Name();

    public IReadOnlyDictionary<string, object> Parameters => new Dictionary<string, object>
    {
        ["method"] = Name, ["norm"] = Norm.Name(), ["eps"] = Epsilon, ["arithmetic"] = Arithmetic.ToString().ToLowerInvariant(),
        ["rounding_slack"] = Propagation.Slack.IsNone ? "none" : $"{Propagation.Slack.SafetyFactor}·γ(n+1), u = 2^-24 (float32 network)",
        ["last_layer_folded"] = true,
        ["bounds"] = Method == BoundMethod.CrownIbp ? "max(IBP, CROWN-IBP) per margin" : "IBP",
    };

    public void Validate()
    {
        if (!(Epsilon >= 0) || double.IsInfinity(Epsilon)) throw new ParameterException(nameof(Epsilon), $"must be a finite number ≥ 0, got {Epsilon}");
    }

    /// <summary>Verifies a batch (inputs [N, ...] in the model's bounds, labels [N]); results on the inputs' device.</summary>
    public VerificationResult Verify(IClassifier model, Tensor inputs, Tensor labels) =>
        Verify(NetworkDescriptions.Of(model), model.Spec.Bounds, inputs, labels);

    public VerificationResult Verify(NetworkGraph graph, Bounds bounds, Tensor inputs, Tensor labels)
    {
        Validate();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var x = inputs.detach().to(Arithmetic);
        using var box = Interval.LinfBall(x, Epsilon, bounds);
        var margins = Propagation.MarginLowerBounds(graph, box, labels);
        if (Method == BoundMethod.CrownIbp && new CrownIbp { Slack = Propagation.Slack }.MarginLowerBounds(graph, box, labels) is { } crown)
            margins = margins.maximum(crown); // both are sound lower bounds, so is their maximum
        var classes = labels.to(ScalarType.Int64).unsqueeze(1);
        // The label's own entry is 0 by construction; take the minimum over the others.
        var others = margins.scatter(1, classes, full_like(classes, Keep(double.PositiveInfinity), dtype: margins.dtype));
        var worst = others.amin([1L]).to(ScalarType.Float64);
        var result = new VerificationResult(worst.gt(Keep(0)), worst);
        result.MoveToOuterDisposeScope();
        return result;
    }
}
