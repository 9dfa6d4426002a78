using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Robustness.Attacks;
using Robustness.Certification;
using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Defenses;

/// <summary>
/// Mini-batch training of a classifier with an <see cref="ITrainingObjective"/> (standard, PGD-AT, FGSM-RS, TRADES,
/// noise): per-iteration LR and ε schedules, robust validation each epoch, best/last model files, checkpoints every
/// epoch and exact resume, catastrophic-overfitting detection, hooks. Per batch: one dispose scope, the objective's
/// loss, backward, one optimizer step; loss and accuracy accumulate on the device and are read every LogEvery batches.
/// </summary>
public sealed class Trainer
{
    /// <summary>The best model's file with the default writer (others use their own extension: best.pt for TorchScript).</summary>
    public const string BestModelFile = "best.safetensors";
    public const string LastModelFile = "last.safetensors";
    public const string MetricsFile = "metrics.jsonl";
    public const string CurvesFile = "training-curves.png";

    private readonly IGradientClassifier _model;
    private readonly ITrainingObjective _objective;
    private IReducedPrecisionClassifier? _view, _attackView;
    private IMixedPrecisionStep? _stepView;
    private IObjectiveState? _objectiveState;
    private readonly TrainingOptions _options;
    private readonly List<ITrainingHook> _hooks;
    private Generator? _augmentGenerator;
    private LayerGradientNorms? _gradientNorms;
    private WeightAverage? _average;

    /// <summary>Mixed into the seed of the augmentation generator, so its stream differs from the attack generator's.</summary>
    private const ulong AugmentationSeedSalt = 0x9E3779B97F4A7C15;

    /// <summary>
    /// Throws when reduced-precision training steps cannot be used with this model: a network with running statistics
    /// (BatchNorm) would have them updated in the reduced precision. Callers can check before they announce a run.
    /// </summary>
    public static void CheckStepPrecision(IGradientClassifier model, TrainingOptions options)
    {
        if (options.StepPrecision != GradientPrecision.Float32 && model.Module.named_buffers().Any(b => b.name.EndsWith("running_mean", StringComparison.Ordinal)))
            throw new ParameterException(nameof(TrainingOptions.StepPrecision), $"{options.StepPrecision.Name()} training steps: '{model.Spec.Arch}' has running statistics " +
                "(BatchNorm), which the reduced-precision copy would update in its own precision; train it with float32 steps");
    }

    public Trainer(IGradientClassifier model, ITrainingObjective objective, TrainingOptions options, IEnumerable<ITrainingHook>? hooks = null)
    {
        _model = model;
        _objective = objective;
        _options = options.Validate();
        CheckPrecision(objective, _options);
        _hooks = hooks?.ToList() ?? [];
    }

    /// <summary>Replaces the default <see cref="RobustValidator"/> (tests feed constructed metric sequences through it).</summary>
    public IValidator? Validator { get; init; }
    /// <summary>Writes the best/last model files; needed when the options name an output directory
    /// (Robustness.Models.ModelFileWriter writes the toolkit's model files).</summary>
    public IModelWriter? ModelWriter { get; init; }
    /// <summary>Makes the reduced-precision view the inner attack differentiates when
    /// <see cref="TrainingOptions.AttackPrecision"/> asks for one (Robustness.Models.Bf16Views for zoo models).</summary>
    public IReducedPrecisionViews? ReducedPrecisionViews { get; init; }

    public TrainingOptions Options => _options;

    /// <summary>Refuses reduced-precision attack passes for objectives where they were not shown to match float32
    /// (<see cref="ITrainingObjective.ReducedPrecisionValidated"/>). Callers may check before doing any work.</summary>
    public static void CheckPrecision(ITrainingObjective objective, TrainingOptions options)
    {
        if (options.AttackPrecision != GradientPrecision.Float32 && !objective.ReducedPrecisionValidated)
            throw new ParameterException(nameof(TrainingOptions.AttackPrecision), $"{options.AttackPrecision.Name()} is offered only for the defenses where it " +
                $"matched float32 robust accuracy within 0.5 points (pgd); with '{objective.Name}' it did not or was not measured (docs/performance.md)");
        if (options.StepPrecision != GradientPrecision.Float32 && !objective.ReducedPrecisionValidated)
            throw new ParameterException(nameof(TrainingOptions.StepPrecision), $"{options.StepPrecision.Name()} training steps are offered only for the defenses where " +
                $"reduced precision was measured (pgd); with '{objective.Name}' it was not (docs/time-to-robust.md)");
    }

