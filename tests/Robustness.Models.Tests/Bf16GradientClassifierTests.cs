using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Models.Tests;

public class Bf16GradientClassifierTests
{
    private static (TorchClassifier Model, Tensor X) Setup(string arch = "tiny-cnn")
    {
        random.manual_seed(3);
        var model = ModelZoo.CreateClassifier(arch, CPU);
        var x = rand(8, 1, 28, 28);
        return (model, x);
    }

    [Fact]
    public void Judging_passes_are_exactly_float32_and_gradient_passes_run_in_bf16()
    {
        using var scope = NewDisposeScope();
        var (model, x) = Setup();
        using var view = new Bf16GradientClassifier(model);
        using var eval = view.EvalMode();

        Tensor reference, judged;
        using (no_grad())
        {
            reference = model.Logits(x);
            judged = view.Logits(x);
        }
        Assert.True(judged.eq(reference).all().ToBoolean(), "under no_grad the float32 model must answer, bit for bit");

        var leaf = x.clone().requires_grad_(true);
        var logits = view.Logits(leaf);
        Assert.Equal(ScalarType.Float32, logits.dtype);
        var diff = (logits - reference).abs().max().ToSingle();
        // bf16 keeps 8 bits of mantissa: close to float32 but not equal (else the copy would not be bf16).
        Assert.True(diff > 0 && diff < 0.05f * reference.abs().max().ToSingle() + 0.02f, $"bf16 logits differ by {diff}");
        var grad = autograd.grad([logits.sum()], [leaf])[0];
        Assert.Equal(ScalarType.Float32, grad.dtype);
        Assert.True(grad.abs().sum().ToSingle() > 0, "no gradient reached the input");
    }

    [Fact]
    public void Refresh_follows_the_source_weights_and_modes_switch_together()
    {
        using var scope = NewDisposeScope();
        var (model, x) = Setup();
        using var view = new Bf16GradientClassifier(model);
        model.Module.train();
        using (view.EvalMode())
            Assert.False(model.Module.training);
        Assert.True(model.Module.training, "mode not restored");

        using var eval = view.EvalMode();
        Tensor before;
        using (enable_grad()) before = view.Logits(x).detach();
        using (no_grad())
            foreach (var p in model.Module.parameters()) p.mul_(Keep(0.5));
        Tensor stale, fresh, expected;
        using (enable_grad()) stale = view.Logits(x).detach();
        view.Refresh();
        using (enable_grad()) fresh = view.Logits(x).detach();
        using (no_grad()) expected = model.Logits(x);
        Assert.True(stale.eq(before).all().ToBoolean(), "the copy changed without Refresh");
        Assert.True((fresh - expected).abs().max().ToSingle() < 0.05f * expected.abs().max().ToSingle() + 0.02f, "Refresh did not copy the new weights");
        Assert.False(fresh.eq(before).all().ToBoolean());
    }

    [Fact]
    public void Non_zoo_models_and_unknown_precisions_are_input_errors()
    {
        using var scope = NewDisposeScope();
        var net = nn.Sequential(("flatten", nn.Flatten()), ("fc", nn.Linear(784, 10)));
        var spec = ModelZoo.DefaultSpec("mlp") with { Arch = "custom" };
        using var custom = new TorchClassifier(net, spec);
        var error = Assert.ThrowsAny<InputException>(() => new Bf16GradientClassifier(custom));
        Assert.Contains("zoo", error.Message);
        Assert.Equal(GradientPrecision.Bf16, GradientPrecisions.Parse("BF16"));
        Assert.Equal(GradientPrecision.Float32, GradientPrecisions.Parse("float32"));
        var bad = Assert.ThrowsAny<InputException>(() => GradientPrecisions.Parse("fp16", "--precision"));
        Assert.StartsWith("--precision", bad.Message);
        Assert.Null(Bf16Views.ViewOf(custom, GradientPrecision.Float32));
    }
}
