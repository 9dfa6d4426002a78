using Robustness.Core;
using Robustness.Core.Formats;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Defenses.Tests;

/// <summary>The exponential moving average of the weights (--ema): its arithmetic, what validation and the files see,
/// and exact resume.</summary>
public class WeightAverageTests
{
    [Fact]
    public void Average_follows_the_closed_form_with_warm_up_and_integer_buffers_follow_the_live_model()
    {
        using var scope = NewDisposeScope();
        var bn = nn.BatchNorm1d(3);
        var weight = bn.weight!;
        using var average = new WeightAverage(bn, 0.9);
        double expected = 1.0; // the BatchNorm weight starts at 1
        var values = new[] { 3.0, -1.0, 0.5, 2.0, 7.0, -4.0, 1.5, 0.25, 6.0, -2.0, 3.5, 0.0, 1.0, 2.0 };
        for (int t = 0; t < values.Length; t++)
        {
            using (no_grad()) { weight.fill_(Keep(values[t])); bn.num_batches_tracked!.fill_(Keep(t + 1)); }
            average.Update(t);
            double d = Math.Min(0.9, (1.0 + t) / (10.0 + t));
            Assert.Equal(d, average.DecayAt(t), 12);
            expected = d * expected + (1 - d) * values[t];
        }
        var state = average.State().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(expected, state["weight"][0].ToDouble(), 5);
        Assert.Equal(values.Length, state["num_batches_tracked"].ToInt64());
        // The live weights are untouched by the update.
        Assert.Equal(values[^1], weight[0].ToDouble(), 6);
    }

    [Fact]
    public void Swapping_in_and_back_restores_the_live_weights_exactly()
    {
        using var scope = NewDisposeScope();
        using var model = Fixtures.TinyMlp(5);
        var before = Fixtures.Weights(model.Module);
        using var average = new WeightAverage(model.Module, 0.99);
        using (no_grad()) foreach (var p in model.Module.parameters()) p.add_(Keep(1.0));
        var live = Fixtures.Weights(model.Module);
        average.Update(10_000);
        average.SwapIn();
        // The average moved 1 % of the way (d = min(0.99, 10001/10010) = 0.99) from the start towards the shifted weights.
        var averaged = Fixtures.Weights(model.Module);
        foreach (var (key, t) in averaged)
            Assert.True((t - before[key] - Keep(0.01)).abs().max().ToSingle() < 1e-5f, key);
        Assert.Throws<InvalidOperationException>(() => average.Update(10_001));
        average.SwapBack();
        Assert.Equal(0, Fixtures.MaxDifference(live, Fixtures.Weights(model.Module)));
        Assert.Equal(nameof(TrainingOptions.WeightAverageDecay), Assert.Throws<ParameterException>(() => new WeightAverage(model.Module, 1.0)).Parameter);
        Assert.Equal(nameof(TrainingOptions.WeightAverageDecay), Assert.Throws<ParameterException>(() => new TrainingOptions { WeightAverageDecay = 0 }.Validate()).Parameter);
    }

    [Fact]
    public void Files_and_the_trained_model_hold_the_average_the_checkpoint_the_live_weights_and_resume_is_exact()
    {
        var data = Fixtures.TrainSubset(400);
        var options = new TrainingOptions
        {
            Epochs = 2, BatchSize = 50, LearningRate = 0.05, Schedule = LearningRateScheduleKind.Cosine, Seed = 6, ValidationSize = 50,
            Threads = 2, LogEvery = 3, WeightAverageDecay = 0.9,
        };
        var objective = new FgsmRsObjective(0.1);
        var straightDir = Fixtures.TempDir();
        using var straight = Fixtures.TinyMlp(3);
        new Trainer(straight, objective, options with { OutputDirectory = straightDir }) { ModelWriter = ModelFileWriter.Instance }.Fit(data);

        using (var scope = NewDisposeScope())
        {
            using var last = SafeTensors.Read(Path.Combine(straightDir, Trainer.LastModelFile));
            var (_, checkpoint) = TrainingCheckpoint.Read(straightDir);
            var fileWeights = Fixtures.Weights(straight.Module).Keys.ToDictionary(k => k, k => last[k]);
            // The model handed back equals its last file: the average.
            Assert.Equal(0, Fixtures.MaxDifference(Fixtures.Weights(straight.Module), fileWeights));
            foreach (var key in fileWeights.Keys)
            {
                Assert.True(checkpoint["ema." + key].eq(fileWeights[key]).all().ToBoolean(), $"{key}: the file is not the checkpoint's average");
                Assert.True(checkpoint["model." + key].sub(fileWeights[key]).abs().max().ToSingle() > 1e-6f, $"{key}: the live weights equal the average");
            }
            foreach (var t in checkpoint.Values) t.Dispose();
            Assert.Equal("ema 0.9", last.Metadata["training.weight_average"]);
        }

        // A crash in epoch 2 and a resume end with the same average as the uninterrupted run.
        using var resumed = Fixtures.TinyMlp(99);
        var crashDir = Fixtures.CrashThenResume(objective, options, data, seed: 3, epoch: 2, batch: 3, resumed);
        var diff = Fixtures.MaxDifference(Fixtures.Weights(straight.Module), Fixtures.Weights(resumed.Module));
        Assert.True(diff == 0, $"resumed averaged run differs by {diff}");

        // Without the average the same run ends elsewhere; a resume that drops --ema is refused.
        using var plain = Fixtures.TinyMlp(3);
        new Trainer(plain, objective, options with { WeightAverageDecay = null }).Fit(data);
        Assert.True(Fixtures.MaxDifference(Fixtures.Weights(straight.Module), Fixtures.Weights(plain.Module)) > 1e-4);
        var e = Assert.ThrowsAny<InputException>(() => new Trainer(resumed, objective, options with { WeightAverageDecay = null }) { ModelWriter = ModelFileWriter.Instance }.Resume(crashDir, data));
        Assert.Contains("weight average", e.Message);
    }
}