    private IModelWriter Writer => ModelWriter ?? throw new ParameterException(nameof(ModelWriter),
        "saving the best and last models needs a model writer (Robustness.Models.ModelFileWriter)");

    /// <summary>"best" or "last" with the writer's extension (<see cref="BestModelFile"/> for model files).</summary>
    private string ModelFileName(string which) => which + (ModelWriter?.FileExtension ?? ".safetensors");

    /// <summary>Trains from the model's current weights. <paramref name="validation"/> null = hold out
    /// <see cref="TrainingOptions.ValidationSize"/> images of <paramref name="train"/>.</summary>
    public TrainingReport Fit(ImageDataset train, ImageDataset? validation = null) =>
        Run(train, validation, _options.OutputDirectory, resume: false);

    /// <summary>
    /// Continues the run checkpointed in <paramref name="outputDirectory"/> (after a crash or kill): restores weights,
    /// optimizer, schedule position, RNG states and best-so-far, and restarts the interrupted epoch from its start.
    /// With the same data, options and seed it ends with the same weights as an uninterrupted run.
    /// </summary>
    public TrainingReport Resume(string outputDirectory, ImageDataset train, ImageDataset? validation = null) =>
        Run(train, validation, outputDirectory, resume: true);

    private TrainingReport Run(ImageDataset train, ImageDataset? validation, string? outputDir, bool resume)
    {
        var wall = Stopwatch.StartNew();
        var o = _options;
        if (o.Threads is { } threads) set_num_threads(threads);
        var device = Devices.Parse(o.Device);
        if (_model.Device.type != device.type || (device.index >= 0 && _model.Device.index != device.index))
            throw new ParameterException("Device", $"the model lives on {_model.Device} but training was asked for {device}; create the model on the training device");

        ImageDataset trainSet = train, ownedTrain = train;
        ImageDataset? valSet = validation, ownedVal = null;
        bool ownsSplit = false;
        if (validation is null && o.ValidationSize > 0)
        {
            (ownedTrain, ownedVal) = ValidationSplit.Split(train, o.ValidationSize, o.Seed);
            (trainSet, valSet, ownsSplit) = (ownedTrain, ownedVal, true);
        }
        bool wasTraining = _model.Module.training;
        try
        {
            return RunOn(trainSet, valSet, train, outputDir, resume, device, wall);
        }
        finally
        {
            _model.Module.train(wasTraining);
            if (ownsSplit) { ownedTrain.Dispose(); ownedVal?.Dispose(); }
        }
    }

