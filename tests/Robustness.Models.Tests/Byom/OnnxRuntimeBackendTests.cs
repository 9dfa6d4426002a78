using Onnx;
using Robustness.Core;
using Robustness.Models.Backends.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Tests.Byom;

/// <summary>
/// ONNX Runtime as a query-only backend (<see cref="ModelLoader.LoadOnnxRuntime"/>): the same scores as our white-box
/// executor on every fixture, graphs with operators only ONNX Runtime runs, hostile files refused the same way, and a
/// ResNet-18-sized graph against ONNX Runtime.
/// </summary>
public sealed class OnnxRuntimeBackendTests : IDisposable
{
    private const double Tolerance = 1e-4; // relative to the logit scale
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "robustness-ort-backend", Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string TinyCnnOnnx => Path.Combine(Path.GetDirectoryName(ByomFixtures.Dir)!, "blackbox", "tiny-cnn-standard.onnx");

    [Theory]
    [MemberData(nameof(ByomFixtures.OnnxFiles), MemberType = typeof(ByomFixtures))]
    public void Scores_match_our_executor(string file)
    {
        var (_, _, inputsKey) = ByomFixtures.Onnx.Single(o => o.File == file);
        var path = ByomFixtures.File(file);
        using var inputs = ByomFixtures.Inputs();
        using var ours = ModelLoader.Load(path, CPU);
        using var ort = ModelLoader.LoadOnnxRuntime(path);
        Assert.Equal(ModelAccess.Scores, ModelAccesses.Of(ort.Classifier));
        Assert.Equal(ours.Classifier.Spec.InputShape, ort.Classifier.Spec.InputShape);
        Assert.Equal(ours.Classifier.Spec.NumClasses, ort.Classifier.Spec.NumClasses);
        using var scope = NewDisposeScope();
        var x = inputs.Tensors[inputsKey];
        Tensor a, b;
        using (no_grad()) a = ours.Classifier.Logits(x);
        b = ort.Classifier.Logits(x);
        Assert.False(b.requires_grad);
        double scale = Math.Max(1e-6, b.abs().max().item<float>());
        double diff = (a - b).abs().max().item<float>();
        Assert.True(diff / scale <= Tolerance, $"{file}: ONNX Runtime backend vs our executor differ by {diff} (scale {scale})");
        Assert.Equal(a.argmax(1).data<long>().ToArray(), b.argmax(1).data<long>().ToArray());
        Assert.Equal(x.shape[0], ort.Classifier.QueriesAnswered);
    }

