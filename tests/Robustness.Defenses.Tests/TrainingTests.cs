using Robustness.Models;
using Robustness.Core.Formats;
using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Defenses.Tests;

/// <summary>Trained models shared by the tests that compare them (same data, same number of steps).</summary>
internal static class TrainedModels
{
    public const double Eps = 0.1;

    public static TrainingOptions Options => new()
    {
        Epochs = 5, BatchSize = 32, Optimizer = OptimizerKind.Adam, LearningRate = 2e-3, WeightDecay = 0, Schedule = LearningRateScheduleKind.Cosine,
        Seed = 1, ValidationSize = 0, Threads = 2, LogEvery = 20,
    };

    public static readonly Lazy<(TorchClassifier Model, TrainingReport Report)> Standard = new(() =>
    {
        var model = Fixtures.SmallCnn(1);
        var report = new Trainer(model, new StandardObjective(), Options) { ModelWriter = ModelFileWriter.Instance }.Fit(Fixtures.Train.Value, Fixtures.Validation.Value);
        return (model, report);
    });

    /// <summary>The robustness comparison uses a small MLP (cheap PGD) trained with and without PGD-AT for the same 120 steps.</summary>
    public static TrainingOptions MlpOptions => new()
    {
        Epochs = 3, BatchSize = 50, Optimizer = OptimizerKind.Adam, LearningRate = 2e-3, WeightDecay = 0,
        Seed = 1, ValidationSize = 0, ValidationPgdSteps = 5, Threads = 2, LogEvery = 20,
    };

    public static readonly Lazy<(TorchClassifier Model, TrainingReport Report)> StandardMlp = new(() =>
    {
        var model = Fixtures.TinyMlp(1, hidden: 64);
        var report = new Trainer(model, new StandardObjective(), MlpOptions) { ModelWriter = ModelFileWriter.Instance }.Fit(Fixtures.Train.Value, Fixtures.Validation.Value);
        return (model, report);
    });

    public static readonly Lazy<(TorchClassifier Model, TrainingReport Report)> Adversarial = new(() =>
    {
        var model = Fixtures.TinyMlp(1, hidden: 64);
        var objective = new PgdAdversarialObjective(Eps) { Steps = 5 };
        var report = new Trainer(model, objective, MlpOptions with { EpsRampEpochs = 1 }) { ModelWriter = ModelFileWriter.Instance }.Fit(Fixtures.Train.Value, Fixtures.Validation.Value);
        return (model, report);
    });
}

public class TrainingTests
{
    [Fact]
    public void StandardTrainingLearns()
    {
        var (model, report) = TrainedModels.Standard.Value;
        Assert.Equal(5, report.EpochsRun);
        Assert.True(report.History[^1].TrainLoss < report.History[0].TrainLoss, "training loss did not fall");
        Assert.True(report.Final!.ValidationCleanAccuracy >= 0.75, $"validation accuracy {report.Final.ValidationCleanAccuracy:P1}");
        // 5 epochs of 63 batches = 315 steps; measured on 500 images the model never saw.
        var (clean, _) = Fixtures.Evaluate(model, Fixtures.HeldOut.Value, TrainedModels.Eps);
        Assert.True(clean >= 0.80, $"held-out accuracy {clean:P1} after 315 steps");
    }

    [Fact]
    public void PgdAdversarialTrainingIsMoreRobustThanStandard()
    {
        var standard = Fixtures.Evaluate(TrainedModels.StandardMlp.Value.Model, Fixtures.HeldOut.Value, TrainedModels.Eps);
        var adversarial = Fixtures.Evaluate(TrainedModels.Adversarial.Value.Model, Fixtures.HeldOut.Value, TrainedModels.Eps);
        Assert.True(adversarial.Robust >= standard.Robust + 0.25,
            $"PGD accuracy at ε = 0.1: adversarially trained {adversarial.Robust:P1}, standard {standard.Robust:P1}");
        Assert.True(adversarial.Clean >= 0.6, $"adversarially trained clean accuracy {adversarial.Clean:P1}");
        // Robust validation ran every epoch at the training ε and is what the report's best epoch is chosen by.
        var report = TrainedModels.Adversarial.Value.Report;
        Assert.All(report.History, m => Assert.NotNull(m.ValidationRobustAccuracy));
        Assert.Equal(report.History.MaxBy(m => m.ValidationRobustAccuracy)!.Epoch, report.BestEpoch);
        Assert.Equal(TrainedModels.Eps, report.History[0].Epsilon, 9); // the ramp ends with epoch 1
        // The clean-accuracy display is estimated on a sample of each batch (CleanAccuracySample), never skipped.
        Assert.All(report.History, m => Assert.InRange(m.TrainCleanAccuracy!.Value, 0.3, 1.0));
    }

