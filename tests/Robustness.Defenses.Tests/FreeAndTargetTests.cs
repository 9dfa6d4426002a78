using Robustness.Core;
using Robustness.Core.Geometry;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Defenses.Tests;

/// <summary>Free adversarial training (replays, the carried-over perturbation, exact resume) and the stop at a target
/// robust accuracy (time to a robust model).</summary>
public sealed class FreeAndTargetTests
{
    private sealed class IterationCounter : ITrainingHook
    {
        public List<long> AtEpochEnd { get; } = [];
        public void OnEpochEnd(EpochMetrics metrics, TrainingState state) => AtEpochEnd.Add(state.Iteration);
    }

    [Fact]
    public void Free_training_takes_one_optimizer_step_per_replay()
    {
        using var model = Fixtures.TinyMlp(4);
        var counter = new IterationCounter();
        var options = new TrainingOptions { Epochs = 2, BatchSize = 50, ValidationSize = 0, Seed = 2, Threads = 2 };
        var report = new Trainer(model, new FreeAdversarialObjective(0.1) { Replays = 3 }, options, [counter]).Fit(Fixtures.TrainSubset(200));
        Assert.Equal([12L, 24L], counter.AtEpochEnd); // 4 minibatches × 3 replays per epoch
        Assert.Equal("free", report.Defense);
        Assert.Equal("3", report.DefenseParameters["replays"]);
        Assert.NotNull(report.Final!.TrainAdversarialAccuracy);
    }

    [Theory]
    [InlineData(Norm.Linf)]
    [InlineData(Norm.L2)]
    public void Carried_perturbation_stays_in_the_ball(Norm norm)
    {
        using var scope = NewDisposeScope();
        using var state = new FreePerturbation(CPU);
        var geometry = Geometries.For(norm);
        var x = rand(8, 1, 4, 4);
        var w = randn(16, 3);
        for (int step = 0; step < 30; step++)
        {
            // The last, smaller batch uses the first rows of δ.
            var batch = step % 3 == 2 ? x.narrow(0, 0, 5) : x;
            var delta = state.For(batch);
            var loss = (batch + delta).reshape(batch.shape[0], -1).matmul(w).pow(Keep(2)).sum();
            loss.backward();
            state.Step(geometry, 0.1);
            var saved = state.Save().Single().Value;
            Assert.Equal(x.shape, saved.shape);
            Assert.True(geometry.Distance(saved).max().ToDouble() <= 0.1 * (1 + 1e-5), $"step {step}: δ left the ball");
        }
        Assert.True(geometry.Distance(state.Save().Single().Value).max().ToDouble() > 0.05, "δ never moved");
    }

    [Fact]
    public void Free_training_resumes_exactly_with_its_perturbation()
    {
        var data = Fixtures.TrainSubset(300);
        var options = new TrainingOptions { Epochs = 2, BatchSize = 50, Seed = 9, ValidationSize = 50, ValidationPgdSteps = 2, Threads = 2, LogEvery = 2 };
        var objective = new FreeAdversarialObjective(0.1) { Replays = 2 };
        using var straight = Fixtures.TinyMlp(5);
        new Trainer(straight, objective, options with { OutputDirectory = Fixtures.TempDir() }) { ModelWriter = ModelFileWriter.Instance }.Fit(data);

        using var resumed = Fixtures.TinyMlp(777);
        Fixtures.CrashThenResume(objective, options, data, seed: 5, epoch: 2, batch: 4, resumed);
        var diff = Fixtures.MaxDifference(Fixtures.Weights(straight.Module), Fixtures.Weights(resumed.Module));
        Assert.True(diff <= 1e-5, $"max weight difference {diff}: the perturbation was not carried through the checkpoint");
    }

    [Fact]
    public void Training_stops_when_validation_reaches_the_target()
    {
        using var model = Fixtures.TinyMlp(6);
        var validator = new ScriptedValidator(
            new ValidationMetrics(0.9, 0.30, null), new ValidationMetrics(0.9, 0.60, null),
            new ValidationMetrics(0.9, 0.80, null), new ValidationMetrics(0.9, 0.90, null));
        var options = new TrainingOptions { Epochs = 4, BatchSize = 50, ValidationSize = 50, Seed = 3, Threads = 2, TargetRobustAccuracy = 0.75 };
        var report = new Trainer(model, new StandardObjective(), options) { Validator = validator }.Fit(Fixtures.TrainSubset(200));
        Assert.Equal(3, report.EpochsRun);
        Assert.Equal(3, report.TargetReachedEpoch);
        Assert.True(report.TargetReachedSeconds > 0);
        Assert.Contains("target robust accuracy", report.StopReason);
        Assert.Contains(report.Events, e => e.Kind == TrainingEvent.TargetReached);

        // A target never reached trains every epoch and records no time.
        using var other = Fixtures.TinyMlp(6);
        var never = new Trainer(other, new StandardObjective(), options with { TargetRobustAccuracy = 0.95 }) { Validator = validator }.Fit(Fixtures.TrainSubset(200));
        Assert.Equal(4, never.EpochsRun);
        Assert.Null(never.TargetReachedEpoch);
        Assert.ThrowsAny<InputException>(() => new Trainer(other, new StandardObjective(), options with { TargetRobustAccuracy = 1.5 }));
    }

    [Fact]
    public void Robust_overfitting_is_said_once_when_validation_falls_five_points_below_its_best()
    {
        using var model = Fixtures.TinyMlp(6);
        var validator = new ScriptedValidator(
            new ValidationMetrics(0.9, 0.50, null), new ValidationMetrics(0.9, 0.60, null), new ValidationMetrics(0.9, 0.56, null),
            new ValidationMetrics(0.9, 0.54, null), new ValidationMetrics(0.9, 0.40, null));
        var options = new TrainingOptions { Epochs = 5, BatchSize = 50, ValidationSize = 50, Seed = 3, Threads = 2 };
        var report = new Trainer(model, new StandardObjective(), options) { Validator = validator }.Fit(Fixtures.TrainSubset(200));
        var said = Assert.Single(report.Events, e => e.Kind == TrainingEvent.RobustOverfitting);
        // 4 points below at epoch 3 is not enough; 6 at epoch 4 is; epoch 5 does not repeat it.
        Assert.Equal(4, said.Epoch);
        Assert.Contains("6.0 points below its best (60.0 %, epoch 2)", said.Message);
        Assert.Equal(2, report.BestEpoch);
        Assert.Equal(5, report.EpochsRun);

        // Validation without robust accuracy never says it.
        Assert.Null(RobustOverfitting.Check(new EpochMetrics { Epoch = 2, ValidationCleanAccuracy = 0.1 },
            [new EpochMetrics { Epoch = 1, ValidationCleanAccuracy = 0.9 }], [], "best", "last"));
    }
}
