using System.Text.Json;
using Robustness.Core;
using Robustness.Models.Formats.TorchScript;

namespace Robustness.Models;

/// <summary>
/// Writes a fine-tuned TorchScript model back as a TorchScript archive (<c>torch.jit.save</c> format, loadable by
/// <c>torch.jit.load</c> in PyTorch and by <see cref="ModelLoader"/>) with the current weights, and its training
/// provenance next to it as <c>&lt;file&gt;.json</c> (TorchScript archives carry no metadata we can write). Both atomically.
/// </summary>
public sealed class TorchScriptModelWriter : IModelWriter
{
    public static TorchScriptModelWriter Instance { get; } = new();

    public string FileExtension => ".pt";

    public void Save(IGradientClassifier model, string path, IReadOnlyDictionary<string, string> metadata)
    {
        if (model is not TorchClassifier { Network: TorchScriptNetwork network })
            throw new ArgumentException("only TorchScript classifiers (ModelLoader on a torch.jit.save archive) are written as TorchScript archives", nameof(model));
        network.Save(path);
        var sidecar = new SortedDictionary<string, string>(metadata.ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal);
        foreach (var (k, v) in ModelMetadata.FromSpec(model.Spec)) sidecar.TryAdd(k, v);
        sidecar["format"] = "robustness-torchscript-provenance/1";
        AtomicFile.WriteAllText(path + ".json", JsonSerializer.Serialize(sidecar, new JsonSerializerOptions { WriteIndented = true }));
    }
}