    [Fact]
    public void The_exported_tiny_cnn_predicts_what_the_shipped_model_predicts()
    {
        var root = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(ByomFixtures.Dir)))!;
        using var zoo = ModelLoader.Load(Path.Combine(root, "data", "models", "tiny-cnn-standard.safetensors"), CPU);
        using var ort = ModelLoader.LoadOnnxRuntime(TinyCnnOnnx);
        using var scope = NewDisposeScope();
        var x = rand([300, 1, 28, 28], generator: new Generator(4));
        using (var inputs = ByomFixtures.Inputs()) x = cat([x, inputs.Tensors["x1x28x28"]], 0);
        Tensor a;
        using (no_grad()) a = zoo.Classifier.Logits(x);
        var b = ort.Classifier.Logits(x);
        Assert.Equal(a.argmax(1).data<long>().ToArray(), b.argmax(1).data<long>().ToArray());
        Assert.True((a - b).abs().max().item<float>() <= Tolerance * a.abs().max().item<float>());
    }

    [Fact]
    public void Operators_and_opsets_only_OnnxRuntime_runs_are_refused_by_the_executor_and_run_by_the_backend()
    {
        // Linear → Elu (an operator our executor does not translate) at opset 18 (outside our 11–17).
        var builder = OnnxBuilder.Linear(opset: 18);
        builder.Graph.Output.Clear();
        builder.Node("Elu", ["y"], ["z"], OnnxBuilder.Attr("alpha", 0.5f)).Output("z");
        var path = builder.Save(Path.Combine(_dir, "elu.onnx"));
        Assert.Throws<ModelFormatException>(() => ModelLoader.Load(path, CPU));
        using var ort = ModelLoader.LoadOnnxRuntime(path);
        using var scope = NewDisposeScope();
        var x = rand([5, 1, 28, 28], generator: new Generator(2));
        var w = OnnxBuilderWeights(builder);
        var expected = nn.functional.elu(x.reshape(5, -1).matmul(w.t()), 0.5);
        var got = ort.Classifier.Logits(x);
        Assert.True((got - expected).abs().max().item<float>() <= 1e-5, "ONNX Runtime's Elu scores");
    }

    private static Tensor OnnxBuilderWeights(OnnxBuilder b) =>
        tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(b.Graph.Initializer.Single(t => t.Name == "w").RawData.Span).ToArray()).reshape(10, 784);

    [Fact]
    public void Hostile_files_are_refused_the_same_way()
    {
        var truncated = Path.Combine(_dir, "truncated.onnx");
        var bytes = OnnxBuilder.Linear().Bytes();
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<ModelFormatException>(() => ModelLoader.LoadOnnxRuntime(truncated));
        Assert.StartsWith(truncated, e.Message);
        var b = OnnxBuilder.Linear();
        var w = b.Graph.Initializer[0];
        w.ClearRawData();
        w.FloatData.Clear();
        w.DataLocation = TensorProto.Types.DataLocation.External;
        w.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "../../etc/passwd" });
        var outside = b.Save(Path.Combine(_dir, "outside.onnx"));
        Assert.Contains("inside the model's folder", Assert.Throws<ModelFormatException>(() => ModelLoader.LoadOnnxRuntime(outside)).Message);
    }

    [Fact]
    public void A_graph_with_a_fixed_batch_is_fed_in_padded_chunks()
    {
        var path = ByomFixtures.File("resnet-mini-opset11-batch1.onnx");
        using var ours = ModelLoader.Load(path, CPU);
        using var ort = ModelLoader.LoadOnnxRuntime(path);
        Assert.Equal(1, ((OnnxRuntimeClassifier)ort.Classifier).FixedBatch);
        using var scope = NewDisposeScope();
        var x = rand([3, 3, 32, 32], generator: new Generator(8));
        Tensor a;
        using (no_grad()) a = ours.Classifier.Logits(x);
        var b = ort.Classifier.Logits(x);
        Assert.Equal([3L, ort.Classifier.Spec.NumClasses], b.shape);
        Assert.True((a - b).abs().max().item<float>() <= Tolerance * Math.Max(1e-6, a.abs().max().item<float>()));
    }

    /// <summary>
    /// A ResNet-18-sized ONNX graph (11 M parameters, 3×32×32, random weights), made at test time by the fixture
    /// script rather than committed (45 MB): our executor against ONNX Runtime on a small batch.
    /// </summary>
    [PythonTorchFact]
    public void ResNet18_sized_graph_agrees_with_OnnxRuntime()
    {
        var script = Path.Combine(ByomFixtures.Dir, "make_models.py");
        var (code, output) = PythonTorchFactAttribute.Run($"import runpy, sys; sys.argv = ['make_models.py', '--resnet18-only', '--out', {Quote(_dir)}]; runpy.run_path({Quote(script)}, run_name='__main__')");
        Assert.True(code == 0, output);
        var path = Path.Combine(_dir, "resnet18.onnx");
        using var model = ModelLoader.Load(path, CPU);
        Assert.Equal([3, 32, 32], model.Classifier.Spec.InputShape);
        Assert.True(model.Classifier.ParameterCount > 10_000_000, $"{model.Classifier.ParameterCount} parameters is not ResNet-18-sized");
        using var scope = NewDisposeScope();
        var x = rand([4, 3, 32, 32], generator: new Generator(3));
        var check = OnnxRuntimeReference.Compare(model, path, x);
        Assert.True(check.Relative <= Tolerance, $"ResNet-18: ours vs ONNX Runtime differ by {check.MaxAbsDifference} (scale {check.Scale})");
        Assert.Equal(4, check.PredictionsAgree);
    }

    private static string Quote(string s) => "'" + s.Replace("\\", "\\\\").Replace("'", "\\'") + "'";
}
