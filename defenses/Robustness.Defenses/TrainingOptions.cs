using System.Globalization;
using Robustness.Core;

namespace Robustness.Defenses;

public enum OptimizerKind { Sgd, Adam }

public enum LearningRateScheduleKind { Constant, Step, Cosine, OneCycle }

/// <summary>
/// Everything that shapes a training run (model, data and objective come separately). Stored in checkpoints so a
/// resumed run can check it continues the same experiment.
/// </summary>
public sealed record TrainingOptions
{
    public int Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 128;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;
    /// <summary>Base (constant/step/cosine) or peak (one-cycle) learning rate.</summary>
    public double LearningRate { get; init; } = 0.1;
    public double Momentum { get; init; } = 0.9;
    public double WeightDecay { get; init; } = 5e-4;
    public bool Nesterov { get; init; }
    public double AdamBeta1 { get; init; } = 0.9;
    public double AdamBeta2 { get; init; } = 0.999;
    public double AdamEpsilon { get; init; } = 1e-8;
    public LearningRateScheduleKind Schedule { get; init; } = LearningRateScheduleKind.Constant;
    /// <summary>Step schedule: epochs (fractional allowed) at which the LR is multiplied by <see cref="StepGamma"/>;
    /// empty = at 50% and 75% of the run.</summary>
    public IReadOnlyList<double> StepMilestones { get; init; } = [];
    public double StepGamma { get; init; } = 0.1;
    /// <summary>ε grows linearly from 0 to the objective's ε over this many epochs (per iteration); 0 = full ε from the start.</summary>
    public double EpsRampEpochs { get; init; }
    /// <summary>Epochs at ε = 0 before the ramp starts (the warm-up of IBP training); 0 = ramp from the first iteration.</summary>
    public double EpsWarmupEpochs { get; init; }
    public long Seed { get; init; }
    /// <summary>"cpu", "cuda", "cuda:N" or "auto".</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>Images held out of the training set (seeded permutation) for per-epoch validation; 0 = none.</summary>
    public int ValidationSize { get; init; } = 1000;
    public int ValidationBatchSize { get; init; } = 256;
    /// <summary>PGD steps of the robust validation (α = ε/4, random start).</summary>
    public int ValidationPgdSteps { get; init; } = 10;
    /// <summary>Stop as soon as the validation robust accuracy (PGD-<see cref="ValidationPgdSteps"/> at the training ε)
    /// reaches this fraction; the report records when (time to a robust model). Null: train all epochs.</summary>
    public double? TargetRobustAccuracy { get; init; }
    /// <summary>ε for robust validation; null = the objective's training ε (no robust validation when that is 0).</summary>
    public double? ValidationEpsilon { get; init; }
    /// <summary>Stop and restore the best epoch when robust validation accuracy collapses; null = on for FGSM-RS.</summary>
    public bool? DetectCatastrophicOverfitting { get; init; }
    /// <summary>Intra-op threads for libtorch; null = leave as is. Fixed thread counts keep CPU runs bit-reproducible.</summary>
    public int? Threads { get; init; }
    /// <summary>Loss and accuracy are read to the host only every this many batches (and at the end of an epoch).</summary>
    public int LogEvery { get; init; } = 50;
    /// <summary>Where checkpoints, best/last model files, metrics.jsonl and curves go; null = keep nothing on disk.</summary>
    public string? OutputDirectory { get; init; }
    /// <summary>Arithmetic of the training attack's gradient passes. Bf16 runs them through a bf16 copy of the network,
    /// refreshed from the float32 weights before every batch; the training step itself (forward, backward, optimizer),
    /// validation and the saved model stay float32. Needs a zoo architecture (the copy is rebuilt from it). Measured on
    /// Fashion-MNIST (docs/performance.md): PGD-AT kept its robust accuracy (within 0.05 points), FGSM-RS lost 0.58
    /// points, so `robust train` offers it only for PGD-AT.</summary>
    public GradientPrecision AttackPrecision { get; init; } = GradientPrecision.Float32;
    /// <summary>Arithmetic of the training step's forward and backward passes. Bf16 is mixed precision by hand (TorchSharp
    /// 0.107 has no autocast): the loss is taken on the same bf16 copy the attack uses, its weight gradients are
    /// converted to float32 and the optimizer applies them to the float32 weights, so the weights, the optimizer's
    /// state, validation and the saved model stay float32. Refused for networks with BatchNorm running statistics
    /// (they would be updated in bf16) and, like <see cref="AttackPrecision"/>, offered only where it was measured.</summary>
    public GradientPrecision StepPrecision { get; init; } = GradientPrecision.Float32;
    /// <summary>After every epoch, before validation, re-estimate the BatchNorm running statistics as a cumulative average
    /// over the first this many training images, unaugmented (<see cref="BatchNormStatistics"/>); 0 = keep the training
    /// run's moving averages. For short runs, whose moving averages lag behind the weights.</summary>
    public int BatchNormRecomputeImages { get; init; }
    /// <summary>Decay of an exponential moving average of the weights, updated after every optimizer step
    /// (<see cref="WeightAverage"/>); validation, the best/last model files and the trained model at the end use the
    /// average, training continues from the live weights. Null = off. 0.999 is usual for runs of a few thousand steps.</summary>
    public double? WeightAverageDecay { get; init; }
    /// <summary>Drop the last incomplete batch of each epoch.</summary>
    public bool DropLast { get; init; }
    /// <summary>Random crop and/or horizontal flip of every training batch, on the device (<see cref="Defenses.Augmentation"/>);
    /// seeded from <see cref="Seed"/>, checkpointed, recorded in the model's provenance.</summary>
    public Augmentation Augmentation { get; init; } = Augmentation.None;