    private TrainingReport RunOn(ImageDataset trainSet, ImageDataset? valSet, ImageDataset source, string? outputDir, bool resume, Device device, Stopwatch wall)
    {
        var o = _options;
        if (outputDir is not null) _ = Writer;
        int batchesPerEpoch = o.DropLast ? trainSet.Count / o.BatchSize : (trainSet.Count + o.BatchSize - 1) / o.BatchSize;
        if (batchesPerEpoch == 0) throw new ParameterException("BatchSize", $"{o.BatchSize} is larger than the training set ({trainSet.Count}) with drop-last");
        o.Augmentation.CheckShape(trainSet.SampleShape);
        // An iteration is one optimizer step: free AT takes Replays of them per minibatch (schedules count steps).
        int itersPerEpoch = batchesPerEpoch * Math.Max(1, _objective.Replays);
        var lrSchedule = LearningRateSchedules.Create(o, itersPerEpoch);
        var epsSchedule = EpsilonSchedule.Create(_objective.Epsilon, o.EpsRampEpochs, itersPerEpoch, o.EpsWarmupEpochs);
        bool detect = o.DetectCatastrophicOverfitting ?? _objective is FgsmRsObjective;
        double validationEps = o.ValidationEpsilon ?? _objective.Epsilon;
        // Certified training is validated by what it optimises: verified accuracy at the validation ε.
        var validator = Validator ?? (_objective is IbpObjective or CrownIbpObjective && validationEps > 0
            ? new IntervalValidator(validationEps, o.ValidationBatchSize) { Method = _objective is CrownIbpObjective ? BoundMethod.CrownIbp : BoundMethod.Ibp }
            : new RobustValidator(
                validationEps > 0 ? new ThreatModel(_objective.Norm, validationEps, _model.Spec.Bounds) : null,
                o.ValidationPgdSteps, o.ValidationBatchSize, o.Seed, measureFgsm: detect));

        // Parameters must be on their device before the optimizer takes references to them.
        _model.Module.to(device);
        CheckStepPrecision(_model, o);
        var viewPrecision = o.StepPrecision != GradientPrecision.Float32 ? o.StepPrecision : o.AttackPrecision;
        using var reducedView = viewPrecision == GradientPrecision.Float32 ? null
            : (ReducedPrecisionViews ?? throw new ParameterException(nameof(TrainingOptions.AttackPrecision),
                $"{viewPrecision.Name()} needs a provider of reduced-precision views ({nameof(ReducedPrecisionViews)})")).Create(_model, viewPrecision);
        _view = reducedView;
        _attackView = o.AttackPrecision == GradientPrecision.Float32 ? null : reducedView;
        _stepView = o.StepPrecision == GradientPrecision.Float32 ? null
            : reducedView as IMixedPrecisionStep ?? throw new ParameterException(nameof(TrainingOptions.StepPrecision),
                $"the {viewPrecision.Name()} view of '{_model.Spec.Arch}' cannot carry a training step");
        using var optimizer = ParameterOptimizers.Create(_model.Module, o);
        using var generator = new Generator((ulong)o.Seed, CPU);
        using var augmentGenerator = new Generator((ulong)o.Seed ^ AugmentationSeedSalt, CPU);
        using var gradientNorms = new LayerGradientNorms(_stepView?.GradientModule ?? _model.Module, device);
        (_augmentGenerator, _gradientNorms) = (augmentGenerator, gradientNorms);
        using var objectiveState = _objective.CreateState(device);
        _objectiveState = objectiveState;
        using var average = o.WeightAverageDecay is { } decay ? new WeightAverage(_model.Module, decay) : null;
        _average = average;
        random.manual_seed(o.Seed);

        var tracker = new BestEpochTracker();
        var detector = new CatastrophicOverfittingDetector();
        var history = new List<EpochMetrics>();
        var events = new List<TrainingEvent>();
        Dictionary<string, Tensor>? best = null;
        int startEpoch = 1;
        long iteration = 0;
        double elapsedBefore = 0;
        string? stopReason = null;
        (int Epoch, double Seconds)? targetReached = null;
        bool finished = false;
        var state = new TrainingState { Epochs = o.Epochs, IterationsPerEpoch = itersPerEpoch, History = history };

        try
        {
            if (resume)
            {
                if (outputDir is null) throw new InputException("resume: no output directory");
                var (manifest, tensors) = TrainingCheckpoint.Read(outputDir);
                try
                {
                    CheckCompatible(manifest, trainSet.Count);
                    LoadInto(_model.Module.state_dict(), tensors, "model.");
                    optimizer.LoadState(Prefixed(tensors, "optim."));
                    generator.set_state(tensors["rng.generator"]);
                    if (tensors.TryGetValue("rng.augment", out var augmentState)) augmentGenerator.set_state(augmentState);
                    else if (!o.Augmentation.IsNone) throw new InputException("resume: the checkpoint has no augmentation generator state (made before augmentation existed)");
                    random.set_rng_state(tensors["rng.torch"]);
                    objectiveState?.Load(Prefixed(tensors, "objective."));
                    average?.Load(Prefixed(tensors, "ema."));
                    if (tensors.Keys.Any(k => k.StartsWith("best.", StringComparison.Ordinal)))
                        best = Prefixed(tensors, "best.").ToDictionary(kv => kv.Key, kv => kv.Value.clone().DetachFromDisposeScope());
                }
                finally { foreach (var t in tensors.Values) t.Dispose(); }
                tracker.Restore(manifest.BestEpoch, manifest.BestScore);
                detector.Restore(manifest.DetectorBestRobust, manifest.DetectorPreviousFgsm);
                history.AddRange(manifest.History);
                events.AddRange(manifest.Events);
                startEpoch = manifest.EpochsCompleted + 1;
                iteration = manifest.Iteration;
                elapsedBefore = manifest.ElapsedSeconds;
                stopReason = manifest.StopReason;
                finished = manifest.Finished;
                // A finished run hands back what its files hold: the average (unless a collapse restored the best epoch).
                if (finished && !(stopReason?.StartsWith("catastrophic overfitting", StringComparison.Ordinal) ?? false)) average?.SwapIn();
                if (!finished) Emit(events, new TrainingEvent(manifest.EpochsCompleted, TrainingEvent.Resumed, $"resuming after epoch {manifest.EpochsCompleted} of {o.Epochs}"));
                AtomicFile.WriteAllText(Path.Combine(outputDir, MetricsFile), string.Concat(history.Select(m => MetricsLine(m) + "\n")));
            }
            else if (outputDir is not null)
            {
                Directory.CreateDirectory(outputDir);
                AtomicFile.WriteAllText(Path.Combine(outputDir, MetricsFile), "");
            }

            for (int epoch = startEpoch; epoch <= o.Epochs && !finished; epoch++)
            {
                state.Epoch = epoch;
                state.Iteration = iteration;
                foreach (var h in _hooks) h.OnEpochStart(state);
                var sw = Stopwatch.StartNew();
                var train = RunEpoch(trainSet, epoch, ref iteration, itersPerEpoch, device, optimizer, generator, lrSchedule, epsSchedule, state);
                // Validation, the model files and the best snapshot see the averaged weights; the checkpoint keeps the live ones.
                average?.SwapIn();
                if (o.BatchNormRecomputeImages > 0)
                {
                    using var statisticsImages = trainSet.Take(o.BatchNormRecomputeImages);
                    BatchNormStatistics.Recompute(_model, statisticsImages, Math.Max(2, o.BatchSize), device);
                }
                var val = valSet is null ? null : validator.Validate(_model, valSet, epoch);
                var epochEvents = new List<TrainingEvent>();
                var metrics = train with
                {
                    ValidationCleanAccuracy = val?.CleanAccuracy,
                    ValidationRobustAccuracy = val?.RobustAccuracy,
                    ValidationFgsmAccuracy = val?.FgsmAccuracy,
                    ValidationHammingAccuracy = val?.HammingAccuracy,
                    ValidationRobustHammingAccuracy = val?.RobustHammingAccuracy,
                    Seconds = sw.Elapsed.TotalSeconds,
                };
                bool improved = tracker.Observe(metrics);
                // After Observe, so a best file names its own epoch as the best one.
                var provenance = Report(source, trainSet, valSet, history.Append(metrics).ToList(), events, tracker, stopReason, elapsedBefore + wall.Elapsed.TotalSeconds, outputDir, epoch).ToMetadata();
                if (improved)
                {
                    DisposeAll(best);
                    best = Snapshot(_model.Module);
                    if (outputDir is not null) Writer.Save(_model, Path.Combine(outputDir, ModelFileName("best")), provenance);
                }
                if (outputDir is not null) Writer.Save(_model, Path.Combine(outputDir, ModelFileName("last")), provenance);
                bool restoredBest = false;
                if (detect && detector.Observe(metrics) is { } collapse)
                {
                    RestoreWeights(_model.Module, best!);
                    restoredBest = true;
                    stopReason = $"catastrophic overfitting: {collapse}";
                    epochEvents.Add(new TrainingEvent(epoch, TrainingEvent.CatastrophicOverfitting,
                        $"{collapse}; stopped and restored the weights of epoch {tracker.BestEpoch}"));
                }
                if (!restoredBest && RobustOverfitting.Check(metrics, history, events, ModelFileName("best"), ModelFileName("last")) is { } overfitting)
                    epochEvents.Add(overfitting);
                if (o.TargetRobustAccuracy is { } target && stopReason is null && metrics.ValidationRobustAccuracy >= target)
                {
                    stopReason = FormattableString.Invariant($"target robust accuracy {target:P2} reached: validation PGD-{o.ValidationPgdSteps} {metrics.ValidationRobustAccuracy:P2}");
                    targetReached = (epoch, elapsedBefore + wall.Elapsed.TotalSeconds);
                    epochEvents.Add(new TrainingEvent(epoch, TrainingEvent.TargetReached, stopReason + FormattableString.Invariant($" after {targetReached.Value.Seconds:F0} s")));
                }
                foreach (var h in _hooks) h.OnEpochEnd(metrics, state);
                if (stopReason is null && state.StopReason is { } hookStop)
                {
                    stopReason = hookStop;
                    epochEvents.Add(new TrainingEvent(epoch, TrainingEvent.EarlyStop, hookStop));
                }
                foreach (var e in epochEvents) Emit(events, e);
                metrics = metrics with { Events = epochEvents.Select(e => $"{e.Kind}: {e.Message}").ToList() };
                history.Add(metrics);
                finished = stopReason is not null || epoch == o.Epochs;
                // A collapse restored the best weights above: they stay; otherwise the run goes on from (or, finished,
                // hands back) the live weights, and a finished run then ends with the average, as its files do.
                if (average is not null && !restoredBest) average.SwapBack();
                if (outputDir is not null)
                {
                    File.AppendAllText(Path.Combine(outputDir, MetricsFile), MetricsLine(metrics) + "\n");
                    WriteCheckpoint(outputDir, epoch, iteration, finished, stopReason, optimizer, generator, augmentGenerator, best, tracker, detector, history, events,
                        elapsedBefore + wall.Elapsed.TotalSeconds, source, trainSet, valSet);
                    TrainingCurves.WritePng(history, Path.Combine(outputDir, CurvesFile));
                }
                if (finished && average is not null && !restoredBest) average.SwapIn();
            }
        }
        finally
        {
            DisposeAll(best);
            (_view, _attackView, _stepView) = (null, null, null);
            (_augmentGenerator, _gradientNorms) = (null, null);
            _objectiveState = null;
            _average = null;
        }
        return Report(source, trainSet, valSet, history, events, tracker, stopReason, elapsedBefore + wall.Elapsed.TotalSeconds, outputDir, history.Count)
            with { TargetReachedEpoch = targetReached?.Epoch, TargetReachedSeconds = targetReached?.Seconds };
    }

