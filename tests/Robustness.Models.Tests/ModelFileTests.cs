using Robustness.Core;
using Robustness.Models.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Tests;

public class ModelFileTests
{
    private static Tensor Logits(TorchClassifier model, Tensor x)
    {
        using var noGrad = no_grad();
        model.Module.eval();
        return model.Logits(x);
    }

    [Fact]
    public void Save_then_load_gives_identical_logits_and_keeps_the_spec()
    {
        using var scope = NewDisposeScope();
        random.manual_seed(11);
        var spec = ModelZoo.DefaultSpec("lenet5") with
        {
            Labels = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"],
            Mean = [0.286f],
            Std = [0.353f],
            Bounds = new Bounds(0f, 1f),
            Extra = new Dictionary<string, string> { ["trained_by"] = "pgd-at", ["epochs"] = "3" },
        };
        using var model = ModelZoo.CreateClassifier("lenet5", CPU, spec);
        var path = Fixtures.TempFile(".safetensors");
        ModelFile.Save(model, path, new Dictionary<string, string> { ["seed"] = "42" });

        using var loaded = ModelFile.Load(path, CPU);
        var x = rand(5, 1, 28, 28);
        Assert.True(Logits(model, x).equal(Logits(loaded, x)).all().ToBoolean());
        Assert.Equal("lenet5", loaded.Spec.Arch);
        Assert.Equal(spec.Labels, loaded.Spec.Labels);
        Assert.Equal(spec.Mean, loaded.Spec.Mean);
        Assert.Equal(spec.Std, loaded.Spec.Std);
        Assert.Equal(spec.InputShape, loaded.Spec.InputShape);
        Assert.Equal("pgd-at", loaded.Spec.Extra["trained_by"]);
        Assert.Equal("42", loaded.Spec.Extra["seed"]);

        // The file itself carries PyTorch keys only (normalisation is metadata) and the documented metadata.
        using var raw = SafeTensors.Read(path);
        Assert.Equal(model.Network.state_dict().Keys, raw.Names);
        Assert.Equal("robustness-model/1", raw.Metadata["format"]);
        Assert.Equal("1,28,28", raw.Metadata["input_shape"]);
        Assert.Equal("0,1", raw.Metadata["bounds"]);
        Assert.Equal("10", raw.Metadata["num_classes"]);
        Assert.Equal("false", raw.Metadata["multi_label"]);
        File.Delete(path);
    }

    [Fact]
    public void Mlp_widths_and_activation_survive_a_round_trip()
    {
        using var scope = NewDisposeScope();
        random.manual_seed(12);
        var options = new ZooOptions { Hidden = [40, 20], Activation = "sigmoid", NumClasses = 4 };
        var network = ModelZoo.Create("mlp", options);
        using var model = new TorchClassifier(network, ModelZoo.DefaultSpec("mlp", options));
        var path = Fixtures.TempFile(".safetensors");
        ModelFile.Save(model, path);
        using var loaded = ModelFile.Load(path);
        Assert.Equal("40,20", loaded.Spec.Extra[ModelMetadata.MlpHidden]);
        Assert.Equal("sigmoid", loaded.Spec.Extra[ModelMetadata.MlpActivation]);
        var x = rand(3, 1, 28, 28);
        Assert.True(Logits(model, x).equal(Logits(loaded, x)).all().ToBoolean());
        File.Delete(path);
    }

    [Fact]
    public void Resnet_round_trip_keeps_batch_norm_statistics()
    {
        using var scope = NewDisposeScope();
        random.manual_seed(13);
        using var model = ModelZoo.CreateClassifier("preact-resnet18", CPU);
        // Move the running statistics away from their initial values with one training-mode pass.
        model.Module.train();
        using (no_grad()) model.Logits(rand(4, 3, 32, 32));
        var path = Fixtures.TempFile(".safetensors");
        ModelFile.Save(model, path);
        using var loaded = ModelFile.Load(path);
        var sd = loaded.Network.state_dict();
        var original = model.Network.state_dict();
        Assert.Equal(1L, sd["layer1.0.bn1.num_batches_tracked"].item<long>());
        Assert.True(sd["bn.running_mean"].equal(original["bn.running_mean"]).all().ToBoolean());
        var x = rand(2, 3, 32, 32);
        Assert.True(Fixtures.MaxAbsDifference(Logits(model, x), Logits(loaded, x)) == 0f);
        File.Delete(path);
    }