    /// <summary>Throws <see cref="InputException"/> naming the option that is out of range.</summary>
    public TrainingOptions Validate()
    {
        if (Epochs < 1) throw new ParameterException("Epochs", $"must be ≥ 1, got {Epochs}");
        if (BatchSize < 1) throw new ParameterException("BatchSize", $"must be ≥ 1, got {BatchSize}");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ParameterException("LearningRate", $"must be a finite number > 0, got {Inv(LearningRate)}");
        if (WeightAverageDecay is { } wad && !(wad > 0 && wad < 1)) throw new ParameterException(nameof(WeightAverageDecay), $"must be in (0, 1), got {Inv(wad)}");
        if (BatchNormRecomputeImages < 0) throw new ParameterException("BatchNormRecomputeImages", $"must be ≥ 0, got {BatchNormRecomputeImages}");
        if (!(Momentum >= 0 && Momentum < 1)) throw new ParameterException("Momentum", $"must be in [0, 1), got {Inv(Momentum)}");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) throw new ParameterException("WeightDecay", $"must be a finite number ≥ 0, got {Inv(WeightDecay)}");
        if (Nesterov && Momentum == 0) throw new ParameterException("Nesterov", "needs momentum > 0");
        if (!(AdamBeta1 >= 0 && AdamBeta1 < 1) || !(AdamBeta2 >= 0 && AdamBeta2 < 1)) throw new ParameterException("AdamBetas", "both must be in [0, 1)");
        if (!(AdamEpsilon > 0)) throw new ParameterException("AdamEpsilon", $"must be > 0, got {Inv(AdamEpsilon)}");
        if (!(StepGamma > 0) || double.IsInfinity(StepGamma)) throw new ParameterException("StepGamma", $"must be a finite number > 0, got {Inv(StepGamma)}");
        if (StepMilestones.Any(m => !(m >= 0) || double.IsInfinity(m))) throw new ParameterException("StepMilestones", "epochs must be finite numbers ≥ 0");
        if (!(EpsRampEpochs >= 0) || EpsRampEpochs > Epochs) throw new ParameterException("EpsRampEpochs", $"must be in [0, epochs = {Epochs}], got {Inv(EpsRampEpochs)}");
        if (!(EpsWarmupEpochs >= 0) || EpsWarmupEpochs + EpsRampEpochs > Epochs)
            throw new ParameterException("EpsWarmupEpochs", $"warm-up + ramp must be in [0, epochs = {Epochs}], got {Inv(EpsWarmupEpochs)} + {Inv(EpsRampEpochs)}");
        if (ValidationSize < 0) throw new ParameterException("ValidationSize", $"must be ≥ 0, got {ValidationSize}");
        if (ValidationBatchSize < 1) throw new ParameterException("ValidationBatchSize", $"must be ≥ 1, got {ValidationBatchSize}");
        if (TargetRobustAccuracy is { } target && !(target > 0 && target <= 1)) throw new ParameterException(nameof(TargetRobustAccuracy), $"must be in (0, 1], got {target}");
        if (ValidationPgdSteps < 1) throw new ParameterException("ValidationPgdSteps", $"must be ≥ 1, got {ValidationPgdSteps}");
        if (ValidationEpsilon is { } ve && (!(ve >= 0) || double.IsInfinity(ve))) throw new ParameterException("ValidationEpsilon", $"must be a finite number ≥ 0, got {Inv(ve)}");
        if (Threads is { } t && t < 1) throw new ParameterException("Threads", $"must be ≥ 1, got {t}");
        if (LogEvery < 1) throw new ParameterException("LogEvery", $"must be ≥ 1, got {LogEvery}");
        if (Seed < 0) throw new ParameterException("Seed", $"must be ≥ 0, got {Seed}");
        (Augmentation ?? throw new ParameterException(nameof(Augmentation), "must not be null")).Validate();
        return this;
    }

    private static string Inv(double v) => v.ToString(CultureInfo.InvariantCulture);
}
