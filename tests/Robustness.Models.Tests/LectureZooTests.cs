using System.Text.Json;
using Robustness.Core;
using Robustness.Core.Formats;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Models.Tests;

/// <summary>
/// resnet-small, lstm and gru against their PyTorch definitions (tests/fixtures/pytorch/make_zoo_fixture.py): keys,
/// shapes, logits on the shipped Fashion-MNIST test images, and the shipped trained models.
/// </summary>
public class LectureZooTests
{
    /// <summary>Fixture variant → the options that build it here.</summary>
    public static TheoryData<string> Variants => ["resnet-small", "lstm", "lstm-2-h32", "gru", "gru-2-h32"];

    private static readonly Lazy<Dictionary<string, Dictionary<string, long[]>>> Keys = new(() =>
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixtures.PyTorch("zoo-keys.json")));
        return doc.RootElement.EnumerateObject().ToDictionary(v => v.Name,
            v => v.Value.EnumerateObject().ToDictionary(k => k.Name, k => k.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray()));
    });

    private static ModelSpec SpecOf(string variant, StateDict random)
    {
        var metadata = JsonSerializer.Deserialize<Dictionary<string, string>>(random.Metadata[variant])!;
        return ModelMetadata.ToSpec(metadata, variant);
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Keys_and_shapes_equal_the_PyTorch_definition(string variant)
    {
        using var random = SafeTensors.Read(Fixtures.PyTorch("zoo-random.safetensors"));
        var spec = SpecOf(variant, random);
        using var network = ModelZoo.Create(spec.Arch, ModelZoo.OptionsFor(spec));
        var ours = network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        var reference = Keys.Value[variant];
        Assert.Equal(reference.Keys.Order(StringComparer.Ordinal), ours.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, shape) in reference)
            Assert.True(shape.SequenceEqual(ours[key]), $"{variant} {key}: ours [{string.Join(",", ours[key])}], PyTorch [{string.Join(",", shape)}]");
        Assert.Equal(network.parameters().Sum(p => p.numel()), ModelZoo.ParameterCount(spec.Arch, ModelZoo.OptionsFor(spec)));
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void Logits_equal_PyTorch_on_the_shipped_test_images(string variant)
    {
        using var scope = NewDisposeScope();
        using var random = SafeTensors.Read(Fixtures.PyTorch("zoo-random.safetensors"));
        using var reference = SafeTensors.Read(Fixtures.PyTorch("zoo-logits.safetensors"));
        var spec = SpecOf(variant, random);
        using var model = ModelZoo.CreateClassifier(spec.Arch, CPU, spec);
        var prefix = variant + "/";
        using var weights = new StateDict(random.Entries.Where(e => e.Key.StartsWith(prefix, StringComparison.Ordinal))
            .Select(e => KeyValuePair.Create(e.Key[prefix.Length..], e.Value)));
        ModelFile.CopyInto(model.Network, weights, variant);
        using var eval = ((IGradientClassifier)model).EvalMode();
        using var noGrad = no_grad();
        var ours = model.Logits(reference["inputs"]);
        var diff = Fixtures.MaxAbsDifference(ours, reference[$"logits.random.{variant}"]);
        Assert.True(diff < 1e-5f, $"{variant}: max |logit difference| {diff}");
    }

    /// <summary>The lecture models shipped in data/models (resnet-small-pgd, lstm-pgd once trained) give PyTorch's logits
    /// within 1e-5, and the fixture's list of shipped models is exactly the files present (regenerate it with
    /// tests/fixtures/pytorch/make_zoo_fixture.py after shipping one).</summary>
    [Fact]
    public void Shipped_lecture_models_give_PyTorchs_logits_within_1e5()
    {
        using var scope = NewDisposeScope();
        using var reference = SafeTensors.Read(Fixtures.PyTorch("zoo-logits.safetensors"));
        var listed = reference.Metadata["shipped"].Split(',', StringSplitOptions.RemoveEmptyEntries).Order().ToArray();
        var lecture = new[] { ("lstm-pgd", "lstm"), ("resnet-small-pgd", "resnet-small") };
        var present = lecture.Where(m => File.Exists(Fixtures.ShippedModel(m.Item1))).ToArray();
        Assert.Equal(present.Select(m => m.Item1).Order().ToArray(), listed);
        foreach (var (name, arch) in present)
        {
            using var model = ModelFile.Load(Fixtures.ShippedModel(name), CPU);
            Assert.Equal(arch, model.Spec.Arch);
            using var noGrad = no_grad();
            var diff = Fixtures.MaxAbsDifference(model.Logits(reference["inputs"]), reference[$"logits.{name}"]);
            Assert.True(diff < 1e-5f, $"{name}: max |logit difference| {diff}");
            Assert.True(new FileInfo(Fixtures.ShippedModel(name)).Length < 5_000_000, "shipped models stay under 5 MB");
        }
    }

    [Theory]
    [InlineData("lstm", 32, 2)]
    [InlineData("gru", 16, 1)]
    public void Recurrent_shape_travels_in_metadata_and_is_inferred_from_bare_state_dicts(string arch, int hidden, int layers)
    {
        var options = new ZooOptions { RecurrentHidden = hidden, RecurrentLayers = layers, Dropout = 0.25 };
        random.manual_seed(2);
        var spec = ModelZoo.DefaultSpec(arch, options);
        using var model = ModelZoo.CreateClassifier(arch, CPU, spec);
        var path = Fixtures.TempFile(".safetensors");
        ModelFile.Save(model, path);
        using (var loaded = ModelFile.Load(path))
        {
            Assert.Equal(hidden.ToString(), loaded.Spec.Extra[ModelMetadata.RecurrentHidden]);
            Assert.Equal(layers.ToString(), loaded.Spec.Extra[ModelMetadata.RecurrentLayers]);
            Assert.Equal(0.25, ModelZoo.OptionsFor(loaded.Spec).Dropout);
        }
        // A PyTorch user's file without metadata: hidden size and depth come from the tensors.
        var bare = Fixtures.TempFile(".safetensors");
        SafeTensors.Write(bare, model.Network.state_dict());
        using (var loaded = ModelFile.Load(bare, arch: arch))
        {
            Assert.Equal(hidden, ModelZoo.OptionsFor(loaded.Spec).RecurrentHidden);
            Assert.Equal(layers, ModelZoo.OptionsFor(loaded.Spec).RecurrentLayers);
        }
        File.Delete(path);
        File.Delete(bare);
    }

    [Theory]
    [InlineData("lstm")]
    [InlineData("gru")]
    public void Input_gradient_flows_back_through_every_step_of_the_recurrence(string arch)
    {
        using var scope = NewDisposeScope();
        random.manual_seed(4);
        using var model = ModelZoo.CreateClassifier(arch, CPU);
        using var eval = ((IGradientClassifier)model).EvalMode();
        var x = rand(3, 1, 28, 28).requires_grad_(true);
        var logits = model.Logits(x);
        var grad = autograd.grad([logits.select(1, 0).sum()], [x])[0];
        // Row r is step r: the first row reaches the output only through 27 recurrent steps.
        var perRow = grad.abs().sum([0, 1, 3]);
        Assert.True(perRow.gt(Keep(0)).all().ToBoolean(), $"rows without gradient: {string.Join(",", perRow.data<float>().ToArray())}");
    }

    [Fact]
    public void Bad_recurrent_options_and_dropout_name_their_parameter()
    {
        var e = Assert.Throws<ParameterException>(() => ModelZoo.Create("lstm", new ZooOptions { RecurrentLayers = 3 }));
        Assert.Equal(nameof(ZooOptions.RecurrentLayers), e.Parameter);
        e = Assert.Throws<ParameterException>(() => ModelZoo.Create("gru", new ZooOptions { RecurrentHidden = 0 }));
        Assert.Equal(nameof(ZooOptions.RecurrentHidden), e.Parameter);
        e = Assert.Throws<ParameterException>(() => ModelZoo.Create("tiny-cnn", new ZooOptions { Dropout = 1 }));
        Assert.Equal(nameof(ZooOptions.Dropout), e.Parameter);
        e = Assert.Throws<ParameterException>(() => WeightInits.Parse("ones"));
        Assert.Equal("Init", e.Parameter);
        var bad = ModelZoo.DefaultSpec("lstm") is var s ? s with { Extra = new Dictionary<string, string>(s.Extra) { [ModelMetadata.RecurrentLayers] = "7" } } : null!;
        Assert.Throws<ModelFormatException>(() => ModelZoo.OptionsFor(bad));
    }

    [Theory]
    [InlineData("mlp")]
    [InlineData("tiny-cnn")]
    [InlineData("fmnist-cnn")]
    [InlineData("lenet5")]
    [InlineData("resnet-small")]
    [InlineData("lstm")]
    [InlineData("gru")]
    public void Head_dropout_is_random_in_train_mode_and_off_in_eval_mode(string arch)
    {
        using var scope = NewDisposeScope();
        random.manual_seed(6);
        var spec = ModelZoo.DefaultSpec(arch, new ZooOptions { Dropout = 0.5 });
        using var model = ModelZoo.CreateClassifier(arch, CPU, spec);
        using var noGrad = no_grad();
        var x = rand(8, 1, 28, 28);
        model.Module.train();
        var a = model.Logits(x);
        var b = model.Logits(x);
        Assert.True(Fixtures.MaxAbsDifference(a, b) > 1e-4f, "train-mode dropout should make two calls differ");
        // The same weights and BN statistics without dropout.
        using var withoutDropout = ModelZoo.CreateClassifier(arch, CPU, ModelZoo.DefaultSpec(arch));
        ModelFile.CopyInto(withoutDropout.Network, new StateDict(model.Network.state_dict()), arch);
        model.Module.eval();
        withoutDropout.Module.eval();
        Assert.True(Fixtures.MaxAbsDifference(model.Logits(x), withoutDropout.Logits(x)) == 0f, "eval mode must be the network without dropout");
    }

    [Fact]
    public void Initialisations_set_the_weights_they_name()
    {
        using var scope = NewDisposeScope();
        var options = new ZooOptions { Hidden = [512, 512] };
        random.manual_seed(1);
        using var zeros = ModelZoo.Create("mlp", options with { Init = WeightInit.Zeros });
        Assert.All(zeros.parameters(), p => Assert.Equal(0f, p.abs().max().ToSingle()));

        using var kaiming = ModelZoo.Create("mlp", options with { Init = WeightInit.Kaiming });
        var w = kaiming.state_dict()["fc2.weight"]; // 512 × 512: std √(2/512) = 0.0625
        Assert.InRange(w.std().ToSingle(), 0.0625f * 0.97f, 0.0625f * 1.03f);
        Assert.Equal(0f, kaiming.state_dict()["fc2.bias"].abs().max().ToSingle());

        using var xavier = ModelZoo.Create("mlp", options with { Init = WeightInit.Xavier });
        var v = xavier.state_dict()["fc1.weight"]; // U(±√(6/(784+512)))
        var bound = MathF.Sqrt(6f / (784 + 512));
        Assert.True(v.abs().max().ToSingle() <= bound && v.abs().max().ToSingle() > 0.98f * bound);

        // Batch norm keeps its (1, 0) start under every scheme, and the recurrent weights are set too.
        using var resnet = ModelZoo.Create("resnet-small", new ZooOptions { Init = WeightInit.Zeros });
        var r = resnet.state_dict();
        Assert.Equal(1f, r["layer1.0.bn1.weight"].min().ToSingle());
        Assert.Equal(0f, r["layer2.0.conv1.weight"].abs().max().ToSingle());
        using var lstm = ModelZoo.Create("lstm", new ZooOptions { Init = WeightInit.Xavier });
        // [512, 128]: U(±√(6/640)) = U(±0.0968), wider than PyTorch's default U(±1/√128) = U(±0.0884).
        var hh = lstm.state_dict()["lstm.weight_hh_l0"];
        Assert.InRange(hh.abs().max().ToSingle(), 0.09f, MathF.Sqrt(6f / 640));
        Assert.Equal(0f, lstm.state_dict()["lstm.bias_ih_l0"].abs().max().ToSingle());
        Assert.Equal("zeros", ModelZoo.DefaultSpec("mlp", options with { Init = WeightInit.Zeros }).Extra[ModelMetadata.Init]);
    }

    [Theory]
    [InlineData("resnet-small")]
    [InlineData("lstm")]
    [InlineData("gru")]
    public void Bf16_view_rebuilds_the_lecture_architectures(string arch)
    {
        using var scope = NewDisposeScope();
        random.manual_seed(8);
        var spec = ModelZoo.DefaultSpec(arch, new ZooOptions { RecurrentLayers = 2, Dropout = 0.3 });
        using var model = ModelZoo.CreateClassifier(arch, CPU, spec);
        using var view = new Bf16GradientClassifier(model);
        using var eval = view.EvalMode();
        var x = rand(4, 1, 28, 28);
        Tensor reference;
        using (no_grad()) reference = model.Logits(x);
        var leaf = x.clone().requires_grad_(true);
        var logits = view.Logits(leaf);
        var diff = (logits - reference).abs().max().ToSingle();
        Assert.True(diff > 0 && diff < 0.05f * reference.abs().max().ToSingle() + 0.02f, $"bf16 logits differ by {diff}");
        var grad = autograd.grad([logits.sum()], [leaf])[0];
        Assert.True(grad.abs().sum().ToSingle() > 0);
    }
}