    private EpochMetrics RunEpoch(ImageDataset data, int epoch, ref long iteration, int itersPerEpoch, Device device, IParameterOptimizer optimizer,
        Generator generator, ILearningRateSchedule lrSchedule, EpsilonSchedule epsSchedule, TrainingState state)
    {
        var o = _options;
        using var lossSum = zeros(1, ScalarType.Float64, device);
        using var cleanCorrect = zeros(1, ScalarType.Int64, device);
        using var advCorrect = zeros(1, ScalarType.Int64, device);
        var supervised = ClassificationLosses.For(_model.Spec);
        long seen = 0, cleanSeen = 0, advSeen = 0;
        double lr = 0, eps = 0;
        int batchIndex = 0;
        int replays = Math.Max(1, _objective.Replays);
        _model.Module.train();
        _gradientNorms?.Reset();
        foreach (var batch in data.Batches(o.BatchSize, device, shuffleSeed: o.Seed * 1000 + epoch, dropLast: o.DropLast))
        {
            using (batch)
            using (var scope = NewDisposeScope())
            {
                // Channels-last inputs put the convolutions on libtorch's fast oneDNN path (Core.Layout).
                // Augmented once per minibatch (free AT replays the same augmented batch).
                var inputs = Layout.ChannelsLastView(o.Augmentation.Apply(batch.Inputs, _augmentGenerator!, _model.Spec.Bounds));
                for (int replay = 0; replay < replays; replay++)
                {
                    using var replayScope = NewDisposeScope();
                    lr = lrSchedule.At(iteration);
                    eps = epsSchedule.At(iteration);
                    // A bf16 view follows the weights of the last optimizer step (a copy, no host sync).
                    _view?.Refresh();
                    var context = new TrainingStepContext(eps, generator, epoch, iteration, _attackView) { Replay = replay, State = _objectiveState };
                    // With bf16 steps the loss is taken through the view: its graph runs in the bf16 copy.
                    var step = _objective.Compute(_stepView is null ? _model : _view!, inputs, batch.Labels, context);
                    _model.Module.zero_grad(set_to_none: true);
                    _stepView?.ZeroGradients();
                    step.Loss.backward();
                    _objective.AfterBackward(context);
                    _gradientNorms?.Accumulate();
                    if (_stepView is null) optimizer.Step(lr);
                    else optimizer.Step(lr, _stepView.Float32Gradients());
                    _average?.Update(iteration);
                    using (no_grad())
                    {
                        lossSum.add_(step.Loss.detach().to(ScalarType.Float64) * Keep(batch.Count));
                        if (step.CleanLogits is { } c)
                        {
                            // Objectives may score only the first rows of the batch for the display (CleanAccuracySample).
                            var rows = (int)c.shape[0];
                            cleanCorrect.add_(supervised.Correct(c, batch.Labels.narrow(0, 0, rows)));
                            cleanSeen += rows;
                        }
                        if (step.AdversarialLogits is { } a) { advCorrect.add_(supervised.Correct(a, batch.Labels)); advSeen += batch.Count; }
                    }
                    seen += batch.Count;
                    iteration++;
                }
            }
            batchIndex += replays;
            state.Iteration = iteration;
            bool sync = (batchIndex / replays) % o.LogEvery == 0 || batchIndex == itersPerEpoch;
            if (_hooks.Count > 0)
            {
                var progress = sync
                    ? new BatchProgress(epoch, batchIndex, itersPerEpoch, iteration, lr, eps, lossSum.item<double>() / seen,
                        cleanSeen > 0 ? cleanCorrect.item<long>() / (double)cleanSeen : null,
                        advSeen > 0 ? advCorrect.item<long>() / (double)advSeen : null)
                    : new BatchProgress(epoch, batchIndex, itersPerEpoch, iteration, lr, eps, null, null, null);
                foreach (var h in _hooks) h.OnBatchEnd(progress, state);
            }
        }
        return new EpochMetrics
        {
            Epoch = epoch,
            LearningRate = lr,
            Epsilon = eps,
            TrainLoss = lossSum.item<double>() / Math.Max(1, seen),
            TrainCleanAccuracy = cleanSeen > 0 ? cleanCorrect.item<long>() / (double)cleanSeen : null,
            TrainAdversarialAccuracy = advSeen > 0 ? advCorrect.item<long>() / (double)advSeen : null,
            GradientNorms = _gradientNorms?.Mean(),
        };
    }

