using Google.Protobuf;
using Onnx;

namespace Robustness.Models.Tests.Byom;

/// <summary>Builds ONNX models in code (the generated protobuf classes): single-operator graphs for the operator
/// tests and deliberately broken files for the hostile-input tests.</summary>
internal sealed class OnnxBuilder
{
    public ModelProto Model { get; }
    public GraphProto Graph => Model.Graph;

    public OnnxBuilder(long?[] inputDims, int opset = 13, string input = "x")
    {
        Model = new ModelProto { IrVersion = 8, ProducerName = "robustness-tests", Graph = new GraphProto { Name = "test" } };
        Model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        Graph.Input.Add(ValueInfo(input, inputDims));
    }

    public static ValueInfoProto ValueInfo(string name, long?[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(d is { } v ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension { DimParam = "batch" });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } } };
    }

    public static TensorProto Floats(string name, long[] dims, float[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        t.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        return t;
    }

    public static TensorProto Ints(string name, long[] dims, long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.AddRange(dims);
        t.Int64Data.AddRange(values);
        return t;
    }

    public OnnxBuilder Init(TensorProto t)
    {
        Graph.Initializer.Add(t);
        return this;
    }

    public OnnxBuilder Node(string op, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = $"{op}_{Graph.Node.Count}" };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        n.Attribute.AddRange(attributes);
        Graph.Node.Add(n);
        return this;
    }

    public OnnxBuilder Output(string name)
    {
        Graph.Output.Add(new ValueInfoProto { Name = name });
        return this;
    }

    public static AttributeProto Attr(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };
    public static AttributeProto Attr(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };
    public static AttributeProto Attr(string name, string value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };
    public static AttributeProto Attr(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    public byte[] Bytes() => Model.ToByteArray();

    public string Save(string path)
    {
        File.WriteAllBytes(path, Bytes());
        return path;
    }

    /// <summary>A valid Fashion-MNIST-shaped linear classifier: Flatten → Gemm(10×784) → output.</summary>
    public static OnnxBuilder Linear(int opset = 13)
    {
        var rng = new Random(1);
        var w = Enumerable.Range(0, 10 * 784).Select(_ => (float)(rng.NextDouble() - 0.5) * 0.1f).ToArray();
        return new OnnxBuilder([null, 1, 28, 28], opset)
            .Init(Floats("w", [10, 784], w))
            .Init(Floats("b", [10], new float[10]))
            .Node("Flatten", ["x"], ["flat"], Attr("axis", 1L))
            .Node("Gemm", ["flat", "w", "b"], ["y"], Attr("transB", 1L))
            .Output("y");
    }
}
