namespace Robustness.Core;

/// <summary>Arithmetic of the attacks' gradient passes: float32, or bfloat16 on CPUs with native bf16 (AVX512-BF16, AMX).</summary>
public enum GradientPrecision
{
    Float32,
    Bf16,
}

public static class GradientPrecisions
{
    public static readonly IReadOnlyList<string> Names = ["float32", "bf16"];

    public static GradientPrecision Parse(string text, string parameter = "Precision") => text.Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => GradientPrecision.Float32,
        "bf16" or "bfloat16" => GradientPrecision.Bf16,
        _ => throw new ParameterException(parameter, $"unknown precision '{text}' (valid: {string.Join(", ", Names)})"),
    };

    public static string Name(this GradientPrecision p) => p == GradientPrecision.Bf16 ? "bf16" : "float32";
}

/// <summary>
/// Makes reduced-precision gradient views of a model (<see cref="IReducedPrecisionClassifier"/>). The trainer and
/// the evaluator reach them through this interface; Robustness.Models implements it for its zoo architectures.
/// </summary>
public interface IReducedPrecisionViews
{
    /// <summary>A view of <paramref name="model"/> whose gradient passes run in <paramref name="precision"/>
    /// (not <see cref="GradientPrecision.Float32"/>); throws <see cref="ParameterException"/> when the model cannot have one.</summary>
    IReducedPrecisionClassifier Create(IGradientClassifier model, GradientPrecision precision);
}

/// <summary>
/// A reduced-precision view that can also carry the training step (mixed precision, the manual equivalent of autocast):
/// the loss's backward pass through the view leaves the weight gradients on the view's own parameters, and
/// <see cref="Float32Gradients"/> hands them back in float32 for the optimizer to apply to the float32 weights.
/// </summary>
public interface IMixedPrecisionStep
{
    /// <summary>The module whose parameters receive the gradients (same parameter names as the float32 model).</summary>
    TorchSharp.torch.nn.Module GradientModule { get; }
    /// <summary>Clears the view's parameter gradients before a backward pass.</summary>
    void ZeroGradients();
    /// <summary>The view's parameter gradients as float32 tensors in the caller's dispose scope, keyed by parameter
    /// name; parameters without a gradient are left out.</summary>
    IReadOnlyDictionary<string, TorchSharp.torch.Tensor> Float32Gradients();
}

/// <summary>Saves a trained model (best/last files) with provenance metadata; Robustness.Models writes its model files.</summary>
public interface IModelWriter
{
    void Save(IGradientClassifier model, string path, IReadOnlyDictionary<string, string> metadata);
    /// <summary>The files' extension, e.g. ".safetensors" (the trainer names its files best/last plus this).</summary>
    string FileExtension => ".safetensors";
}
