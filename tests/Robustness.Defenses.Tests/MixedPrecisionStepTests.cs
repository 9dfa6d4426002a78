using Robustness.Core;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Defenses.Tests;

/// <summary>bf16 training steps (<see cref="TrainingOptions.StepPrecision"/>): the update they apply to the float32
/// weights is the float32 update up to bf16 rounding, the weights stay float32, and the trainer refuses them where
/// they would be wrong (BatchNorm statistics) or were not measured.</summary>
public class MixedPrecisionStepTests
{
    private static Dictionary<string, Tensor> Weights(TorchClassifier model) =>
        model.Network.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    /// <summary>One plain-SGD step of PGD-AT from the same weights on the same batch. Both runs use the bf16 attack, so
    /// the adversarial inputs are the same and only the training step's arithmetic differs.</summary>
    private static (Dictionary<string, Tensor> Before, Dictionary<string, Tensor> After) OneStep(GradientPrecision step, string arch = "tiny-cnn")
    {
        random.manual_seed(11);
        var model = ModelZoo.CreateClassifier(arch, CPU, ModelZoo.DefaultSpec(arch));
        var before = Weights(model);
        var options = new TrainingOptions
        {
            Epochs = 1, BatchSize = 64, LearningRate = 0.05, Momentum = 0, WeightDecay = 0, Seed = 3, ValidationSize = 0, Threads = 1,
            AttackPrecision = GradientPrecision.Bf16, StepPrecision = step,
        };
        new Trainer(model, new PgdAdversarialObjective(0.1) { Steps = 2 }, options) { ReducedPrecisionViews = Bf16Views.Instance }
            .Fit(Fixtures.TrainSubset(64));
        var after = Weights(model);
        model.Dispose();
        return (before, after);
    }

    [Fact]
    public void A_bf16_step_applies_the_float32_update_up_to_bf16_rounding()
    {
        var (b32, a32) = OneStep(GradientPrecision.Float32);
        var (b16, a16) = OneStep(GradientPrecision.Bf16);
        foreach (var name in b32.Keys)
        {
            Assert.True(b32[name].allclose(b16[name], 0, 0), $"{name}: the runs must start from the same weights");
            Assert.Equal(ScalarType.Float32, a16[name].dtype);
            var d32 = (a32[name] - b32[name]).flatten();
            var d16 = (a16[name] - b16[name]).flatten();
            var n32 = d32.norm().item<float>();
            Assert.True(n32 > 0, $"{name}: the float32 step did not move the weights");
            var cosine = (d32.dot(d16) / (Keep(n32) * d16.norm())).item<float>();
            var relative = ((d16 - d32).norm() / Keep(n32)).item<float>();
            // bf16 keeps 8 significant bits (relative rounding 2^-9 per operation); the summed gradients stay within a few percent.
            Assert.True(cosine > 0.995, $"{name}: cosine between the float32 and bf16 updates {cosine}");
            Assert.True(relative < 0.1, $"{name}: relative difference of the updates {relative}");
        }
    }

    [Fact]
    public void Bf16_steps_are_refused_for_BatchNorm_networks_and_unmeasured_defenses()
    {
        random.manual_seed(4);
        using var resnet = ModelZoo.CreateClassifier("resnet-small", CPU, ModelZoo.DefaultSpec("resnet-small"));
        var options = new TrainingOptions { Epochs = 1, BatchSize = 16, Seed = 1, ValidationSize = 0, Threads = 1, StepPrecision = GradientPrecision.Bf16 };
        var e = Assert.Throws<ParameterException>(() =>
            new Trainer(resnet, new PgdAdversarialObjective(0.1) { Steps = 1 }, options) { ReducedPrecisionViews = Bf16Views.Instance }.Fit(Fixtures.TrainSubset(16)));
        Assert.Equal(nameof(TrainingOptions.StepPrecision), e.Parameter);
        Assert.Contains("BatchNorm", e.Problem);

        using var tiny = ModelZoo.CreateClassifier("tiny-cnn", CPU, ModelZoo.DefaultSpec("tiny-cnn"));
        e = Assert.Throws<ParameterException>(() => new Trainer(tiny, new FgsmRsObjective(0.1), options) { ReducedPrecisionViews = Bf16Views.Instance });
        Assert.Equal(nameof(TrainingOptions.StepPrecision), e.Parameter);
    }
}
