using Robustness.Core.Formats;
using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Models.Tests;

public class ModelZooTests
{
    [Theory]
    [InlineData("tiny-cnn")]
    [InlineData("fmnist-cnn")]
    [InlineData("lenet5")]
    [InlineData("mlp")]
    [InlineData("preact-resnet18")]
    [InlineData("ibp-small")]
    public void State_dict_keys_and_shapes_equal_the_PyTorch_definition(string arch)
    {
        var reference = Fixtures.ReferenceKeys.Value[arch];
        using var network = ModelZoo.Create(arch);
        var ours = network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);

        Assert.Equal(reference.Keys.OrderBy(k => k, StringComparer.Ordinal), ours.Keys.OrderBy(k => k, StringComparer.Ordinal));
        foreach (var (key, shape) in reference)
            Assert.True(shape.SequenceEqual(ours[key]), $"{arch} {key}: ours [{string.Join(",", ours[key])}], PyTorch [{string.Join(",", shape)}]");
    }

    [Fact]
    public void Keys_match_reference_models_md_tables()
    {
        // The shapes written in shared/design/reference-models.md, independent of the PyTorch dump.
        using var tiny = ModelZoo.Create("tiny-cnn");
        var t = tiny.state_dict();
        Assert.Equal([16, 1, 3, 3], t["conv1.weight"].shape);
        Assert.Equal([32, 16, 3, 3], t["conv2.weight"].shape);
        Assert.Equal([128, 1568], t["fc1.weight"].shape);
        Assert.Equal([10, 128], t["fc2.weight"].shape);

        using var madry = ModelZoo.Create("fmnist-cnn");
        var m = madry.state_dict();
        Assert.Equal([32, 1, 5, 5], m["conv1.weight"].shape);
        Assert.Equal([1024, 3136], m["fc1.weight"].shape);

        using var lenet = ModelZoo.Create("lenet5");
        var l = lenet.state_dict();
        Assert.Equal([120, 400], l["fc1.weight"].shape);
        Assert.Equal([10, 84], l["fc3.weight"].shape);

        using var resnet = ModelZoo.Create("preact-resnet18");
        var r = resnet.state_dict();
        Assert.Equal([64, 3, 3, 3], r["conv1.weight"].shape);
        Assert.Equal([128, 64, 1, 1], r["layer2.0.shortcut.0.weight"].shape);
        Assert.False(r.ContainsKey("layer1.0.shortcut.0.weight"));
        Assert.False(r.ContainsKey("layer2.1.shortcut.0.weight"));
        Assert.Equal(ScalarType.Int64, r["layer1.0.bn1.num_batches_tracked"].dtype);
        Assert.Equal([10, 512], r["linear.weight"].shape);

        // Gowal et al.'s small network: valid 4×4 convs, 28 → 13 → 10.
        using var ibp = ModelZoo.Create("ibp-small");
        var s = ibp.state_dict();
        Assert.Equal([16, 1, 4, 4], s["conv1.weight"].shape);
        Assert.Equal([32, 16, 4, 4], s["conv2.weight"].shape);
        Assert.Equal([100, 3200], s["fc1.weight"].shape);
        Assert.Equal([10, 100], s["fc2.weight"].shape);
    }

    [Theory]
    [InlineData("tiny-cnn", 1, 28, 28)]
    [InlineData("fmnist-cnn", 1, 28, 28)]
    [InlineData("lenet5", 1, 28, 28)]
    [InlineData("mlp", 1, 28, 28)]
    [InlineData("preact-resnet18", 3, 32, 32)]
    [InlineData("ibp-small", 1, 28, 28)]
    public void Default_classifier_maps_a_batch_to_logits(string arch, int c, int h, int w)
    {
        using var scope = NewDisposeScope();
        random.manual_seed(1);
        using var model = ModelZoo.CreateClassifier(arch, CPU);
        Assert.Equal([c, h, w], model.Spec.InputShape);
        Assert.Equal(Bounds.Unit, model.Spec.Bounds);
        using var eval = ((IGradientClassifier)model).EvalMode();
        using var noGrad = no_grad();
        var logits = model.Logits(rand(3, c, h, w));
        Assert.Equal([3L, 10L], logits.shape);
        Assert.True(logits.isfinite().all().ToBoolean());
    }

    [Fact]
    public void Mlp_takes_hidden_widths_activation_and_any_input_shape()
    {
        using var mlp = ModelZoo.Create("mlp", new ZooOptions { InputShape = [3, 8, 8], Hidden = [64, 32, 16], Activation = "tanh", NumClasses = 5 });
        var keys = mlp.state_dict();
        Assert.Equal(["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias", "fc4.weight", "fc4.bias"], keys.Keys);
        Assert.Equal([64, 192], keys["fc1.weight"].shape);
        Assert.Equal([5, 16], keys["fc4.weight"].shape);
        using var noGrad = no_grad();
        using var x = rand(2, 3, 8, 8);
        using var y = mlp.call(x);
        Assert.Equal([2L, 5L], y.shape);
    }

    [Fact]
    public void Linear_mlp_is_an_affine_map()
    {
        // With the identity between layers the network is affine: f(a) + f(b) − f(0) = f(a + b).
        random.manual_seed(3);
        using var mlp = ModelZoo.Create("mlp", new ZooOptions { InputShape = [6], Hidden = [5], Activation = "linear", NumClasses = 3 });
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var a = randn(4, 6);
        var b = randn(4, 6);
        var lhs = mlp.call(a) + mlp.call(b) - mlp.call(zeros(4, 6));
        var rhs = mlp.call(a + b);
        Assert.True(Fixtures.MaxAbsDifference(lhs, rhs) < 1e-5f);
    }

    [Fact]
    public void Unknown_architecture_lists_the_valid_names()
    {
        var e = Assert.ThrowsAny<InputException>(() => ModelZoo.Create("resnet50"));
        Assert.Contains("resnet50", e.Message);
        foreach (var name in ModelZoo.Names) Assert.Contains(name, e.Message);
        Assert.ThrowsAny<InputException>(() => ModelZoo.Create("mlp", new ZooOptions { Activation = "gelu" }));
        Assert.ThrowsAny<InputException>(() => ModelZoo.CreateClassifier("nope", CPU));
    }

    [Fact]
    public void Classifier_with_mean_and_std_normalizes_in_front_of_the_network()
    {
        random.manual_seed(5);
        var spec = ModelZoo.DefaultSpec("tiny-cnn") with { Mean = [0.25f], Std = [0.5f] };
        using var model = ModelZoo.CreateClassifier("tiny-cnn", CPU, spec);
        // Network keys stay exactly the PyTorch ones; the normaliser only lives in the pipeline.
        Assert.Equal(Fixtures.ReferenceKeys.Value["tiny-cnn"].Keys.Order(), model.Network.state_dict().Keys.Order());
        Assert.Contains("normalize.mean", model.Module.state_dict().Keys);

        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.Module.eval();
        var x = rand(2, 1, 28, 28);
        var viaPipeline = model.Logits(x);
        var byHand = model.Network.call((x - Keep(0.25f)) / Keep(0.5f));
        Assert.True(Fixtures.MaxAbsDifference(viaPipeline, byHand) < 1e-6f);
    }

    [Fact]
    public void Normalize_broadcasts_per_channel()
    {
        using var normalize = new Normalize([0.1f, 0.2f, 0.3f], [1f, 2f, 4f]);
        using var x = ones(2, 3, 4, 4);
        using var y = normalize.call(x);
        Assert.Equal(0.9f, y[0, 0, 0, 0].ToSingle(), 6);
        Assert.Equal(0.4f, y[1, 1, 3, 3].ToSingle(), 6);
        Assert.Equal(0.175f, y[0, 2, 1, 2].ToSingle(), 6);
        Assert.Throws<ArgumentException>(() => new Normalize([0f], [0f]));
        Assert.Throws<ArgumentException>(() => new Normalize([0f, 1f], [1f]));
    }

    [Fact]
    public void Default_specs_describe_fashion_mnist_and_cifar_shapes()
    {
        foreach (var arch in new[] { "mlp", "lenet5", "tiny-cnn", "fmnist-cnn", "ibp-small" })
            Assert.Equal([1, 28, 28], ModelZoo.DefaultSpec(arch).InputShape);
        Assert.Equal([3, 32, 32], ModelZoo.DefaultSpec("preact-resnet18").InputShape);
        Assert.All(ModelZoo.Names, n => Assert.Equal(10, ModelZoo.DefaultSpec(n).NumClasses));
        Assert.Equal("256,256", ModelZoo.DefaultSpec("mlp").Extra[ModelMetadata.MlpHidden]);
    }
}

