using Robustness.Models;
using Robustness.Core.Formats;
using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Defenses.Tests;

/// <summary>The live tensor count is global to the process: these tests run alone, after the parallel ones, so that
/// tensors other test classes create meanwhile cannot move it.</summary>
[CollectionDefinition("tensor counts", DisableParallelization = true)]
public sealed class TensorCountCollection;

[Collection("tensor counts")]
public class LiveTensorTests
{
    /// <summary>Finalises what earlier tests left to the garbage collector, so that it cannot leave the count mid-run.</summary>
    private static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    [Fact]
    public void LiveTensorCountStaysFlatOverTraining()
    {
        Settle();
        using var model = Fixtures.TinyMlp(9);
        var counts = new LiveTensorRecorder();
        var options = new TrainingOptions { Epochs = 3, BatchSize = 25, LearningRate = 0.05, ValidationSize = 50, Seed = 1, Threads = 2, LogEvery = 3 };
        new Trainer(model, new PgdAdversarialObjective(0.1) { Steps = 2 }, options, [counts]) { ModelWriter = ModelFileWriter.Instance }.Fit(Fixtures.TrainSubset(250));
        // Same point of epochs 2 and 3, and every batch of epoch 3 against its first.
        Assert.Equal(counts.At[(2, 5)], counts.At[(3, 5)]);
        var third = counts.At.Where(kv => kv.Key.Epoch == 3).Select(kv => kv.Value).ToList();
        Assert.Equal(third.Min(), third.Max());
    }

    [Fact]
    public void LiveTensorCountStaysFlatOverBf16Steps()
    {
        Settle();
        random.manual_seed(5);
        using var model = ModelZoo.CreateClassifier("tiny-cnn", CPU, ModelZoo.DefaultSpec("tiny-cnn"));
        var counts = new LiveTensorRecorder();
        var options = new TrainingOptions
        {
            Epochs = 3, BatchSize = 25, LearningRate = 0.05, ValidationSize = 50, Seed = 1, Threads = 2, LogEvery = 3,
            AttackPrecision = GradientPrecision.Bf16, StepPrecision = GradientPrecision.Bf16,
        };
        new Trainer(model, new PgdAdversarialObjective(0.1) { Steps = 2 }, options, [counts]) { ReducedPrecisionViews = Bf16Views.Instance }
            .Fit(Fixtures.TrainSubset(250));
        Assert.Equal(counts.At[(2, 5)], counts.At[(3, 5)]);
        var third = counts.At.Where(kv => kv.Key.Epoch == 3).Select(kv => kv.Value).ToList();
        Assert.Equal(third.Min(), third.Max());
    }
}
