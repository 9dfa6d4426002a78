using Robustness.Core;
using Robustness.Models.Formats.TorchScript;
using static TorchSharp.torch;

namespace Robustness.Models.Tests.Byom;

/// <summary>TorchScript archives (script and trace) loaded through torch.jit.load, against PyTorch.</summary>
public sealed class TorchScriptTests
{
    [Theory]
    [MemberData(nameof(ByomFixtures.TorchScriptFiles), MemberType = typeof(ByomFixtures))]
    public void Logits_and_input_gradients_match_PyTorch(string file)
    {
        var (_, modelName, inputsKey) = ByomFixtures.TorchScript.Single(o => o.File == file);
        using var inputs = ByomFixtures.Inputs();
        var contract = new InputContract { InputShape = ByomFixtures.ShapeOf(inputsKey) };
        using var model = ModelLoader.Load(ByomFixtures.File(file), CPU, contract);
        Assert.Equal(ModelFormat.TorchScript, model.Format);
        Assert.IsType<TorchScriptNetwork>(model.Classifier.Network);
        Assert.False(model.Classifier.Module.training);

        using var scope = NewDisposeScope();
        var x = inputs.Tensors[inputsKey];
        Tensor ours;
        using (no_grad()) ours = model.Classifier.Logits(x);
        var pytorch = inputs.Tensors[modelName + ".logits"];
        double diff = (ours - pytorch).abs().max().item<float>();
        Assert.True(diff <= 1e-4 * Math.Max(1e-6, pytorch.abs().max().item<float>()), $"{file}: logits differ from PyTorch by {diff}");
        GradientCheck.AssertMatches(model.Classifier, x, inputs.Tensors[modelName + ".grad"], file);
    }

    [Fact]
    public void Eval_mode_is_scoped_and_restored_on_the_script_module()
    {
        var contract = new InputContract { InputShape = [1, 28, 28] };
        using var model = ModelLoader.Load(ByomFixtures.File("cnn-bn-script.pt"), CPU, contract);
        IGradientClassifier classifier = model.Classifier;
        var script = model.Classifier.Network.named_children().Single().module;
        using (classifier.TrainMode())
        {
            Assert.True(script.training);
            using (classifier.EvalMode()) Assert.False(script.training);
            Assert.True(script.training);
        }
        Assert.False(script.training);

        // In train mode dropout is live in a scripted module: two passes differ; in eval mode they agree.
        using var scope = NewDisposeScope();
        var x = rand(4, 1, 28, 28, generator: new Generator(3));
        using (no_grad())
        {
            Tensor a, b;
            using (classifier.TrainMode()) { a = classifier.Logits(x); b = classifier.Logits(x); }
            Assert.True((a - b).abs().max().item<float>() > 0);
            using (classifier.EvalMode()) { a = classifier.Logits(x); b = classifier.Logits(x); }
            Assert.Equal(0f, (a - b).abs().max().item<float>());
        }
    }

    [Fact]
    public void Parameters_are_trainable_and_the_archive_saves_with_the_new_weights()
    {
        var contract = new InputContract { InputShape = [1, 28, 28] };
        using var model = ModelLoader.Load(ByomFixtures.File("cnn-bn-script.pt"), CPU, contract);
        var network = (TorchScriptNetwork)model.Classifier.Network;
        var parameters = network.parameters().ToList();
        Assert.NotEmpty(parameters);
        Assert.All(parameters, p => Assert.True(p.requires_grad));

        using var scope = NewDisposeScope();
        var x = rand(8, 1, 28, 28, generator: new Generator(4));
        var y = tensor(new long[] { 0, 1, 2, 3, 4, 5, 6, 7 });
        using var optimizer = optim.SGD(network.parameters(), 0.1);
        using (((IGradientClassifier)model.Classifier).TrainMode())
        {
            var loss = nn.functional.cross_entropy(model.Classifier.Logits(x), y);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
        }
        Tensor expected;
        using (no_grad()) expected = model.Classifier.Logits(x);

        var saved = Fixtures.TempFile(".pt");
        try
        {
            network.Save(saved);
            using var reloaded = ModelLoader.Load(saved, CPU, contract);
            Tensor again;
            using (no_grad()) again = reloaded.Classifier.Logits(x);
            Assert.Equal(0f, (again - expected).abs().max().item<float>(), 5);
        }
        finally { File.Delete(saved); }
    }

    [Theory]
    [InlineData("hostile-script-function.pt", "a classifier outputs scores")]
    [InlineData("hostile-two-inputs.pt", "takes 2 inputs")]
    [InlineData("hostile-tuple-output.pt", "fails on a batch")]
    public void An_archive_that_is_not_a_classifier_module_is_refused_in_one_line(string file, string expected)
    {
        var e = Assert.Throws<ModelFormatException>(() => ModelLoader.Load(ByomFixtures.File(file), CPU, new InputContract { InputShape = [1, 28, 28] }));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_state_dict_still_goes_through_the_restricted_unpickler()
    {
        using var model = ModelLoader.Load(Fixtures.PyTorch("lenet5.pt"), CPU, arch: "lenet5");
        Assert.Equal(ModelFormat.PyTorchStateDict, model.Format);
        Assert.Contains("restricted unpickler", model.Description.Facts.Single(f => f.Property == "format").Value);
    }

    [Fact]
    public void Without_an_input_shape_a_TorchScript_archive_asks_for_one()
    {
        var e = Assert.Throws<ParameterException>(() => ModelLoader.Load(ByomFixtures.File("cnn-bn-script.pt"), CPU));
        Assert.Equal(nameof(InputContract.InputShape), e.Parameter);
    }
}
