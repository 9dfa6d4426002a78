using Robustness.Models;
using Robustness.Core.Formats;
using Robustness.Core;
using Robustness.Data;
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

    /// <summary>Robust threshold tuning attacks every decision batch by batch and keeps one tensor per batch (its
    /// worst-case probabilities): the count grows by exactly one per batch, and nothing is left behind.</summary>
    [Fact]
    public void LiveTensorCountStaysFlatOverRobustThresholdTuning()
    {
        Settle();
        random.manual_seed(6);
        var net = nn.Sequential(("flatten", nn.Flatten()), ("fc", nn.Linear(56 * 56, 10)));
        using var model = new TorchClassifier(net, new ModelSpec
        {
            Arch = "test-linear", InputShape = [1, 56, 56], NumClasses = 10, Labels = DatasetCatalog.FashionMnistClassNames, MultiLabel = true,
        });
        using var all = DatasetCatalog.Load(FashionMnistMulti.Name, "test");
        using var held = all.Take(40);
        var counts = new List<long>();
        long before = LiveTensors.Count;
        ThresholdTuning.Tune(model, held, ThresholdMetric.RobustHammingAccuracy, 50, new ThresholdAttack(0.05) { Steps = 2 },
            new Recorder(counts));
        Settle();
        Assert.Equal(8, counts.Count);
        Assert.All(counts.Zip(counts.Skip(1)), pair => Assert.Equal(pair.First + 1, pair.Second));
        Assert.Equal(before, LiveTensors.Count);
    }

    private sealed class Recorder(List<long> counts) : IProgress<int>
    {
        public void Report(int value) => counts.Add(LiveTensors.Count);
    }
}
