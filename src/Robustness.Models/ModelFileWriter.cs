using Robustness.Core;

namespace Robustness.Models;

/// <summary>The Robustness model-file format (<see cref="ModelFile.Save"/>): PyTorch-keyed weights plus spec and
/// provenance metadata; what the trainer writes its best/last models with.</summary>
public sealed class ModelFileWriter : IModelWriter
{
    public static ModelFileWriter Instance { get; } = new();

    public void Save(IGradientClassifier model, string path, IReadOnlyDictionary<string, string> metadata)
    {
        if (model is not TorchClassifier classifier)
            throw new ArgumentException($"only {nameof(TorchClassifier)} models can be saved as model files", nameof(model));
        ModelFile.Save(classifier, path, metadata);
    }
}