    private void Emit(List<TrainingEvent> events, TrainingEvent e)
    {
        events.Add(e);
        foreach (var h in _hooks) h.OnEvent(e);
    }

    private void CheckCompatible(CheckpointManifest m, int trainCount)
    {
        var a = m.Options;
        var b = _options;
        var mismatches = new List<string>();
        if (a.Seed != b.Seed) mismatches.Add($"seed {a.Seed} vs {b.Seed}");
        if (a.Epochs != b.Epochs) mismatches.Add($"epochs {a.Epochs} vs {b.Epochs}");
        if (a.BatchSize != b.BatchSize) mismatches.Add($"batch size {a.BatchSize} vs {b.BatchSize}");
        if (a.Optimizer != b.Optimizer) mismatches.Add($"optimizer {a.Optimizer} vs {b.Optimizer}");
        if (a.Schedule != b.Schedule) mismatches.Add($"LR schedule {a.Schedule} vs {b.Schedule}");
        if (a.EpsRampEpochs != b.EpsRampEpochs || a.EpsWarmupEpochs != b.EpsWarmupEpochs)
            mismatches.Add($"ε warm-up/ramp {a.EpsWarmupEpochs}/{a.EpsRampEpochs} vs {b.EpsWarmupEpochs}/{b.EpsRampEpochs}");
        if (a.ValidationSize != b.ValidationSize) mismatches.Add($"validation size {a.ValidationSize} vs {b.ValidationSize}");
        if (a.AttackPrecision != b.AttackPrecision) mismatches.Add($"attack precision {a.AttackPrecision.Name()} vs {b.AttackPrecision.Name()}");
        if (a.BatchNormRecomputeImages != b.BatchNormRecomputeImages) mismatches.Add($"BatchNorm re-estimation {a.BatchNormRecomputeImages} vs {b.BatchNormRecomputeImages} images");
        if (a.WeightAverageDecay != b.WeightAverageDecay) mismatches.Add($"weight average {a.WeightAverageDecay?.ToString() ?? "none"} vs {b.WeightAverageDecay?.ToString() ?? "none"}");
        if (a.StepPrecision != b.StepPrecision) mismatches.Add($"step precision {a.StepPrecision.Name()} vs {b.StepPrecision.Name()}");
        if ((a.Augmentation ?? Augmentation.None).ToString() != b.Augmentation.ToString()) mismatches.Add($"augmentation {a.Augmentation ?? Augmentation.None} vs {b.Augmentation}");
        if (m.Objective != _objective.Name) mismatches.Add($"objective {m.Objective} vs {_objective.Name}");
        if (m.TrainCount != trainCount) mismatches.Add($"training images {m.TrainCount} vs {trainCount}");
        if (mismatches.Count > 0)
            throw new InputException($"resume: the checkpoint was made by a different run ({string.Join("; ", mismatches)})");
    }

