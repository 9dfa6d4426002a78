using Robustness.Core;
using Google.Protobuf;
using Onnx;
using static TorchSharp.torch;

namespace Robustness.Models.Tests.Byom;

/// <summary>Hostile and broken ONNX files: each is one <see cref="ModelFormatException"/> line naming the file,
/// raised before anything is built from it.</summary>
public sealed class HostileOnnxTests : IDisposable
{
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "robustness-hostile-onnx", Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string PathOf(string name) => Path.Combine(_dir, name);

    private string Refused(string path, params string[] fragments)
    {
        var e = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(path, CPU));
        Assert.DoesNotContain('\n', e.Message);
        Assert.StartsWith(path, e.Message);
        foreach (var f in fragments) Assert.Contains(f, e.Message);
        return e.Message;
    }

    [Fact]
    public void The_valid_base_model_loads()
    {
        using var model = ModelLoader.Load(OnnxBuilder.Linear().Save(PathOf("ok.onnx")), CPU);
        Assert.Equal(10, model.Classifier.Spec.NumClasses);
        Assert.Equal([1, 28, 28], model.Classifier.Spec.InputShape);
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.9)]
    [InlineData(0.999)]
    public void Truncated_protobuf(double keep)
    {
        var bytes = OnnxBuilder.Linear().Bytes();
        var path = PathOf("truncated.onnx");
        File.WriteAllBytes(path, bytes[..(int)(bytes.Length * keep)]);
        Refused(path);
    }

    [Fact]
    public void Not_protobuf_at_all() => Refused(WriteText("text.onnx", "<html>not a model</html>"), "ONNX");

    [Fact]
    public void Graph_with_a_cycle()
    {
        var b = new OnnxBuilder([null, 4]).Init(OnnxBuilder.Floats("c", [4], new float[4]))
            .Node("Add", ["x", "loop"], ["a"]).Node("Relu", ["a"], ["loop"]).Node("Add", ["loop", "c"], ["y"]).Output("y");
        Refused(b.Save(PathOf("cycle.onnx")), "cycle");
    }

    [Fact]
    public void Initializer_whose_size_does_not_match_its_shape()
    {
        var b = OnnxBuilder.Linear();
        b.Graph.Initializer[0].RawData = ByteString.CopyFrom(new byte[12]);
        Refused(b.Save(PathOf("size.onnx")), "initializer 'w'", "[10,784]");
    }

    [Fact]
    public void Typed_field_count_that_does_not_match_its_shape()
    {
        var b = OnnxBuilder.Linear();
        var t = new TensorProto { Name = "b", DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.Add(10);
        t.FloatData.AddRange([1f, 2f, 3f]);
        b.Graph.Initializer[1] = t;
        Refused(b.Save(PathOf("count.onnx")), "initializer 'b'", "stores 3");
    }

    [Fact]
    public void Absurd_initializer_dimensions()
    {
        var b = OnnxBuilder.Linear();
        b.Graph.Initializer[0].Dims.Clear();
        b.Graph.Initializer[0].Dims.AddRange([1L << 20, 1L << 20]); // 2^40 elements
        Refused(b.Save(PathOf("absurd.onnx")), "initializer 'w'", "elements");
    }

    [Fact]
    public void Absurd_input_dimensions()
    {
        var b = OnnxBuilder.Linear();
        b.Graph.Input[0] = OnnxBuilder.ValueInfo("x", [null, 1, 1L << 20, 1L << 20]);
        Assert.Throws<Core.ParameterException>(() => ModelLoader.Load(b.Save(PathOf("absurd-input.onnx")), CPU));
    }

    [Fact]
    public void Unknown_data_type()
    {
        var b = OnnxBuilder.Linear();
        b.Graph.Initializer[1].DataType = 99;
        Refused(b.Save(PathOf("dtype.onnx")), "initializer 'b'", "data type 99");
    }

    [Theory]
    [InlineData("../outside.bin")]
    [InlineData("sub/../../outside.bin")]
    [InlineData("/etc/passwd")]
    public void External_data_outside_the_model_folder_is_refused_before_any_file_is_opened(string location)
    {
        // The target does not exist: the message must be the refusal, not "does not exist" (nothing was opened).
        var msg = Refused(ExternalModel("external.onnx", location), "initializer 'w'", "inside the model's folder");
        Assert.DoesNotContain("does not exist", msg);
    }

    [Fact]
    public void External_data_through_a_symbolic_link_that_leaves_the_folder()
    {
        var outside = Path.Combine(Path.GetTempPath(), $"robustness-outside-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(outside, new byte[10 * 784 * 4]);
        try
        {
            File.CreateSymbolicLink(PathOf("weights.bin"), outside);
            Refused(ExternalModel("link.onnx", "weights.bin"), "symbolic link");
        }
        finally { File.Delete(outside); }
    }

    [Fact]
    public void External_data_inside_the_folder_loads()
    {
        var rng = new Random(2);
        var w = Enumerable.Range(0, 10 * 784).Select(_ => (float)rng.NextDouble()).ToArray();
        Directory.CreateDirectory(PathOf("data"));
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(w.AsSpan()).ToArray();
        File.WriteAllBytes(PathOf("data/w.bin"), [.. new byte[16], .. bytes]);
        var path = ExternalModel("inside.onnx", "data/w.bin", offset: 16);
        using var model = ModelLoader.Load(path, CPU);
        var loaded = model.Classifier.Network.parameters().Single(p => p.shape.SequenceEqual(new long[] { 10, 784 }));
        Assert.Equal(w[123], loaded.flatten()[123].item<float>());
    }

    [Fact]
    public void Unsupported_operator_names_the_operator_the_node_and_the_opset()
    {
        var b = OnnxBuilder.Linear().Node("Hardmax", ["y"], ["z"]);
        b.Graph.Output[0].Name = "z";
        Refused(b.Save(PathOf("op.onnx")), "Hardmax", "node 'Hardmax_2'", "opset 13", "not supported");
    }

    [Fact]
    public void Operator_from_another_domain()
    {
        var b = OnnxBuilder.Linear();
        b.Graph.Node[1].Domain = "com.microsoft";
        Refused(b.Save(PathOf("domain.onnx")), "com.microsoft");
    }

    [Theory]
    [InlineData(9)]
    [InlineData(18)]
    public void Opset_outside_11_to_17(int opset) => Refused(OnnxBuilder.Linear(opset).Save(PathOf($"opset{opset}.onnx")), $"opset {opset}");

    [Fact]
    public void Unknown_attribute_is_refused_not_ignored()
    {
        var b = OnnxBuilder.Linear();
        b.Graph.Node[1].Attribute.Add(OnnxBuilder.Attr("transposeEverything", 1L));
        Refused(b.Save(PathOf("attr.onnx")), "Gemm", "transposeEverything");
    }

    [Fact]
    public void A_value_read_but_never_produced()
    {
        var b = OnnxBuilder.Linear();
        b.Graph.Node[1].Input[2] = "nowhere";
        Refused(b.Save(PathOf("dangling.onnx")), "nowhere");
    }

    [Fact]
    public void Two_graph_inputs()
    {
        var b = OnnxBuilder.Linear();
        b.Graph.Input.Add(OnnxBuilder.ValueInfo("second", [null, 3]));
        Refused(b.Save(PathOf("inputs.onnx")), "2 inputs");
    }

    [Fact]
    public void Using_an_output_we_do_not_compute()
    {
        var b = new OnnxBuilder([null, 1, 4, 4])
            .Node("MaxPool", ["x"], ["y", "indices"], OnnxBuilder.Attr("kernel_shape", 2L, 2L))
            .Node("Flatten", ["indices"], ["z"]).Output("z");
        Refused(b.Save(PathOf("indices.onnx")), "MaxPool", "indices");
    }

    private string WriteText(string name, string text)
    {
        File.WriteAllText(PathOf(name), text);
        return PathOf(name);
    }

    private string ExternalModel(string name, string location, long offset = 0)
    {
        var b = OnnxBuilder.Linear();
        var w = b.Graph.Initializer[0];
        w.ClearRawData();
        w.DataLocation = TensorProto.Types.DataLocation.External;
        w.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        w.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        return b.Save(PathOf(name));
    }
}
