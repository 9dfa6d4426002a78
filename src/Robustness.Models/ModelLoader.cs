using System.Globalization;
using Robustness.Core;
using Robustness.Models.Formats;
using Robustness.Models.Formats.Onnx;
using Robustness.Models.Formats.TorchScript;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models;

/// <summary>
/// Loads any model file we read as a classifier in eval mode: our .safetensors, a PyTorch state dict of a zoo
/// architecture (<see cref="ModelFile"/>), a TorchScript archive, or an ONNX graph. Models without our metadata take
/// their input contract from the file where it says it and from <see cref="InputContract"/> otherwise; the
/// description lists which values were inferred and which assumed.
/// </summary>
public static class ModelLoader
{
    public const string OnnxArch = "onnx";
    public const string TorchScriptArch = "torchscript";

    public static LoadedModel Load(string path, Device? device = null, InputContract? contract = null, string? arch = null)
    {
        device ??= CPU;
        contract ??= InputContract.None;
        if (!File.Exists(path)) throw new InputException($"{path}: file not found");
        if (OnnxFile.LooksLikeOnnx(path)) return LoadOnnx(path, device, contract, arch);
        bool zip, torchScript;
        try
        {
            using var stream = File.OpenRead(path);
            Span<byte> head = stackalloc byte[2];
            zip = stream.ReadAtLeast(head, 2, throwOnEndOfStream: false) == 2 && head[0] == (byte)'P' && head[1] == (byte)'K';
            torchScript = zip && TorchScriptNetwork.IsArchive(stream);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new InputException($"{path}: cannot read ({e.Message})"); }
        if (torchScript) return LoadTorchScript(path, device, contract, arch);

        if (contract.IsGiven)
        {
            var field = contract.InputShape is not null ? nameof(InputContract.InputShape) : contract.Bounds is not null ? nameof(InputContract.Bounds)
                : contract.Mean is not null ? nameof(InputContract.Mean) : contract.Std is not null ? nameof(InputContract.Std) : nameof(InputContract.Labels);
            throw new ParameterException(field, $"is for ONNX and TorchScript models; {path} carries its input contract in its metadata or its zoo architecture");
        }
        var classifier = ModelFile.Load(path, device, arch);
        var spec = classifier.Spec;
        var facts = new List<ModelFact>
        {
            new("format", zip ? "PyTorch state dict (torch.save), read by our restricted unpickler" : "safetensors", "file"),
            new("input shape", Shape(spec.InputShape), "file"),
            new("classes", spec.NumClasses.ToString(CultureInfo.InvariantCulture), "file"),
            new("bounds", spec.Bounds.ToString(), "file"),
        };
        return new LoadedModel(classifier, new ModelDescription(zip ? ModelFormat.PyTorchStateDict : ModelFormat.Safetensors, facts, []));
    }