    private void WriteCheckpoint(string outputDir, int epoch, long iteration, bool finished, string? stopReason, IParameterOptimizer optimizer,
        Generator generator, Generator augmentGenerator, Dictionary<string, Tensor>? best, BestEpochTracker tracker, CatastrophicOverfittingDetector detector,
        List<EpochMetrics> history, List<TrainingEvent> events, double elapsed, ImageDataset source, ImageDataset trainSet, ImageDataset? valSet)
    {
        using var scope = NewDisposeScope();
        var tensors = new List<KeyValuePair<string, Tensor>>();
        tensors.AddRange(_model.Module.state_dict().Select(kv => KeyValuePair.Create("model." + kv.Key, kv.Value)));
        if (best is not null) tensors.AddRange(best.Select(kv => KeyValuePair.Create("best." + kv.Key, kv.Value)));
        tensors.AddRange(optimizer.State().Select(kv => KeyValuePair.Create("optim." + kv.Key, kv.Value)));
        tensors.Add(KeyValuePair.Create("rng.generator", generator.get_state()));
        tensors.Add(KeyValuePair.Create("rng.augment", augmentGenerator.get_state()));
        tensors.Add(KeyValuePair.Create("rng.torch", random.get_rng_state()));
        if (_objectiveState is { } objectiveState)
            tensors.AddRange(objectiveState.Save().Select(kv => KeyValuePair.Create("objective." + kv.Key, kv.Value)));
        if (_average is { } average) tensors.AddRange(average.State().Select(kv => KeyValuePair.Create("ema." + kv.Key, kv.Value)));
        var manifest = new CheckpointManifest
        {
            EpochsCompleted = epoch,
            Iteration = iteration,
            Finished = finished,
            StopReason = stopReason,
            Options = _options,
            Objective = _objective.Name,
            ObjectiveParameters = ParameterText.FormatAll(_objective.Parameters),
            BestEpoch = tracker.BestEpoch,
            BestScore = tracker.BestScore,
            DetectorBestRobust = detector.BestRobustAccuracy,
            DetectorPreviousFgsm = detector.PreviousFgsmAccuracy,
            History = history.ToList(),
            Events = events.ToList(),
            ElapsedSeconds = elapsed,
            Data = source.Source,
            TrainCount = trainSet.Count,
            ValidationCount = valSet?.Count ?? 0,
        };
        TrainingCheckpoint.Write(outputDir, manifest, tensors);
    }

