using Robustness.Core.Formats;
using System.Globalization;
using System.Security.Cryptography;
using Robustness.Core;
using Robustness.Models.Formats;
using Robustness.Models.Zoo;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models;

/// <summary>
/// Model files: one <c>.safetensors</c> with the network's PyTorch state-dict tensors and the spec as string
/// metadata (see <see cref="ModelMetadata"/>), or a PyTorch <c>torch.save</c> state dict of a zoo architecture.
/// </summary>
public static class ModelFile
{
    /// <summary>Networks up to this size are built before comparing with the file, so mismatches are listed in detail.</summary>
    private const long MaxUncheckedParameters = 50_000_000;

    /// <summary>Writes the network's tensors and the spec atomically; <paramref name="extraMetadata"/> is added (spec fields win).</summary>
    public static void Save(TorchClassifier classifier, string path, IReadOnlyDictionary<string, string>? extraMetadata = null)
    {
        var spec = WithArchitectureDetails(classifier);
        var metadata = ModelMetadata.FromSpec(spec, extraMetadata);
        SafeTensors.Write(path, classifier.Network.state_dict(), metadata);
    }

    /// <summary>
    /// Loads a model file: <c>.safetensors</c> (architecture from its metadata, else from <paramref name="arch"/>)
    /// or a PyTorch zip checkpoint (<c>.pt</c>/<c>.pth</c>, needs <paramref name="arch"/>). The returned classifier
    /// is in eval mode. Names and shapes must match the architecture exactly; every mismatch is reported.
    /// </summary>
    public static TorchClassifier Load(string path, Device? device = null, string? arch = null)
    {
        if (!File.Exists(path)) throw new InputException($"{path}: file not found");
        FileStream stream;
        try { stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new InputException($"{path}: cannot read ({e.Message})"); }
        using (stream) return Load(stream, path, device, arch);
    }