    /// <summary>True for files without our metadata (ONNX graphs, TorchScript archives), which take an <see cref="InputContract"/>.</summary>
    public static bool NeedsContract(string path)
    {
        if (OnnxFile.LooksLikeOnnx(path)) return true;
        try
        {
            using var stream = File.OpenRead(path);
            Span<byte> head = stackalloc byte[2];
            return stream.ReadAtLeast(head, 2, throwOnEndOfStream: false) == 2 && head[0] == (byte)'P' && head[1] == (byte)'K' && TorchScriptNetwork.IsArchive(stream);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    private static LoadedModel LoadOnnx(string path, Device device, InputContract contract, string? arch)
    {
        RefuseArch(arch, "an ONNX graph");
        var built = OnnxNetwork.Load(path);
        try
        {
            var facts = new List<ModelFact>(built.Facts);
            var shape = ResolveShape(built.SampleShape?.Select(d => (int)d).ToArray(), "graph", contract, facts, path);
            built.Module.to(device);
            built.Module.eval();
            var classes = ProbeBatching(built, shape, device, facts, path);
            var spec = Spec(OnnxArch, shape, classes, contract, facts, path, new Dictionary<string, string>
            {
                ["model_format"] = "onnx",
                ["onnx_opset"] = built.Module.Plan.File.Opset.ToString(CultureInfo.InvariantCulture),
                ["onnx_final_activation_removed"] = built.Module.Plan.CutHead?.Op ?? "none",
            });
            facts.Add(new("parameters", built.Module.ParameterCount.ToString("N0", CultureInfo.InvariantCulture), "graph"));
            var classifier = Wrap(built.Module, spec, device, path);
            return new LoadedModel(classifier, new ModelDescription(ModelFormat.Onnx, facts, built.Notes));
        }
        catch
        {
            built.Module.Dispose();
            throw;
        }
    }

    /// <summary>
    /// An ONNX file as a query-only classifier run by ONNX Runtime (scores, no gradients): any operator, domain or
    /// opset ONNX Runtime runs is accepted, the file's other checks (protobuf, external data) are ours. The input
    /// contract is resolved as for <see cref="Load"/>; the class count comes from a probe batch of two.
    /// </summary>
    public static LoadedQueryModel LoadOnnxRuntime(string path, InputContract? contract = null)
    {
        contract ??= InputContract.None;
        if (!File.Exists(path)) throw new InputException($"{path}: file not found");
        if (!OnnxFile.LooksLikeOnnx(path)) throw new ParameterException("Backend", $"onnxruntime runs ONNX graphs (.onnx); {path} is not one");
        var session = Backends.OnnxRuntime.OnnxRuntimeSession.Open(path, forExecutor: false);
        try
        {
            var signature = session.Signature;
            var dims = signature.InputDims;
            if (dims.Length < 2)
                throw new ModelFormatException($"{path}: graph input '{signature.InputName}' has rank {dims.Length}; expected a batch axis and the sample's axes");
            var m = signature.File.Model;
            var facts = new List<ModelFact>
            {
                new("format", $"ONNX, opset {signature.File.Opset}, IR version {m.IrVersion}, producer {(m.HasProducerName ? m.ProducerName : "unknown")}", "file"),
                new("executed by", "ONNX Runtime (CPU), query-only: scores, no gradients (score-, decision-based and transfer attacks)", "--backend"),
                new("graph input", $"'{signature.InputName}' [{string.Join(",", dims.Select(d => d?.ToString(CultureInfo.InvariantCulture) ?? "?"))}]", "graph"),
                new("batch axis", session.FixedBatch is { } b ? $"fixed at {b} in the graph: fed in padded chunks of {b}" : "dynamic: batches run whole (in chunks of 1024)", "graph"),
            };
            var fromGraph = dims.Skip(1).All(d => d is > 0) ? dims.Skip(1).Select(d => (int)d!.Value).ToArray() : null;
            var shape = ResolveShape(fromGraph, "graph", contract, facts, path);
            var probe = session.Run(new float[2 * shape.Aggregate(1, (a, c) => a * c)], 2, shape, path);
            int classes = probe.Length / 2;
            if (probe.Length % 2 != 0 || classes < 2 || classes > 1_000_000)
                throw new ModelFormatException($"{path}: the model maps a batch of 2 to {probe.Length} scores; a classifier outputs [2, classes] with at least 2 classes");
            facts.Add(new("classes", classes.ToString(CultureInfo.InvariantCulture), "graph (probe pass)"));
            var spec = Spec(OnnxArch, shape, classes, contract, facts, path, new Dictionary<string, string>
            {
                ["model_format"] = "onnx",
                ["backend"] = "onnxruntime",
                ["onnx_opset"] = signature.File.Opset.ToString(CultureInfo.InvariantCulture),
                ["onnx_final_activation_removed"] = signature.CutHead?.Op ?? "none",
            });
            var notes = new List<string>();
            if (signature.CutHead is { } cut)
                notes.Add($"the graph ends in {cut.Op} (node '{cut.Node}'): ONNX Runtime returns the scores before it, as our executor would (predictions are unchanged)");
            return new LoadedQueryModel(new Backends.OnnxRuntime.OnnxRuntimeClassifier(session, path, spec), new ModelDescription(ModelFormat.Onnx, facts, notes));
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static LoadedModel LoadTorchScript(string path, Device device, InputContract contract, string? arch)
    {
        RefuseArch(arch, "a TorchScript archive");
        var network = TorchScriptNetwork.Load(path, device);
        try
        {
            var facts = new List<ModelFact>
            {
                new("format", "TorchScript archive (torch.jit.save); its own TorchScript code runs inside libtorch, with no Python and no pickled Python objects", "file"),
            };
            var shape = ResolveShape(null, "archive", contract, facts, path);
            var classes = Probe(network, shape, device, path);
            facts.Add(new("classes", classes.ToString(CultureInfo.InvariantCulture), "probe pass"));
            var spec = Spec(TorchScriptArch, shape, classes, contract, facts, path, new Dictionary<string, string> { ["model_format"] = "torchscript" });
            facts.Add(new("parameters", network.parameters().Sum(p => p.numel()).ToString("N0", CultureInfo.InvariantCulture), "archive"));
            var notes = new List<string>
            {
                "TorchScript records no input contract: check the input shape, bounds and normalisation above",
                "a traced archive (torch.jit.trace) replays the ops recorded when it was traced: dropout and batch-norm behave as in the mode it was traced in, whatever the mode now",
            };
            return new LoadedModel(Wrap(network, spec, device, path), new ModelDescription(ModelFormat.TorchScript, facts, notes));
        }
        catch
        {
            network.Dispose();
            throw;
        }
    }

    private static void RefuseArch(string? arch, string what)
    {
        if (arch is not null) throw new ParameterException("Arch", $"{what} carries its own architecture; an architecture name is only for state dicts");
    }

    private static int[] ResolveShape(int[]? fromFile, string fileSource, InputContract contract, List<ModelFact> facts, string path)
    {
        if (contract.InputShape is { } given)
        {
            InputContract.CheckShape(given.Select(d => (long)d).ToArray(), nameof(InputContract.InputShape));
            if (fromFile is not null && !fromFile.SequenceEqual(given))
                throw new ParameterException(nameof(InputContract.InputShape), $"{Shape(given)} was given but {path} declares {Shape(fromFile)}");
            facts.Add(new("input shape", Shape(given), fromFile is null ? "given" : $"given, same as the {fileSource}"));
            return given;
        }
        if (fromFile is not null)
        {
            facts.Add(new("input shape", Shape(fromFile), fileSource));
            return fromFile;
        }
        if (contract.FallbackInputShape is { } fallback)
        {
            facts.Add(new("input shape", Shape(fallback), $"assumed from {contract.FallbackSource}"));
            return fallback;
        }
        throw new ParameterException(nameof(InputContract.InputShape), $"{path} does not fix the per-sample input shape; give it, e.g. 3,32,32");
    }

    /// <summary>Runs a batch of two through the graph; a graph that fixes its batch size gets chunked feeding
    /// unless it computes the same on other batch sizes.</summary>
    private static int ProbeBatching(OnnxNetwork.Built built, int[] shape, Device device, List<ModelFact> facts, string path)
    {
        var module = built.Module;
        if (built.FixedBatch is not { } b || b == 2)
        {
            facts.Add(new("batch axis", built.FixedBatch is null ? "dynamic" : "fixed at 2 in the graph: fed in chunks of 2", "graph"));
            module.FixedBatch = built.FixedBatch;
            var k = Probe(module, shape, device, path);
            facts.Add(new("classes", k.ToString(CultureInfo.InvariantCulture), "graph (probe pass)"));
            return k;
        }
        module.FixedBatch = b;
        int classes = Probe(module, shape, device, path);
        bool anyBatch;
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            var x = ProbeInput(shape, device);
            var chunked = module.call(x);
            module.FixedBatch = null;
            try
            {
                var whole = module.call(x);
                var scale = Math.Max(1e-6, chunked.abs().max().item<float>());
                anyBatch = whole.shape.SequenceEqual(chunked.shape) && (whole - chunked).abs().max().item<float>() <= 1e-5 * scale;
            }
            catch (InputException) { anyBatch = false; }
        }
        module.FixedBatch = anyBatch ? null : b;
        facts.Add(new("batch axis", anyBatch
            ? $"fixed at {b} in the graph, but it computes the same on other batch sizes (checked): batches run whole"
            : $"fixed at {b} in the graph: fed in chunks of {b} (re-export with a dynamic batch axis for speed)", "graph"));
        facts.Add(new("classes", classes.ToString(CultureInfo.InvariantCulture), "graph (probe pass)"));
        return classes;
    }

    private static Tensor ProbeInput(int[] shape, Device device)
    {
        var generator = new Generator(12345, device);
        return rand([2, .. shape.Select(d => (long)d)], generator: generator, device: device);
    }

    /// <summary>One forward pass on a batch of two: the output must be [2, K] float scores with K ≥ 2.</summary>
    private static int Probe(nn.Module<Tensor, Tensor> network, int[] shape, Device device, string path)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor y;
        try { y = network.call(ProbeInput(shape, device)); }
        catch (InputException) { throw; }
        catch (Exception e) when (e is System.Runtime.InteropServices.ExternalException or InvalidCastException or InvalidOperationException or ArgumentException)
        {
            throw new ModelFormatException($"{path}: the model fails on a batch of shape [2,{string.Join(",", shape)}] ({TorchScriptNetwork.FirstLine(e.Message)})");
        }
        if (y.dim() != 2 || y.shape[0] != 2 || !y.is_floating_point())
            throw new ModelFormatException($"{path}: the model maps a batch of 2 to {y.dtype} of shape [{string.Join(",", y.shape)}]; a classifier outputs scores of shape [2, classes]");
        if (y.shape[1] < 2 || y.shape[1] > 1_000_000)
            throw new ModelFormatException($"{path}: the model outputs {y.shape[1]} scores per sample; a classifier needs at least 2 classes");
        return (int)y.shape[1];
    }

    private static ModelSpec Spec(string arch, int[] shape, int classes, InputContract contract, List<ModelFact> facts, string path, Dictionary<string, string> extra)
    {
        var labels = contract.Labels ?? [];
        if (labels.Count != 0 && labels.Count != classes)
            throw new ParameterException(nameof(InputContract.Labels), $"{labels.Count} class names for a model with {classes} outputs");
        facts.Add(new("labels", labels.Count == 0 ? "none (class indices)" : string.Join(", ", labels.Take(10)) + (labels.Count > 10 ? ", …" : ""), labels.Count == 0 ? "assumed" : "given"));
        var bounds = contract.Bounds ?? Bounds.Unit;
        facts.Add(new("bounds", bounds.ToString(), contract.Bounds is null ? "assumed (default)" : "given"));
        if (contract.Mean is null != contract.Std is null)
            throw new ParameterException(contract.Mean is null ? nameof(InputContract.Mean) : nameof(InputContract.Std), "mean and std go together");
        if (contract.Mean is { } mean && contract.Std is { } std)
        {
            int channels = shape.Length >= 2 ? shape[0] : 1;
            if (mean.Length != std.Length || (mean.Length != 1 && mean.Length != channels))
                throw new ParameterException(nameof(InputContract.Mean), $"{mean.Length} means and {std.Length} stds for {channels} channels (give one value or one per channel)");
            if (std.Any(s => !(s > 0))) throw new ParameterException(nameof(InputContract.Std), "every std must be > 0");
            facts.Add(new("normalisation", $"inside the classifier: (x − [{string.Join(", ", mean)}]) / [{string.Join(", ", std)}]; ε stays in pixel units", "given"));
        }
        else facts.Add(new("normalisation", "none: the model receives pixels in the bounds", "assumed"));
        return new ModelSpec
        {
            Arch = arch,
            InputShape = shape,
            NumClasses = classes,
            Labels = labels,
            Bounds = bounds,
            Mean = contract.Mean,
            Std = contract.Std,
            Extra = extra,
        };
    }

    private static TorchClassifier Wrap(nn.Module<Tensor, Tensor> network, ModelSpec spec, Device device, string path)
    {
        ModelFile.CheckFinite(network, path);
        var classifier = ModelZoo.Wrap(network, spec, device);
        classifier.Module.eval();
        return classifier;
    }

    private static string Shape(int[] shape) => string.Join("×", shape);
}
