using Robustness.Core;
using Robustness.Models;

namespace Robustness.Defenses;

/// <summary>Saves a trained model (best/last files) with its provenance metadata.</summary>
public interface IModelFileWriter
{
    void Save(IGradientClassifier model, string path, IReadOnlyDictionary<string, string> metadata);
}

/// <summary>The Robustness model-file format (<see cref="ModelFile.Save"/>): PyTorch-keyed weights plus spec and provenance metadata.</summary>
public sealed class ModelFileWriter : IModelFileWriter
{
    public void Save(IGradientClassifier model, string path, IReadOnlyDictionary<string, string> metadata)
    {
        if (model is not TorchClassifier classifier)
            throw new ArgumentException($"only {nameof(TorchClassifier)} models can be saved as model files", nameof(model));
        ModelFile.Save(classifier, path, metadata);
    }
}
