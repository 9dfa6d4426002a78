using Robustness.Core;

namespace Robustness.Models;

/// <summary>The formats <see cref="ModelLoader"/> reads.</summary>
public enum ModelFormat
{
    /// <summary>Our .safetensors with metadata (or a state dict in safetensors with an architecture).</summary>
    Safetensors,
    /// <summary>A PyTorch torch.save state dict of a zoo architecture.</summary>
    PyTorchStateDict,
    /// <summary>A torch.jit.save archive (script or trace), run by libtorch.</summary>
    TorchScript,
    /// <summary>An ONNX graph, executed with TorchSharp operations.</summary>
    Onnx,
}

/// <summary>One property of a loaded model and where its value came from ("file", "graph", "given", "assumed", ...).</summary>
public sealed record ModelFact(string Property, string Value, string Source);

/// <summary>What was loaded, what was inferred, what was assumed, and anything the user should know.</summary>
public sealed record ModelDescription(ModelFormat Format, IReadOnlyList<ModelFact> Facts, IReadOnlyList<string> Notes)
{
    public string FormatName => Format switch
    {
        ModelFormat.Safetensors => "safetensors",
        ModelFormat.PyTorchStateDict => "pytorch-state-dict",
        ModelFormat.TorchScript => "torchscript",
        _ => "onnx",
    };
}

/// <summary>A classifier and its description. Disposing it disposes the classifier.</summary>
public sealed class LoadedModel(TorchClassifier classifier, ModelDescription description) : IDisposable
{
    public TorchClassifier Classifier { get; } = classifier;
    public ModelDescription Description { get; } = description;
    public ModelFormat Format => Description.Format;

    public void Dispose() => Classifier.Dispose();
}

/// <summary>A query-only classifier (e.g. ONNX Runtime) and its description. Disposing it disposes the classifier.</summary>
public sealed class LoadedQueryModel(IQueryClassifier classifier, ModelDescription description) : IDisposable
{
    public IQueryClassifier Classifier { get; } = classifier;
    public ModelDescription Description { get; } = description;

    public void Dispose() => (Classifier as IDisposable)?.Dispose();
}
