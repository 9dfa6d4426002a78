using Robustness.Core;
using System.Text;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Formats.Onnx;

/// <summary>
/// One node being executed: its attributes (with the defaults of its opset), its inputs, and errors that name the
/// operator, the node and the opset.
/// </summary>
internal sealed class OnnxNode
{
    private readonly Dictionary<string, AttributeProto> _attributes;

    public OnnxNode(NodeProto node, int index, OnnxFile file)
    {
        Proto = node;
        Index = index;
        File = file;
        _attributes = new Dictionary<string, AttributeProto>(StringComparer.Ordinal);
        foreach (var a in node.Attribute)
            if (!_attributes.TryAdd(a.Name, a))
                throw Error($"attribute '{a.Name}' is given twice");
        foreach (var a in node.Attribute)
            if (a.HasRefAttrName && a.RefAttrName.Length > 0)
                throw Error($"attribute '{a.Name}' refers to a function attribute, which we do not execute");
    }

    public NodeProto Proto { get; }
    public int Index { get; }
    public OnnxFile File { get; }
    public string Op => Proto.OpType;
    public int Opset => File.Opset;
    public string Name => Proto.HasName && Proto.Name.Length > 0 ? Proto.Name : $"#{Index}";

    /// <summary>The inputs of the current pass (null where an optional input is absent).</summary>
    public OnnxValue?[] Inputs { get; set; } = [];
    public Device Device { get; set; } = CPU;

    public ModelFormatException Error(string problem) =>
        new($"{File.Path}: ONNX operator {Op} (node '{Name}', opset {Opset}): {problem}");

    public bool Has(int i) => i < Inputs.Length && Inputs[i] is not null;

    public OnnxValue Input(int i) =>
        Has(i) ? Inputs[i]! : throw Error($"input {i} is required but absent");

    public Tensor T(int i) => Input(i).Tensor(Device);

    /// <summary>A float tensor input (the executor computes in float32).</summary>
    public Tensor F(int i)
    {
        var v = Input(i);
        if (!v.IsFloat) throw Error($"input {i} is {v.DType}, expected a floating-point tensor");
        return v.Tensor(Device);
    }

    public long[] HostInts(int i) => Input(i).ReadInts();

    public bool HasAttribute(string name) => _attributes.ContainsKey(name);

    public long Int(string name, long fallback) =>
        _attributes.TryGetValue(name, out var a) ? Expect(a, AttributeProto.Types.AttributeType.Int).I : fallback;

    public long Int(string name) => _attributes.TryGetValue(name, out var a)
        ? Expect(a, AttributeProto.Types.AttributeType.Int).I : throw Error($"attribute '{name}' is required");

    public float Float(string name, float fallback) =>
        _attributes.TryGetValue(name, out var a) ? Expect(a, AttributeProto.Types.AttributeType.Float).F : fallback;

    public long[]? Ints(string name) =>
        _attributes.TryGetValue(name, out var a) ? Expect(a, AttributeProto.Types.AttributeType.Ints).Ints.ToArray() : null;

    public float[]? Floats(string name) =>
        _attributes.TryGetValue(name, out var a) ? Expect(a, AttributeProto.Types.AttributeType.Floats).Floats.ToArray() : null;

    public string? String(string name) =>
        _attributes.TryGetValue(name, out var a) ? Encoding.UTF8.GetString(Expect(a, AttributeProto.Types.AttributeType.String).S.Span) : null;

    public TensorProto? TensorAttribute(string name) =>
        _attributes.TryGetValue(name, out var a) ? Expect(a, AttributeProto.Types.AttributeType.Tensor).T : null;

    public IEnumerable<string> AttributeNames => _attributes.Keys;

    /// <summary>Refuses attributes the operator does not define (a typo or a newer spec would otherwise be ignored).</summary>
    public void AllowOnly(params string[] names)
    {
        foreach (var a in _attributes.Keys)
            if (Array.IndexOf(names, a) < 0)
                throw Error($"attribute '{a}' is not one we implement for this operator ({(names.Length == 0 ? "none" : string.Join(", ", names))})");
    }

    /// <summary>Normalises a possibly negative axis for a tensor of rank <paramref name="rank"/>.</summary>
    public long Axis(long axis, long rank)
    {
        var a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank) throw Error($"axis {axis} is out of range for a rank-{rank} input");
        return a;
    }

    private AttributeProto Expect(AttributeProto a, AttributeProto.Types.AttributeType type)
    {
        // Old writers leave type unset; accept when the matching field is present.
        if (a.HasType && a.Type != type)
            throw Error($"attribute '{a.Name}' is {a.Type}, expected {type}");
        return a;
    }
}