    /// <summary>Loads from a seekable stream holding a model file; <paramref name="path"/> names it in messages.</summary>
    public static TorchClassifier Load(Stream stream, string path, Device? device = null, string? arch = null)
    {
        var requestedArch = arch is null ? null : ModelZoo.Canonical(arch);
        using var stateDict = IsZip(stream) ? PyTorchCheckpoint.Read(stream, path) : SafeTensors.Read(stream, path);

        ModelSpec spec;
        if (stateDict.Metadata.ContainsKey(ModelMetadata.Arch))
        {
            spec = ModelMetadata.ToSpec(stateDict.Metadata, path);
            if (requestedArch is not null && requestedArch != spec.Arch)
                throw new InputException($"{path}: the file is a '{spec.Arch}' model but the requested architecture is '{requestedArch}'");
            if ((spec.Arch == ModelZoo.MlpName && !spec.Extra.ContainsKey(ModelMetadata.MlpHidden))
                || (ModelZoo.IsRecurrent(spec.Arch) && !spec.Extra.ContainsKey(ModelMetadata.RecurrentHidden)))
                spec = InferFromTensors(spec, stateDict, path);
        }
        else
        {
            if (requestedArch is null)
                throw new InputException($"{path}: the file does not say its architecture; name it (one of {string.Join(", ", ModelZoo.Names)})");
            spec = InferFromTensors(ModelZoo.DefaultSpec(requestedArch), stateDict, path);
        }

        ZooOptions options;
        try { options = ModelZoo.OptionsFor(spec); }
        catch (ModelFormatException e) { throw new ModelFormatException($"{path}: {e.Message}"); }
        // Metadata alone could ask for a huge network (e.g. input_shape 1,100000,100000): refuse before allocating
        // anything far beyond what the file holds. Honest mismatches stay under the floor and get the detailed report.
        long fileValues = stateDict.Entries.Sum(e => e.Value.numel());
        long wanted = ModelZoo.ParameterCount(spec.Arch, options);
        if (wanted > Math.Max(4 * fileValues, MaxUncheckedParameters))
            throw new ModelFormatException($"{path}: metadata describes a {spec.Arch} with {wanted} parameters but the file holds only {fileValues} values");
        var network = ModelZoo.Create(spec.Arch, options);
        try
        {
            CopyInto(network, stateDict, path);
            CheckFinite(network, path);
            var classifier = ModelZoo.Wrap(network, spec, device);
            classifier.Module.eval();
            return classifier;
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    /// <summary>Refuses weights with NaN or Inf: such a model reports meaningless accuracies rather than failing.</summary>
    public static void CheckFinite(nn.Module network, string path)
    {
        using var scope = NewDisposeScope();
        foreach (var (name, tensor) in network.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).Concat(network.named_buffers()))
        {
            if (!tensor.is_floating_point()) continue;
            if (!tensor.isfinite().all().item<bool>())
                throw new ModelFormatException($"{path}: tensor {name} contains NaN or Inf values");
        }
    }

    /// <summary>Writes the network's state dict as a PyTorch checkpoint: <c>model.load_state_dict(torch.load(path))</c>.</summary>
    public static void ExportPt(TorchClassifier classifier, string path) =>
        PyTorchCheckpoint.Write(path, classifier.Network.state_dict());

    /// <summary>Lower-case hex SHA-256 of a file, for provenance.</summary>
    public static string Sha256(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return Convert.ToHexStringLower(SHA256.HashData(stream));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        { throw new InputException($"{path}: file not found"); }
    }

    /// <summary>
    /// Copies tensors into the network's parameters and buffers (converting element types, e.g. F16 → F32),
    /// after checking that names and shapes match exactly. A missing <c>num_batches_tracked</c> is tolerated,
    /// as PyTorch does for checkpoints from before BatchNorm had it.
    /// </summary>
    public static void CopyInto(nn.Module network, StateDict source, string file)
    {
        var target = network.state_dict();
        var missing = target.Keys.Where(k => !source.Tensors.ContainsKey(k) && !k.EndsWith(".num_batches_tracked", StringComparison.Ordinal)).ToList();
        var unexpected = source.Names.Where(k => !target.ContainsKey(k)).ToList();
        var shapes = new List<string>();
        foreach (var (name, t) in target)
            if (source.Tensors.TryGetValue(name, out var s) && !s.shape.SequenceEqual(t.shape))
                shapes.Add($"{name} has shape {Shape(s.shape)}, expected {Shape(t.shape)}");
        var problems = new List<string>();
        if (missing.Count > 0) problems.Add("missing " + List(missing));
        if (unexpected.Count > 0) problems.Add("unexpected " + List(unexpected));
        if (shapes.Count > 0) problems.Add(List(shapes, "; "));
        if (problems.Count > 0)
            throw new ModelFormatException($"{file}: {string.Join("; ", problems)}");

        using var noGrad = no_grad();
        foreach (var (name, t) in target)
            if (source.Tensors.TryGetValue(name, out var s))
                t.copy_(s);
    }

    private static ModelSpec WithArchitectureDetails(TorchClassifier classifier)
    {
        if (classifier.Network is not Mlp mlp) return classifier.Spec;
        var extra = new Dictionary<string, string>(classifier.Spec.Extra)
        {
            [ModelMetadata.MlpHidden] = string.Join(",", mlp.Hidden.Select(h => h.ToString(CultureInfo.InvariantCulture))),
            [ModelMetadata.MlpActivation] = mlp.Activation,
        };
        return classifier.Spec with { Extra = extra };
    }

    /// <summary>
    /// Fills in what the tensors tell when the file does not: the number of classes (last layer), input channels
    /// (first conv) and, for mlp, the hidden widths and input size.
    /// </summary>
    private static ModelSpec InferFromTensors(ModelSpec spec, StateDict tensors, string file)
    {
        long[]? Shape(string key) => tensors.Tensors.TryGetValue(key, out var t) ? t.shape : null;
        switch (spec.Arch)
        {
            case ModelZoo.MlpName:
                {
                    var layers = new List<long[]>();
                    for (int i = 1; Shape($"fc{i}.weight") is { Length: 2 } w; i++) layers.Add(w);
                    if (layers.Count == 0) return spec; // the name check reports what is missing
                    long inputs = layers[0][1];
                    if (inputs > int.MaxValue || layers.Any(l => l[0] > int.MaxValue))
                        throw new ModelFormatException($"{file}: mlp layer sizes are too large");
                    var hidden = layers.Take(layers.Count - 1).Select(l => (int)l[0]).ToArray();
                    var extra = new Dictionary<string, string>(spec.Extra)
                    {
                        [ModelMetadata.MlpHidden] = string.Join(",", hidden.Select(h => h.ToString(CultureInfo.InvariantCulture))),
                    };
                    extra.TryAdd(ModelMetadata.MlpActivation, "relu");
                    var inputShape = spec.InputSize == inputs ? spec.InputShape : [(int)inputs];
                    return spec with { Extra = extra, InputShape = inputShape, NumClasses = (int)layers[^1][0] };
                }
            case ModelZoo.LstmName or ModelZoo.GruName:
                {
                    var result = spec;
                    if (Shape("fc.weight") is { Length: 2 } head && head[0] is > 0 and <= 1_000_000)
                        result = result with { NumClasses = (int)head[0] };
                    int layers = 0;
                    while (Shape($"{spec.Arch}.weight_ih_l{layers}") is { Length: 2 }) layers++;
                    if (layers == 0 || Shape($"{spec.Arch}.weight_hh_l0") is not { Length: 2 } hh || hh[1] is < 1 or > (1 << 20))
                        return result; // the name check reports what is missing
                    var extra = new Dictionary<string, string>(spec.Extra)
                    {
                        [ModelMetadata.RecurrentHidden] = hh[1].ToString(CultureInfo.InvariantCulture),
                        [ModelMetadata.RecurrentLayers] = layers.ToString(CultureInfo.InvariantCulture),
                    };
                    return result with { Extra = extra };
                }
            default:
                {
                    var last = spec.Arch switch
                    {
                        ModelZoo.LeNet5Name => "fc3.weight",
                        ModelZoo.PreActResNet18Name or ModelZoo.ResNetSmallName => "linear.weight",
                        ModelZoo.LogisticName => "fc.weight",
                        _ => "fc2.weight",
                    };
                    var result = spec;
                    if (Shape(last) is { Length: 2 } w && w[0] is > 0 and <= 1_000_000)
                        result = result with { NumClasses = (int)w[0] };
                    if (Shape("conv1.weight") is { Length: 4 } c && c[1] is > 0 and <= 1024 && c[1] != spec.InputShape[0])
                        result = result with { InputShape = [(int)c[1], .. spec.InputShape[1..]] };
                    return result;
                }
        }
    }

    private static bool IsZip(Stream stream)
    {
        Span<byte> head = stackalloc byte[2];
        stream.Position = 0;
        bool zip = stream.ReadAtLeast(head, 2, throwOnEndOfStream: false) == 2 && head[0] == (byte)'P' && head[1] == (byte)'K';
        stream.Position = 0;
        return zip;
    }

    private static string Shape(long[] shape) => "[" + string.Join(",", shape) + "]";

    private static string List(List<string> items, string separator = ", ")
    {
        const int shown = 12;
        var text = string.Join(separator, items.Take(shown));
        return items.Count > shown ? $"{text}{separator}… ({items.Count - shown} more)" : text;
    }
}
