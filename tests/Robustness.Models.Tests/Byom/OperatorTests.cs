using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using Robustness.Models.Formats.Onnx;
using TorchSharp;
using static Robustness.Models.Tests.Byom.OnnxBuilder;
using static TorchSharp.torch;

namespace Robustness.Models.Tests.Byom;

/// <summary>
/// Operators one at a time, in the attribute and opset forms the spec allows, each executed by our graph module and
/// by ONNX Runtime on the same random input; values must agree to float32 rounding.
/// </summary>
public sealed class OperatorTests
{
    private static readonly Random Rng = new(11);

    private static float[] Random(long count, float scale = 1f) => Enumerable.Range(0, (int)count).Select(_ => (float)(Rng.NextDouble() * 2 - 1) * scale).ToArray();

    /// <summary>Runs the graph (input "x" of <paramref name="shape"/>, output "y") both ways and compares.</summary>
    private static void Agrees(OnnxBuilder b, long[] shape, string output = "y")
    {
        if (b.Graph.Output.Count == 0) b.Output(output);
        var bytes = b.Bytes();
        var path = Path.Combine(Path.GetTempPath(), $"robustness-op-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, bytes);
        try
        {
            using var scope = NewDisposeScope();
            var file = OnnxFile.Parse(bytes, path);
            using var module = new OnnxGraphModule(OnnxGraph.Plan(file));
            var data = Random(shape.Aggregate(1L, (a, c) => a * c), 2f);
            var x = tensor(data, shape);
            Tensor ours;
            using (no_grad()) ours = module.call(x);
            using var session = new InferenceSession(bytes);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor("x", new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>(data, shape.Select(d => (int)d).ToArray()))]);
            var reference = results.First().AsTensor<float>();
            Assert.Equal(reference.Dimensions.ToArray().Select(d => (long)d), ours.shape);
            var theirs = tensor(reference.ToArray(), ours.shape);
            double diff = (ours - theirs).abs().max().item<float>();
            double scale = Math.Max(1.0, theirs.abs().max().item<float>());
            Assert.True(diff <= 1e-5 * scale, $"{b.Graph.Node[^1].OpType}: differs from ONNX Runtime by {diff}");
        }
        finally { File.Delete(path); }
    }

    private static OnnxBuilder Single(long[] shape, string op, string[] inputs, int opset = 13, params AttributeProto[] attributes) =>
        new OnnxBuilder(shape.Select(d => (long?)d).ToArray(), opset).Node(op, inputs, ["y"], attributes);

    [Theory]
    [InlineData("NOTSET", 1, 1, 1, 1)]
    [InlineData("NOTSET", 0, 1, 2, 0)]   // asymmetric pads
    [InlineData("SAME_UPPER", 0, 0, 0, 0)]
    [InlineData("SAME_LOWER", 0, 0, 0, 0)]
    [InlineData("VALID", 0, 0, 0, 0)]
    public void Conv_padding_forms(string autoPad, long t, long l, long b, long r)
    {
        // ONNX Runtime has no dilation with SAME padding.
        var g = Single([2, 4, 9, 8], "Conv", ["x", "w", "bias"], 13, Attr("auto_pad", autoPad), Attr("strides", 2L, 1L), Attr("dilations", 1L, autoPad.StartsWith("SAME") ? 1L : 2L));
        if (autoPad == "NOTSET") g.Graph.Node[0].Attribute.Add(Attr("pads", t, l, b, r));
        g.Init(Floats("w", [6, 2, 3, 3], Random(6 * 2 * 27 / 3))).Init(Floats("bias", [6], Random(6)));
        g.Graph.Node[0].Attribute.Add(Attr("group", 2L));
        Agrees(g, [2, 4, 9, 8]);
    }

    [Fact]
    public void Conv_1d() => Agrees(Single([2, 3, 11], "Conv", ["x", "w"], 13, Attr("pads", 1L, 2L), Attr("strides", new long[] { 2 })).Init(Floats("w", [4, 3, 3], Random(36))), [2, 3, 11]);

    [Theory]
    [InlineData(0, 0, 0, 0, 0)]
    [InlineData(1, 1, 1, 1, 0)]
    [InlineData(1, 1, 1, 1, 1)]
    [InlineData(0, 1, 1, 0, 0)]
    [InlineData(0, 0, 0, 0, 1)]
    public void MaxPool_forms(long t, long l, long b, long r, long ceil) =>
        Agrees(Single([2, 3, 9, 10], "MaxPool", ["x"], 13, Attr("kernel_shape", 3L, 3L), Attr("strides", 2L, 2L), Attr("pads", t, l, b, r), Attr("ceil_mode", ceil)), [2, 3, 9, 10]);

    [Theory]
    [InlineData(1, 1, 1, 1, 0, 0)]
    [InlineData(1, 1, 1, 1, 1, 0)]
    [InlineData(0, 1, 2, 0, 0, 0)]
    [InlineData(0, 1, 2, 0, 1, 0)]
    [InlineData(0, 0, 0, 0, 0, 1)]
    public void AveragePool_forms(long t, long l, long b, long r, long includePad, long ceil) =>
        Agrees(Single([2, 3, 9, 10], "AveragePool", ["x"], 13, Attr("kernel_shape", 3L, 3L), Attr("strides", 2L, 2L), Attr("pads", t, l, b, r),
            Attr("count_include_pad", includePad), Attr("ceil_mode", ceil)), [2, 3, 9, 10]);

    [Fact]
    public void GlobalAveragePool() => Agrees(Single([2, 3, 5, 6], "GlobalAveragePool", ["x"]), [2, 3, 5, 6]);

    [Theory]
    [InlineData(0, 0, 1f, 1f)]
    [InlineData(1, 0, 0.5f, 2f)]
    [InlineData(0, 1, 1f, 0f)]
    [InlineData(1, 1, -1f, 0.25f)]
    public void Gemm_forms(long transA, long transB, float alpha, float beta)
    {
        long[] a = transA == 1 ? [5, 3] : [3, 5];
        long[] w = transB == 1 ? [4, 5] : [5, 4];
        Agrees(Single(a, "Gemm", ["x", "w", "c"], 13, Attr("transA", transA), Attr("transB", transB), Attr("alpha", alpha), Attr("beta", beta))
            .Init(Floats("w", w, Random(20))).Init(Floats("c", [1, 4], Random(4))), a);
    }

    [Fact]
    public void MatMul_batched() => Agrees(Single([2, 3, 4], "MatMul", ["x", "w"]).Init(Floats("w", [4, 5], Random(20))), [2, 3, 4]);

    [Theory]
    [InlineData("Add")]
    [InlineData("Sub")]
    [InlineData("Mul")]
    [InlineData("Div")]
    [InlineData("PRelu")]
    public void Broadcasting_binary(string op) => Agrees(Single([2, 3, 4, 5], op, ["x", "c"]).Init(Floats("c", [3, 1, 1], Random(3).Select(v => v + 3f).ToArray())), [2, 3, 4, 5]);

    [Theory]
    [InlineData("Relu")]
    [InlineData("Sigmoid")]
    [InlineData("Tanh")]
    [InlineData("Erf")]
    [InlineData("Identity")]
    [InlineData("Abs")]
    public void Unary(string op) => Agrees(Single([2, 7], op, ["x"]), [2, 7]);

    [Fact]
    public void LeakyRelu() => Agrees(Single([2, 7], "LeakyRelu", ["x"], 13, Attr("alpha", 0.3f)), [2, 7]);

    [Fact]
    public void Sqrt_and_Pow() => Agrees(new OnnxBuilder([2, 7]).Init(Floats("two", [], [2f])).Init(Floats("half", [], [0.5f]))
        .Node("Pow", ["x", "two"], ["sq"]).Node("Sqrt", ["sq"], ["r"]).Node("Pow", ["r", "half"], ["y"]), [2, 7]);

    [Theory]
    [InlineData(11, 1)]
    [InlineData(11, 2)]
    [InlineData(13, 1)]
    [InlineData(13, -1)]
    public void Softmax_and_LogSoftmax_opset_forms(int opset, long axis)
    {
        Agrees(Single([2, 3, 4], "Softmax", ["x"], opset, Attr("axis", axis)), [2, 3, 4]);
        Agrees(Single([2, 3, 4], "LogSoftmax", ["x"], opset, Attr("axis", axis)), [2, 3, 4]);
    }

    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, false)]
    public void Clip_with_optional_bounds(bool min, bool max)
    {
        var g = new OnnxBuilder([2, 7], 13).Init(Floats("lo", [], [-0.5f])).Init(Floats("hi", [], [0.7f]))
            .Node("Clip", min ? (max ? ["x", "lo", "hi"] : ["x", "lo"]) : ["x", "", "hi"], ["y"]);
        Agrees(g, [2, 7]);
    }

    [Fact]
    public void Dropout_in_inference_is_the_identity() =>
        Agrees(new OnnxBuilder([2, 7], 13).Init(Floats("ratio", [], [0.5f])).Node("Dropout", ["x", "ratio"], ["y"]), [2, 7]);

    [Fact]
    public void BatchNormalization() => Agrees(Single([2, 3, 4, 4], "BatchNormalization", ["x", "s", "b", "m", "v"], 13, Attr("epsilon", 1e-3f))
        .Init(Floats("s", [3], Random(3))).Init(Floats("b", [3], Random(3))).Init(Floats("m", [3], Random(3))).Init(Floats("v", [3], [0.5f, 1f, 2f])), [2, 3, 4, 4]);

    [Theory]
    [InlineData(-1)]
    [InlineData(1)]
    public void LayerNormalization(long axis)
    {
        long[] normalized = axis == -1 ? [5] : [4, 5];
        long n = normalized.Aggregate(1L, (a, b) => a * b);
        Agrees(Single([2, 4, 5], "LayerNormalization", ["x", "s", "b"], 17, Attr("axis", axis), Attr("epsilon", 1e-3f))
            .Init(Floats("s", normalized, Random(n))).Init(Floats("b", normalized, Random(n))), [2, 4, 5]);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ReduceMean(bool keep) => Agrees(Single([2, 3, 4], "ReduceMean", ["x"], 13, Attr("axes", 1L, -1L), Attr("keepdims", keep ? 1L : 0L)), [2, 3, 4]);

    [Fact]
    public void ReduceMean_over_all_axes() => Agrees(Single([2, 3, 4], "ReduceMean", ["x"], 13), [2, 3, 4]);

    [Theory]
    [InlineData("constant")]
    [InlineData("reflect")]
    [InlineData("edge")]
    public void Pad_modes(string mode) => Agrees(new OnnxBuilder([2, 3, 5, 6], 13).Init(Ints("p", [8], [0, 0, 1, 2, 0, 0, 2, 1])).Init(Floats("v", [], [0.25f]))
        .Node("Pad", mode == "constant" ? ["x", "p", "v"] : ["x", "p"], ["y"], Attr("mode", mode)), [2, 3, 5, 6]);

    [Fact]
    public void Pad_negative_crops() => Agrees(new OnnxBuilder([2, 3, 5, 6], 13).Init(Ints("p", [8], [0, 0, -1, 1, 0, 0, 1, -2]))
        .Node("Pad", ["x", "p"], ["y"]), [2, 3, 5, 6]);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(-2)]
    public void Flatten(long axis) => Agrees(Single([2, 3, 4, 5], "Flatten", ["x"], 13, Attr("axis", axis)), [2, 3, 4, 5]);

    [Theory]
    [InlineData(new long[] { 0, -1 }, 0)]
    [InlineData(new long[] { 2, 0, 5, 2 }, 0)]
    [InlineData(new long[] { -1, 6 }, 1)]
    public void Reshape_with_zero_and_minus_one(long[] target, long allowZero) => Agrees(new OnnxBuilder([2, 3, 10], 14)
        .Init(Ints("s", [target.Length], target)).Node("Reshape", ["x", "s"], ["y"], Attr("allowzero", allowZero)), [2, 3, 10]);

    [Fact]
    public void Transpose_default_and_given() =>
        Agrees(new OnnxBuilder([2, 3, 4]).Node("Transpose", ["x"], ["t"]).Node("Transpose", ["t"], ["y"], Attr("perm", 1L, 0L, 2L)), [2, 3, 4]);

    [Fact]
    public void Concat_with_a_negative_axis() => Agrees(new OnnxBuilder([2, 3, 4]).Init(Floats("c", [2, 3, 2], Random(12)))
        .Node("Concat", ["x", "c", "x"], ["y"], Attr("axis", -1L)), [2, 3, 4]);

    [Theory]
    [InlineData(11)]
    [InlineData(13)]
    public void Squeeze_and_Unsqueeze_opset_forms(int opset)
    {
        var g = new OnnxBuilder([2, 1, 4, 1], opset);
        if (opset < 13)
            g.Node("Squeeze", ["x"], ["s"], Attr("axes", 1L, -1L)).Node("Unsqueeze", ["s"], ["y"], Attr("axes", 0L, -1L));
        else
            g.Init(Ints("sa", [2], [1, -1])).Init(Ints("ua", [2], [0, -1])).Node("Squeeze", ["x", "sa"], ["s"]).Node("Unsqueeze", ["s", "ua"], ["y"]);
        Agrees(g, [2, 1, 4, 1]);
        Agrees(new OnnxBuilder([2, 1, 4, 1], opset).Node("Squeeze", ["x"], ["y"]), [2, 1, 4, 1]);
    }

    [Theory]
    [InlineData(new long[] { 1 }, new long[] { 9 }, new long[] { 2 }, new long[] { 2 })]
    [InlineData(new long[] { -1 }, new long[] { -100 }, new long[] { 2 }, new long[] { -2 })]
    [InlineData(new long[] { 0, 2 }, new long[] { long.MaxValue, -1 }, new long[] { 1, 2 }, new long[] { 1, 1 })]
    [InlineData(new long[] { 5 }, new long[] { 1 }, new long[] { 1 }, new long[] { -1 })]
    public void Slice_forms(long[] starts, long[] ends, long[] axes, long[] steps) => Agrees(new OnnxBuilder([2, 3, 8], 13)
        .Init(Ints("st", [starts.Length], starts)).Init(Ints("en", [ends.Length], ends)).Init(Ints("ax", [axes.Length], axes)).Init(Ints("sp", [steps.Length], steps))
        .Node("Slice", ["x", "st", "en", "ax", "sp"], ["y"]), [2, 3, 8]);

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    public void Gather_with_negative_indices(long axis) => Agrees(new OnnxBuilder([3, 4, 5], 13).Init(Ints("i", [2, 2], [0, -1, 1, -2]))
        .Node("Gather", ["x", "i"], ["y"], Attr("axis", axis)), [3, 4, 5]);

    [Fact]
    public void Shape_arithmetic_reshape_like_an_exporter() => Agrees(new OnnxBuilder([2, 3, 4, 5], 15)
        .Init(Ints("zero", [], [0])).Init(Ints("minus", [1], [-1]))
        .Node("Shape", ["x"], ["shape"]).Node("Gather", ["shape", "zero"], ["n"], Attr("axis", 0L))
        .Node("Unsqueeze", ["n", "zero1"], ["n1"]).Init(Ints("zero1", [1], [0]))
        .Node("Concat", ["n1", "minus"], ["target"], Attr("axis", 0L)).Node("Reshape", ["x", "target"], ["y"]), [2, 3, 4, 5]);

    [Fact]
    public void Shape_with_start_and_end() => Agrees(new OnnxBuilder([2, 3, 4, 5], 15)
        .Node("Shape", ["x"], ["s"], Attr("start", -3L), Attr("end", -2L)).Node("Cast", ["s"], ["sf"], Attr("to", 1L))
        .Node("Add", ["x", "sf"], ["y"]), [2, 3, 4, 5]);

    [Fact]
    public void Constant_forms() => Agrees(new OnnxBuilder([2, 3], 13)
        .Node("Constant", [], ["c1"], new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = Floats("", [3], [1f, 2f, 3f]) })
        .Node("Constant", [], ["c2"], Attr("value_float", 0.5f))
        .Node("Add", ["x", "c1"], ["a"]).Node("Mul", ["a", "c2"], ["y"]), [2, 3]);

    [Fact]
    public void ConstantOfShape_and_Cast() => Agrees(new OnnxBuilder([2, 3], 13).Init(Ints("s", [2], [2, 3]))
        .Node("ConstantOfShape", ["s"], ["c"], new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = Floats("", [1], [1.5f]) })
        .Node("Add", ["x", "c"], ["y"]), [2, 3]);
}
