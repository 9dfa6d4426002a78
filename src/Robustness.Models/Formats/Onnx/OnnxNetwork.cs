using Robustness.Core;
using static TorchSharp.torch;

namespace Robustness.Models.Formats.Onnx;

/// <summary>Builds the TorchSharp module of an ONNX file and says what the graph told.</summary>
internal static class OnnxNetwork
{
    public sealed record Built(OnnxGraphModule Module, long[]? SampleShape, long? FixedBatch, IReadOnlyList<ModelFact> Facts, IReadOnlyList<string> Notes);

    public static Built Load(string path)
    {
        var file = OnnxFile.Read(path);
        var plan = OnnxGraph.Plan(file);
        var module = new OnnxGraphModule(plan);
        try
        {
            var dims = plan.InputDims;
            if (dims.Length < 2)
                throw new ModelFormatException($"{path}: graph input '{plan.InputName}' has rank {dims.Length}; expected a batch axis and the sample's axes");
            long[]? sample = dims.Skip(1).All(d => d is not null) ? dims.Skip(1).Select(d => d!.Value).ToArray() : null;
            if (sample is not null) InputContract.CheckShape(sample, $"{path}: graph input '{plan.InputName}'");
            var m = file.Model;
            var producer = (m.HasProducerName ? m.ProducerName : "unknown") + (m.HasProducerVersion && m.ProducerVersion.Length > 0 ? " " + m.ProducerVersion : "");
            var facts = new List<ModelFact>
            {
                new("format", $"ONNX, opset {file.Opset}, IR version {m.IrVersion}, producer {producer}", "file"),
                new("executed by", $"TorchSharp operations ({plan.Steps.Count} nodes: {string.Join(", ", plan.Steps.Select(s => s.Node.Op).Distinct().Order(StringComparer.Ordinal))}); autograd gives exact input gradients", "loader"),
                new("graph input", $"'{plan.InputName}' [{string.Join(",", dims.Select(d => d?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "?"))}]", "graph"),
            };
            var notes = new List<string>();
            if (plan.CutHead is { } cut)
                notes.Add($"the graph ends in {cut.Op} (node '{cut.Node}'): it outputs probabilities, so that node is removed and attacks use the scores before it (predictions are unchanged)");
            else if (plan.Steps.Count > 0 && plan.Steps[^1].Node.Op == "LogSoftmax" && plan.Steps[^1].Node.Proto.Output.Contains(plan.OutputName))
                notes.Add("the graph ends in LogSoftmax: log-probabilities differ from logits by one constant per sample, so predictions and cross-entropy are unchanged");
            return new Built(module, sample, dims[0], facts, notes);
        }
        catch
        {
            module.Dispose();
            throw;
        }
    }
}