    private TrainingReport Report(ImageDataset source, ImageDataset trainSet, ImageDataset? valSet, IReadOnlyList<EpochMetrics> history,
        IReadOnlyList<TrainingEvent> events, BestEpochTracker tracker, string? stopReason, double seconds, string? outputDir, int epochsRun) => new()
    {
        Defense = _objective.Name,
        DefenseParameters = ParameterText.FormatAll(_objective.Parameters),
        Epsilon = _objective.Epsilon,
        Norm = _objective.Norm.Name(),
        EpochsPlanned = _options.Epochs,
        EpochsRun = epochsRun,
        Seed = _options.Seed,
        Data = source.Source,
        DataName = source.Name,
        TrainCount = trainSet.Count,
        ValidationCount = valSet?.Count ?? 0,
        Options = _options,
        Final = history.Count > 0 ? history[^1] : null,
        BestEpoch = tracker.BestEpoch,
        BestScore = tracker.BestScore,
        History = history.ToList(),
        Events = events.ToList(),
        StopReason = stopReason,
        WallSeconds = seconds,
        OutputDirectory = outputDir,
        BestModelPath = outputDir is null ? null : Path.Combine(outputDir, ModelFileName("best")),
        LastModelPath = outputDir is null ? null : Path.Combine(outputDir, ModelFileName("last")),
    };

