using Robustness.Core;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Defenses.Tests;

/// <summary>Re-estimating BatchNorm statistics (<see cref="BatchNormStatistics"/>): after a pass over one batch, eval
/// mode normalises that batch as train mode does (up to the unbiased-variance factor), the model's mode and the
/// layers' momentum come back, and networks without BatchNorm are left alone.</summary>
public class BatchNormStatisticsTests
{
    private static float MaxRelative(Tensor a, Tensor b) => ((a - b).abs().max() / b.abs().max()).item<float>();

    [Fact]
    public void After_one_batch_eval_mode_matches_train_mode_on_it()
    {
        using var scope = NewDisposeScope();
        random.manual_seed(21);
        using var model = ModelZoo.CreateClassifier("resnet-small", CPU, ModelZoo.DefaultSpec("resnet-small"));
        using var data = Fixtures.TrainSubset(128);
        Tensor Logits(bool train)
        {
            IGradientClassifier m = model;
            using var mode = train ? m.TrainMode() : m.EvalMode();
            using var _ = no_grad();
            return model.Logits(data.Images);
        }
        var trainMode = Logits(train: true);
        // Train-mode passes move the moving averages; put fresh statistics back for the "before" reading.
        foreach (var layer in BatchNormStatistics.Layers(model.Module)) layer.reset_running_stats();
        var before = Logits(train: false);
        model.Module.eval();
        Assert.Equal(13, BatchNormStatistics.Recompute(model, data, batchSize: 128, CPU));
        Assert.False(model.Module.training, "the model's mode must be restored");
        Assert.All(BatchNormStatistics.Layers(model.Module), l => Assert.Equal(0.1, l.momentum!.Value, 12));
        var after = Logits(train: false);
        Assert.True(MaxRelative(before, trainMode) > 0.05, $"fresh statistics should not match the batch's ({MaxRelative(before, trainMode)})");
        // Running variance is the unbiased one (factor n/(n−1) with n ≥ 128·7·7 values per channel): agreement to ~1e-4.
        Assert.True(MaxRelative(after, trainMode) < 2e-3, $"eval mode after re-estimation vs train mode: {MaxRelative(after, trainMode)}");
    }

    [Fact]
    public void Networks_without_BatchNorm_are_left_alone()
    {
        random.manual_seed(22);
        using var model = ModelZoo.CreateClassifier("tiny-cnn", CPU, ModelZoo.DefaultSpec("tiny-cnn"));
        using var data = Fixtures.TrainSubset(8);
        Assert.Equal(0, BatchNormStatistics.Recompute(model, data, batchSize: 4, CPU));
        Assert.Throws<ParameterException>(() => BatchNormStatistics.Recompute(model, data, batchSize: 1, CPU));
    }
}
