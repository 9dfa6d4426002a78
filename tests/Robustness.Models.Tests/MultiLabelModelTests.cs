using Robustness.Core;
using Robustness.Core.Formats;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Models.Tests;

/// <summary>The logistic architecture and multi-label model files: threshold in the metadata, decision logits.</summary>
public class MultiLabelModelTests
{
    [Theory]
    [InlineData(new[] { 1, 28, 28 }, 10)]
    [InlineData(new[] { 1, 56, 56 }, 10)]
    [InlineData(new[] { 3, 8, 8 }, 4)]
    public void LogisticIsOneLinearLayerWithPyTorchKeys(int[] shape, int classes)
    {
        var options = new ZooOptions { InputShape = shape, NumClasses = classes };
        using var network = ModelZoo.Create("logistic", options);
        var sd = network.state_dict();
        Assert.Equal(new[] { "fc.weight", "fc.bias" }, sd.Keys);
        long inputs = shape.Aggregate(1L, (a, b) => a * b);
        Assert.Equal(new[] { (long)classes, inputs }, sd["fc.weight"].shape);
        Assert.Equal(network.parameters().Sum(p => p.numel()), ModelZoo.ParameterCount("logistic", options));
        using var scope = NewDisposeScope();
        var x = rand([3, .. shape.Select(d => (long)d)]);
        using var _ = no_grad();
        var expected = x.flatten(1).matmul(sd["fc.weight"].t()) + sd["fc.bias"];
        Assert.True(network.call(x).allclose(expected, 1e-5, 1e-5));
    }

    [Theory]
    [InlineData("tiny-cnn")]
    [InlineData("fmnist-cnn")]
    [InlineData("logistic")]
    public void MultiLabelModelsOn56x56KeepTheirThresholdThroughTheFile(string arch)
    {
        using var scope = NewDisposeScope();
        random.manual_seed(3);
        var spec = ModelZoo.DefaultSpec(arch, new ZooOptions { InputShape = [1, 56, 56], NumClasses = 10 }) with { MultiLabel = true, DecisionThreshold = 0.3 };
        using var model = ModelZoo.CreateClassifier(arch, CPU, spec);
        var path = Fixtures.TempFile(".safetensors");
        ModelFile.Save(model, path);
        using (var raw = SafeTensors.Read(path))
        {
            Assert.Equal("true", raw.Metadata["multi_label"]);
            Assert.Equal("0.3", raw.Metadata["decision_threshold"]);
            // Logits are stored raw: the file has only the network's keys, no shift.
            Assert.Equal(model.Network.state_dict().Keys, raw.Names);
        }
        using var loaded = ModelFile.Load(path, CPU);
        Assert.True(loaded.Spec.MultiLabel);
        Assert.Equal(0.3, loaded.Spec.DecisionThreshold);
        var x = rand(4, 1, 56, 56);
        using var _ = no_grad();
        // Decision logits = raw logits − logit(0.3): predicted exactly where σ(raw) > 0.3.
        var raw2 = loaded.Network.call(x);
        var decision = loaded.Logits(x);
        Assert.True(decision.allclose(raw2 - Keep(Math.Log(0.3 / 0.7)), 1e-5, 1e-5));
        Assert.True(MultiLabelTargets.Predicted(decision).eq(raw2.sigmoid().gt(Keep(0.3))).all().item<bool>());
        File.Delete(path);
    }

    [Fact]
    public void SingleLabelFilesCarryNoThresholdAndOneVsRestIsMetadata()
    {
        using var model = ModelZoo.CreateClassifier("logistic", CPU, ModelZoo.DefaultSpec("logistic") with
        {
            Extra = new Dictionary<string, string> { [ModelMetadata.Output] = "sigmoid" },
        });
        var path = Fixtures.TempFile(".safetensors");
        ModelFile.Save(model, path);
        using (var raw = SafeTensors.Read(path))
        {
            Assert.False(raw.Metadata.ContainsKey("decision_threshold"));
            Assert.Equal("sigmoid", raw.Metadata["output"]);
        }
        using var loaded = ModelFile.Load(path, CPU);
        Assert.True(loaded.Spec.SigmoidOutputs);
        Assert.False(loaded.Spec.MultiLabel);
        File.Delete(path);
    }

    [Theory]
    [InlineData("decision_threshold", "1", "a probability strictly between 0 and 1")]
    [InlineData("decision_threshold", "nan", "a probability strictly between 0 and 1")]
    [InlineData("output", "softplus", "softmax or sigmoid")]
    public void BadMultiLabelMetadataIsRefusedNamingTheKey(string key, string value, string expected)
    {
        using var model = ModelZoo.CreateClassifier("logistic", CPU);
        var path = Fixtures.TempFile(".safetensors");
        var metadata = ModelMetadata.FromSpec(model.Spec with { MultiLabel = true });
        metadata[key] = value;
        SafeTensors.Write(path, model.Network.state_dict(), metadata);
        var e = Assert.Throws<ModelFormatException>(() => ModelFile.Load(path));
        Assert.Contains(key, e.Message);
        Assert.Contains(expected, e.Message);
        File.Delete(path);
    }
}