    internal static string MetricsLine(EpochMetrics m)
    {
        var line = MetricsFields(m);
        if (m.ValidationHammingAccuracy is { } h) line["val_hamming_acc"] = h;
        if (m.ValidationRobustHammingAccuracy is { } rh) line["val_robust_hamming_acc"] = rh;
        return JsonSerializer.Serialize(line);
    }

    private static Dictionary<string, object?> MetricsFields(EpochMetrics m) => new()
    {
        ["epoch"] = m.Epoch,
        ["lr"] = m.LearningRate,
        ["train_loss"] = m.TrainLoss,
        ["train_clean_acc"] = m.TrainCleanAccuracy,
        ["train_adv_acc"] = m.TrainAdversarialAccuracy,
        ["val_clean_acc"] = m.ValidationCleanAccuracy,
        ["val_robust_acc"] = m.ValidationRobustAccuracy,
        ["val_fgsm_acc"] = m.ValidationFgsmAccuracy,
        ["seconds"] = m.Seconds,
        ["eps"] = m.Epsilon,
        ["events"] = m.Events,
        ["grad_norms"] = m.GradientNorms,
    };

    /// <summary>CPU copies of every parameter and buffer (the best-so-far weights).</summary>
    private static Dictionary<string, Tensor> Snapshot(nn.Module module)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().clone().DetachFromDisposeScope());
    }

    private static void RestoreWeights(nn.Module module, Dictionary<string, Tensor> weights) => LoadInto(module.state_dict(), weights, "");

    private static void LoadInto(Dictionary<string, Tensor> destination, IReadOnlyDictionary<string, Tensor> source, string prefix)
    {
        using var _ = no_grad();
        foreach (var (key, dest) in destination)
        {
            if (!source.TryGetValue(prefix + key, out var t))
                throw new InputException($"checkpoint: tensor '{prefix}{key}' is missing (was it made for another architecture?)");
            if (!t.shape.SequenceEqual(dest.shape))
                throw new InputException($"checkpoint: tensor '{prefix}{key}' has shape [{string.Join(",", t.shape)}], the model has [{string.Join(",", dest.shape)}]");
            dest.copy_(t); // copy_ converts dtype and device itself (to() may alias its source)
        }
    }

    private static Dictionary<string, Tensor> Prefixed(Dictionary<string, Tensor> tensors, string prefix) =>
        tensors.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[prefix.Length..], kv => kv.Value);

    private static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        if (tensors is null) return;
        foreach (var t in tensors.Values) t.Dispose();
    }
}