    [Theory]
    [InlineData("lenet5.pt", "lenet5", "lenet5")]
    [InlineData("lenet5.safetensors", "lenet5", "lenet5")]
    [InlineData("mlp-784-32-10.pt", "mlp", "mlp")]
    [InlineData("mlp-784-32-10.safetensors", "mlp", "mlp")]
    [InlineData("mlp-784-32-10-checkpoint.pth", "mlp", "mlp")]
    [InlineData("tiny-cnn-f16.safetensors", null, "tiny-cnn")]
    public void PyTorch_files_give_PyTorch_logits(string file, string? arch, string logitsOf)
    {
        using var scope = NewDisposeScope();
        using var reference = Fixtures.InputsAndLogits();
        using var model = ModelFile.Load(Fixtures.PyTorch(file), CPU, arch);
        var ours = Logits(model, reference["inputs"]);
        var theirs = reference[$"logits.{logitsOf}"];
        Assert.Equal(theirs.shape, ours.shape);
        Assert.True(Fixtures.MaxAbsDifference(ours, theirs) < 1e-4f, $"max |Δ| = {Fixtures.MaxAbsDifference(ours, theirs)}");
    }

    [Fact]
    public void Mlp_hidden_widths_are_inferred_from_a_PyTorch_file()
    {
        using var model = ModelFile.Load(Fixtures.PyTorch("mlp-784-32-10.safetensors"), CPU, "mlp");
        Assert.Equal("32", model.Spec.Extra[ModelMetadata.MlpHidden]);
        Assert.Equal(10, model.Spec.NumClasses);
    }

    [Fact]
    public void File_without_architecture_needs_arch()
    {
        var e = Assert.ThrowsAny<InputException>(() => ModelFile.Load(Fixtures.PyTorch("lenet5.pt"), CPU));
        Assert.Contains("architecture", e.Message);
        var wrong = Assert.ThrowsAny<InputException>(() => ModelFile.Load(Fixtures.PyTorch("tiny-cnn-f16.safetensors"), CPU, "lenet5"));
        Assert.Contains("tiny-cnn", wrong.Message);
    }

    [Fact]
    public void Mismatches_are_listed_missing_unexpected_and_shapes()
    {
        using var scope = NewDisposeScope();
        // A tiny-cnn file with fc2.bias missing, an extra fc3.weight and fc1 built for 3-channel 32×32 input.
        var tensors = new List<KeyValuePair<string, Tensor>>
        {
            new("conv1.weight", zeros(16, 1, 3, 3)), new("conv1.bias", zeros(16)),
            new("conv2.weight", zeros(32, 16, 3, 3)), new("conv2.bias", zeros(32)),
            new("fc1.weight", zeros(128, 2048)), new("fc1.bias", zeros(128)),
            new("fc2.weight", zeros(10, 128)), new("fc3.weight", zeros(10, 10)),
        };
        var path = Fixtures.TempFile(".safetensors");
        SafeTensors.Write(path, tensors, new Dictionary<string, string> { ["arch"] = "tiny-cnn" });
        var e = Assert.Throws<ModelFormatException>(() => ModelFile.Load(path, CPU));
        Assert.Equal($"{path}: missing fc2.bias; unexpected fc3.weight; fc1.weight has shape [128,2048], expected [128,1568]", e.Message);
        File.Delete(path);
    }

    [Fact]
    public void Wrong_architecture_for_a_PyTorch_file_says_what_differs()
    {
        var e = Assert.Throws<ModelFormatException>(() => ModelFile.Load(Fixtures.PyTorch("lenet5.pt"), CPU, "tiny-cnn"));
        Assert.Contains("unexpected fc3.weight", e.Message);
        Assert.Contains("conv1.weight has shape [6,1,5,5], expected [16,1,3,3]", e.Message);
    }

    [Fact]
    public void Bad_metadata_is_reported_by_key()
    {
        using var scope = NewDisposeScope();
        using var model = ModelZoo.CreateClassifier("mlp", CPU);
        var path = Fixtures.TempFile(".safetensors");
        SafeTensors.Write(path, model.Network.state_dict(), new Dictionary<string, string> { ["arch"] = "mlp", ["num_classes"] = "ten" });
        Assert.Contains("num_classes", Assert.Throws<ModelFormatException>(() => ModelFile.Load(path)).Message);
        SafeTensors.Write(path, model.Network.state_dict(), new Dictionary<string, string> { ["arch"] = "vgg" });
        Assert.Contains("vgg", Assert.Throws<ModelFormatException>(() => ModelFile.Load(path)).Message);
        File.Delete(path);
    }