public class ParameterCountTests
{
    [Theory]
    [InlineData("tiny-cnn", null)]
    [InlineData("fmnist-cnn", null)]
    [InlineData("lenet5", null)]
    [InlineData("mlp", null)]
    [InlineData("preact-resnet18", null)]
    [InlineData("tiny-cnn", new[] { 3, 32, 32 })]
    [InlineData("lenet5", new[] { 3, 36, 40 })]
    [InlineData("preact-resnet18", new[] { 1, 28, 28 })]
    [InlineData("ibp-small", null)]
    [InlineData("ibp-small", new[] { 3, 32, 30 })]
    public void Computed_count_equals_the_built_network(string arch, int[]? shape)
    {
        var options = new ZooOptions { InputShape = shape, NumClasses = 7 };
        using var network = ModelZoo.Create(arch, options);
        Assert.Equal(network.parameters().Sum(p => p.numel()), ModelZoo.ParameterCount(arch, options));
    }

    [Fact]
    public void Huge_metadata_shapes_are_refused_before_building()
    {
        using var model = ModelZoo.CreateClassifier("tiny-cnn", TorchSharp.torch.CPU);
        var path = Fixtures.TempFile(".safetensors");
        SafeTensors.Write(path, model.Network.state_dict(),
            new Dictionary<string, string> { ["arch"] = "tiny-cnn", ["input_shape"] = "1,100000,100000" });
        var e = Assert.Throws<ModelFormatException>(() => ModelFile.Load(path));
        Assert.Contains("parameters", e.Message);
        File.Delete(path);
    }
}
