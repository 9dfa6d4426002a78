namespace Robustness.Models.Formats.Onnx.Operators;

/// <summary>Runs one node: reads inputs and attributes from the node, returns its outputs (in order).</summary>
internal delegate OnnxValue[] OnnxKernel(OnnxNode node);

/// <summary>An operator we execute.</summary>
/// <param name="Outputs">How many outputs it computes; a graph that uses a later one (MaxPool's Indices, Dropout's mask,
/// BatchNormalization's training statistics) is refused.</param>
/// <param name="HostCapable">Shape arithmetic: when every input has a host copy, the node runs on the CPU and its
/// integer results stay on the host.</param>
internal sealed record OnnxOperator(string Name, OnnxKernel Kernel, int Outputs = 1, bool HostCapable = false);

/// <summary>The operators of the default ONNX domain we execute (opsets 11–17), by name.</summary>
internal static class OnnxOperators
{
    private static readonly Dictionary<string, OnnxOperator> All = Build();

    public static IReadOnlyCollection<string> Names => All.Keys;

    public static bool TryGet(string name, out OnnxOperator op) => All.TryGetValue(name, out op!);

    private static Dictionary<string, OnnxOperator> Build()
    {
        var ops = new List<OnnxOperator>();
        ops.AddRange(ElementwiseOps.Operators);
        ops.AddRange(ShapeOps.Operators);
        ops.AddRange(ConvolutionOps.Operators);
        ops.AddRange(NormalizationOps.Operators);
        return ops.ToDictionary(o => o.Name, StringComparer.Ordinal);
    }
}