    [Fact]
    public void ExportPt_reloads_with_our_reader_to_the_same_tensors()
    {
        using var scope = NewDisposeScope();
        random.manual_seed(14);
        using var model = ModelZoo.CreateClassifier("preact-resnet18", CPU);
        var path = Fixtures.TempFile(".pt");
        ModelFile.ExportPt(model, path);

        using var read = PyTorchCheckpoint.Read(path);
        var original = model.Network.state_dict();
        Assert.Equal(original.Keys, read.Names);
        foreach (var (key, t) in original)
        {
            Assert.Equal(t.dtype, read[key].dtype);
            Assert.True(t.equal(read[key]).all().ToBoolean(), key);
        }
        using var loaded = ModelFile.Load(path, CPU, "preact-resnet18");
        var x = rand(2, 3, 32, 32);
        Assert.True(Logits(model, x).equal(Logits(loaded, x)).all().ToBoolean());
        File.Delete(path);
    }

    [PythonTorchFact]
    public void ExportPt_and_Save_load_in_PyTorch_with_the_same_values()
    {
        using var scope = NewDisposeScope();
        random.manual_seed(15);
        using var model = ModelZoo.CreateClassifier("lenet5", CPU);
        var pt = Fixtures.TempFile(".pt");
        var st = Fixtures.TempFile(".safetensors");
        ModelFile.ExportPt(model, pt);
        ModelFile.Save(model, st);
        var sd = model.Network.state_dict();
        var sum = sd.Values.Sum(t => t.to(float64).sum().item<double>());

        // PyTorch loads the export (weights_only: only tensors and dicts, like our reader), reports its keys,
        // shapes and the sum of all weights; the safetensors file is parsed with json + numpy.
        const string script = """
            import json, struct, sys, numpy as np, torch
            sd = torch.load(sys.argv[1], weights_only=True) if 'weights_only' in torch.load.__code__.co_varnames else torch.load(sys.argv[1])
            with open(sys.argv[2], 'rb') as f:
                n = struct.unpack('<Q', f.read(8))[0]; header = json.loads(f.read(n)); data = f.read()
            st_sum = sum(float(np.frombuffer(data[v['data_offsets'][0]:v['data_offsets'][1]], dtype=np.float32).astype(np.float64).sum())
                         for k, v in header.items() if k != '__metadata__')
            print(json.dumps({'keys': list(sd.keys()), 'shapes': [list(v.shape) for v in sd.values()],
                              'sum': sum(float(v.double().sum()) for v in sd.values()), 'st_sum': st_sum,
                              'arch': header['__metadata__']['arch']}))
            """;
        var (exit, output) = PythonTorchFactAttribute.Run(script, pt, st);
        Assert.True(exit == 0, output);
        using var doc = System.Text.Json.JsonDocument.Parse(output.Trim().Split('\n')[^1]);
        var root = doc.RootElement;
        Assert.Equal(sd.Keys, root.GetProperty("keys").EnumerateArray().Select(k => k.GetString()));
        Assert.Equal(sd.Values.Select(t => t.shape), root.GetProperty("shapes").EnumerateArray().Select(s => s.EnumerateArray().Select(d => d.GetInt64()).ToArray()));
        Assert.Equal(sum, root.GetProperty("sum").GetDouble(), 6);
        Assert.Equal(sum, root.GetProperty("st_sum").GetDouble(), 6);
        Assert.Equal("lenet5", root.GetProperty("arch").GetString());
        File.Delete(pt);
        File.Delete(st);
    }

    [Fact]
    public void Sha256_is_the_hex_digest_of_the_bytes()
    {
        var path = Fixtures.TempFile(".bin");
        File.WriteAllText(path, "abc");
        Assert.Equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", ModelFile.Sha256(path));
        File.Delete(path);
        Assert.ThrowsAny<InputException>(() => ModelFile.Sha256(path));
    }

    [Fact]
    public void Missing_file_is_an_input_error_naming_it()
    {
        var e = Assert.ThrowsAny<InputException>(() => ModelFile.Load("/nonexistent/m.safetensors"));
        Assert.Contains("/nonexistent/m.safetensors", e.Message);
    }
}