    [Fact]
    public void CleanAccuracyDisplayScoresTheRequestedSampleOfEachBatch()
    {
        using var scope = NewDisposeScope();
        var model = Fixtures.TinyMlp(2, hidden: 16);
        var data = Fixtures.TrainSubset(40);
        var (x, y) = (data.Images, data.Labels);
        var context = new TrainingStepContext(0.1, new Generator(1), 1, 0);
        foreach (var (sample, rows) in new[] { (8, 8L), (0, -1L), (100, 40L) })
        {
            var pgd = new PgdAdversarialObjective(0.1) { Steps = 2, CleanAccuracySample = sample }.Compute(model, x, y, context);
            var fgsm = new FgsmRsObjective(0.1) { CleanAccuracySample = sample }.Compute(model, x, y, context);
            foreach (var step in new[] { pgd, fgsm })
            {
                Assert.Equal(rows, step.CleanLogits?.shape[0] ?? -1);
                Assert.Equal(40, step.AdversarialLogits!.shape[0]);
                Assert.True(step.Loss.requires_grad);
            }
        }
    }

    [Fact]
    public void ResumeAfterCrashReproducesUninterruptedRun()
    {
        var data = Fixtures.TrainSubset(500);
        var options = new TrainingOptions
        {
            Epochs = 2, BatchSize = 50, LearningRate = 0.05, Momentum = 0.9, WeightDecay = 5e-4, Nesterov = true,
            Schedule = LearningRateScheduleKind.OneCycle, EpsRampEpochs = 1, Seed = 7, ValidationSize = 60,
            ValidationPgdSteps = 3, Threads = 2, LogEvery = 5,
        };
        var objective = new PgdAdversarialObjective(0.1) { Steps = 3 };

        var straightDir = Fixtures.TempDir();
        using var straight = Fixtures.TinyMlp(3);
        var straightReport = new Trainer(straight, objective, options with { OutputDirectory = straightDir }) { ModelWriter = ModelFileWriter.Instance }.Fit(data);

        var crashDir = Fixtures.TempDir();
        using (var crashing = Fixtures.TinyMlp(3))
            Assert.Throws<SimulatedCrash>(() => new Trainer(crashing, objective, options with { OutputDirectory = crashDir }, [new CrashHook(epoch: 2, batch: 4)]) { ModelWriter = ModelFileWriter.Instance }.Fit(data));
        Assert.Equal(1, TrainingCheckpoint.ReadManifest(crashDir).EpochsCompleted);

        using var resumed = Fixtures.TinyMlp(12345); // different initial weights: everything must come from the checkpoint
        var resumedReport = new Trainer(resumed, objective, options) { ModelWriter = ModelFileWriter.Instance }.Resume(crashDir, data);

        var diff = Fixtures.MaxDifference(Fixtures.Weights(straight.Module), Fixtures.Weights(resumed.Module));
        Assert.True(diff <= 1e-5, $"max weight difference {diff}");
        Assert.Equal(2, resumedReport.EpochsRun);
        Assert.Contains(resumedReport.Events, e => e.Kind == TrainingEvent.Resumed);
        Assert.Equal(straightReport.Final!.TrainLoss, resumedReport.Final!.TrainLoss, 5);
        Assert.Equal(straightReport.Final.ValidationRobustAccuracy, resumedReport.Final.ValidationRobustAccuracy);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(crashDir, Trainer.MetricsFile)).Length);

        // A finished run resumes to a no-op.
        var again = new Trainer(resumed, objective, options) { ModelWriter = ModelFileWriter.Instance }.Resume(crashDir, data);
        Assert.Equal(2, again.EpochsRun);
        Assert.True(Fixtures.MaxDifference(Fixtures.Weights(straight.Module), Fixtures.Weights(resumed.Module)) <= 1e-5);
    }

    [Fact]
    public void ResumeRejectsDifferentRun()
    {
        var data = Fixtures.TrainSubset(200);
        var dir = Fixtures.TempDir();
        var options = new TrainingOptions { Epochs = 1, BatchSize = 50, ValidationSize = 0, Seed = 1, OutputDirectory = dir, Threads = 2 };
        using var model = Fixtures.TinyMlp(1);
        new Trainer(model, new StandardObjective(), options) { ModelWriter = ModelFileWriter.Instance }.Fit(data);
        var e = Assert.ThrowsAny<InputException>(() => new Trainer(model, new StandardObjective(), options with { Seed = 2 }) { ModelWriter = ModelFileWriter.Instance }.Resume(dir, data));
        Assert.Contains("seed", e.Message);
        Assert.ThrowsAny<InputException>(() => new Trainer(model, new StandardObjective(), options) { ModelWriter = ModelFileWriter.Instance }.Resume(Fixtures.TempDir(), data));
    }

    [Fact]
    public void BestCheckpointIsTheEpochWithBestRobustValidationAccuracy()
    {
        var dir = Fixtures.TempDir();
        using var model = Fixtures.TinyMlp(2);
        var recorder = new WeightRecorder(model.Module);
        var validator = new ScriptedValidator(
            new ValidationMetrics(0.80, 0.30, null), new ValidationMetrics(0.70, 0.55, null),
            new ValidationMetrics(0.90, 0.40, null), new ValidationMetrics(0.85, 0.55, null));
        var options = new TrainingOptions { Epochs = 4, BatchSize = 50, LearningRate = 0.05, ValidationSize = 50, Seed = 3, OutputDirectory = dir, Threads = 2 };
        var report = new Trainer(model, new StandardObjective(), options, [recorder]) { Validator = validator, ModelWriter = ModelFileWriter.Instance }.Fit(Fixtures.TrainSubset(300));

        Assert.Equal(2, report.BestEpoch); // highest robust accuracy; the tie at epoch 4 keeps the earlier epoch
        Assert.Equal(0.55, report.BestScore);
        using var bestFile = SafeTensors.Read(Path.Combine(dir, Trainer.BestModelFile));
        using var lastFile = SafeTensors.Read(Path.Combine(dir, Trainer.LastModelFile));
        var (best, bestMeta) = (bestFile.Tensors, bestFile.Metadata);
        var last = lastFile.Tensors;
        Assert.Equal(0, Fixtures.MaxDifference(best, recorder.ByEpoch[2]));
        Assert.Equal(0, Fixtures.MaxDifference(last, recorder.ByEpoch[4]));
        Assert.True(Fixtures.MaxDifference(best, last) > 0);
        Assert.Equal("standard", bestMeta["training.defense"]);
        Assert.Equal("test-cnn", bestMeta["arch"]);

        var lines = File.ReadAllLines(Path.Combine(dir, Trainer.MetricsFile));
        Assert.Equal(4, lines.Length);
        using var doc = System.Text.Json.JsonDocument.Parse(lines[1]);
        Assert.Equal(2, doc.RootElement.GetProperty("epoch").GetInt32());
        Assert.Equal(0.55, doc.RootElement.GetProperty("val_robust_acc").GetDouble());
        foreach (var key in new[] { "lr", "train_loss", "train_clean_acc", "train_adv_acc", "val_clean_acc", "seconds", "eps" })
            Assert.True(doc.RootElement.TryGetProperty(key, out _), key);

        var png = File.ReadAllBytes(Path.Combine(dir, Trainer.CurvesFile));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
    }

    [Fact]
    public void CatastrophicOverfittingStopsAndRestoresBest()
    {
        var dir = Fixtures.TempDir();
        using var model = Fixtures.TinyMlp(4);
        var recorder = new WeightRecorder(model.Module);
        var events = new List<TrainingEvent>();
        var validator = new ScriptedValidator(
            new ValidationMetrics(0.70, 0.35, 0.45), new ValidationMetrics(0.72, 0.40, 0.48),
            new ValidationMetrics(0.75, 0.05, 0.90), new ValidationMetrics(0.75, 0.05, 0.95));
        var options = new TrainingOptions { Epochs = 4, BatchSize = 50, LearningRate = 0.05, ValidationSize = 50, Seed = 5, OutputDirectory = dir, Threads = 2 };
        var hook = new EventSink(events);
        var report = new Trainer(model, new FgsmRsObjective(0.1), options, [recorder, hook]) { Validator = validator, ModelWriter = ModelFileWriter.Instance }.Fit(Fixtures.TrainSubset(300));

        Assert.Equal(3, report.EpochsRun);
        Assert.NotNull(report.StopReason);
        var e = Assert.Single(events, x => x.Kind == TrainingEvent.CatastrophicOverfitting);
        Assert.Equal(3, e.Epoch);
        Assert.Contains(TrainingEvent.CatastrophicOverfitting, report.ToMetadata()["training.events"]);
        Assert.Equal(0, Fixtures.MaxDifference(Fixtures.Weights(model.Module), recorder.ByEpoch[2]));
        Assert.Contains(TrainingEvent.CatastrophicOverfitting, File.ReadAllLines(Path.Combine(dir, Trainer.MetricsFile))[2]);
        Assert.True(TrainingCheckpoint.ReadManifest(dir).Finished);
    }

    [Fact]
    public void OverfittingDetectorOnConstructedSequences()
    {
        static EpochMetrics M(int e, double robust, double? fgsm) => new() { Epoch = e, ValidationRobustAccuracy = robust, ValidationFgsmAccuracy = fgsm };
        var d = new CatastrophicOverfittingDetector();
        Assert.Null(d.Observe(M(1, 0.30, 0.40)));
        Assert.Null(d.Observe(M(2, 0.42, 0.45)));
        Assert.Null(d.Observe(M(3, 0.35, 0.50))); // a 7-point dip is noise, not collapse
        Assert.NotNull(d.Observe(M(4, 0.15, 0.60))); // 27 points below the best

        var small = new CatastrophicOverfittingDetector();
        Assert.Null(small.Observe(M(1, 0.15, 0.20)));
        Assert.Null(small.Observe(M(2, 0.02, 0.10))); // below 0.2·best but FGSM accuracy fell too
        Assert.NotNull(small.Observe(M(3, 0.02, 0.50))); // below 0.2·best while FGSM accuracy rises
    }

    [Fact]
    public void LearningRateSchedulesAtKnownIterations()
    {
        var constant = LearningRateSchedules.Create(new TrainingOptions { LearningRate = 0.1, Epochs = 10 }, 100);
        Assert.Equal(0.1, constant.At(0));
        Assert.Equal(0.1, constant.At(999));

        var step = LearningRateSchedules.Create(new TrainingOptions { LearningRate = 0.1, Epochs = 10, Schedule = LearningRateScheduleKind.Step }, 100);
        Assert.Equal(0.1, step.At(499), 12);
        Assert.Equal(0.01, step.At(500), 12);  // epoch 5 = 50%
        Assert.Equal(0.001, step.At(750), 12); // epoch 7.5 = 75%
        var custom = LearningRateSchedules.Create(new TrainingOptions { LearningRate = 1, Epochs = 10, Schedule = LearningRateScheduleKind.Step, StepMilestones = [2], StepGamma = 0.5 }, 10);
        Assert.Equal(1, custom.At(19), 12);
        Assert.Equal(0.5, custom.At(20), 12);

        var cosine = LearningRateSchedules.Create(new TrainingOptions { LearningRate = 0.2, Epochs = 10, Schedule = LearningRateScheduleKind.Cosine }, 100);
        Assert.Equal(0.2, cosine.At(0), 12);
        Assert.Equal(0.1, cosine.At(500), 12);
        Assert.Equal(0.2 * 0.5 * (1 + Math.Cos(Math.PI / 4)), cosine.At(250), 12);
        Assert.Equal(0, cosine.At(1000), 12);

        // One-cycle over 1000 iterations: t = (i+1)/1000; peak at t = 0.4, zero at t = 1.
        var oneCycle = LearningRateSchedules.Create(new TrainingOptions { LearningRate = 0.2, Epochs = 10, Schedule = LearningRateScheduleKind.OneCycle }, 100);
        Assert.Equal(0.2, oneCycle.At(399), 12);
        Assert.Equal(0.1, oneCycle.At(199), 12);
        Assert.Equal(0.1, oneCycle.At(699), 12);
        Assert.Equal(0, oneCycle.At(999), 12);
        Assert.True(oneCycle.At(0) > 0);
    }

    [Fact]
    public void EpsilonRampsLinearlyPerIteration()
    {
        var ramp = EpsilonSchedule.Create(0.1, rampEpochs: 2, iterationsPerEpoch: 10);
        Assert.Equal(0.005, ramp.At(0), 12);
        Assert.Equal(0.05, ramp.At(9), 12);
        Assert.Equal(0.1, ramp.At(19), 12);
        Assert.Equal(0.1, ramp.At(500), 12);
        Assert.Equal(0.1, EpsilonSchedule.Create(0.1, 0, 10).At(0));
    }

    [Fact]
    public void TradesLossIsAtLeastCleanCrossEntropyAndEqualsItAtBetaZero()
    {
        using var model = Fixtures.TinyMlp(6);
        using var batch = Fixtures.TrainSubset(64).Batches(64, CPU).First();
        using var scope = NewDisposeScope();
        using var generator = new Generator(3, CPU);
        var ctx = new TrainingStepContext(0.1, generator, 1, 0);
        double ce;
        using (no_grad())
            ce = nn.functional.cross_entropy(model.Logits(batch.Inputs), batch.Labels).ToDouble();
        var trades = new TradesObjective(0.1) { Steps = 5 }.Compute(model, batch.Inputs, batch.Labels, ctx);
        Assert.True(trades.Loss.ToDouble() > ce + 1e-4, $"TRADES loss {trades.Loss.ToDouble()} vs CE {ce}");
        var zero = new TradesObjective(0.1) { Steps = 5, Beta = 0 }.Compute(model, batch.Inputs, batch.Labels, ctx);
        Assert.Equal(ce, zero.Loss.ToDouble(), 6);
        // The inner maximisation found points with a larger KL than the tiny random start.
        var kl = TradesObjective.KlDivergence(trades.CleanLogits!, trades.AdversarialLogits!);
        Assert.True(kl.mean().ToDouble() > 1e-3);
        Assert.True(kl.min().ToDouble() >= -1e-6);
    }

    [Fact]
    public void OptimizersMatchTorchSharpReference()
    {
        foreach (var adam in new[] { false, true })
        {
            using var a = Fixtures.TinyMlp(8);
            using var b = Fixtures.TinyMlp(8);
            using var ours = adam
                ? new AdamOptimizer(a.Module.named_parameters(), weightDecay: 1e-2)
                : (IParameterOptimizer)new SgdOptimizer(a.Module.named_parameters(), momentum: 0.9, weightDecay: 1e-2, nesterov: true);
            using var reference = adam
                ? (optim.Optimizer)optim.Adam(b.Module.parameters(), lr: 0.01, weight_decay: 1e-2)
                : optim.SGD(b.Module.parameters(), 0.01, momentum: 0.9, weight_decay: 1e-2, nesterov: true);
            using var batch = Fixtures.TrainSubset(100).Batches(100, CPU).First();
            for (int i = 0; i < 5; i++)
            {
                using var scope = NewDisposeScope();
                a.Module.zero_grad();
                nn.functional.cross_entropy(a.Logits(batch.Inputs), batch.Labels).backward();
                ours.Step(0.01);
                reference.zero_grad();
                nn.functional.cross_entropy(b.Logits(batch.Inputs), batch.Labels).backward();
                reference.step();
            }
            var diff = Fixtures.MaxDifference(Fixtures.Weights(a.Module), Fixtures.Weights(b.Module));
            Assert.True(diff < 1e-5, $"{(adam ? "adam" : "sgd")}: max difference {diff}");
        }
    }

    [Fact]
    public void ReportBecomesModelProvenance()
    {
        var report = TrainedModels.Adversarial.Value.Report;
        var meta = report.ToMetadata();
        Assert.Equal("pgd", meta["training.defense"]);
        Assert.Equal("0.1", meta["training.eps"]);
        Assert.Equal("5", meta["training.steps"]);
        Assert.Equal("3", meta["training.epochs"]);
        Assert.Equal("1", meta["training.seed"]);
        Assert.Contains("validation_robust_accuracy", meta["training.final_metrics"]);
        Assert.True(report.WallSeconds > 0);
    }

    [Fact]
    public void BadOptionsAreInputErrors()
    {
        Assert.ThrowsAny<InputException>(() => new TrainingOptions { Epochs = 0 }.Validate());
        Assert.ThrowsAny<InputException>(() => new TrainingOptions { Momentum = 1.5 }.Validate());
        Assert.ThrowsAny<InputException>(() => new TrainingOptions { Epochs = 2, EpsRampEpochs = 3 }.Validate());
        Assert.ThrowsAny<InputException>(() => LearningRateSchedules.Parse("sawtooth"));
        using var model = Fixtures.TinyMlp(1);
        Assert.ThrowsAny<InputException>(() => new Trainer(model, new StandardObjective(), new TrainingOptions { ValidationSize = 5000 }) { ModelWriter = ModelFileWriter.Instance }.Fit(Fixtures.TrainSubset(100)));
    }
}

internal sealed class EventSink(List<TrainingEvent> events) : ITrainingHook
{
    public void OnEvent(TrainingEvent trainingEvent) => events.Add(trainingEvent);
}

internal sealed class LiveTensorRecorder : ITrainingHook
{
    public Dictionary<(int Epoch, int Batch), long> At { get; } = [];
    public void OnBatchEnd(BatchProgress progress, TrainingState state) => At[(progress.Epoch, progress.Batch)] = LiveTensors.Count;
}
