using System.Globalization;
using System.Text.Json;
using Robustness.Core;

namespace Robustness.Defenses;

/// <summary>The summary of a run; <see cref="ToMetadata"/> is the model file's provenance.</summary>
public sealed record TrainingReport
{
    public required string Defense { get; init; }
    public required IReadOnlyDictionary<string, string> DefenseParameters { get; init; }
    public double Epsilon { get; init; }
    public string Norm { get; init; } = "linf";
    public int EpochsPlanned { get; init; }
    public int EpochsRun { get; init; }
    public long Seed { get; init; }
    /// <summary>Where the training data came from (a path).</summary>
    public string Data { get; init; } = "";
    /// <summary>The training set's name (e.g. "fashion-mnist").</summary>
    public string DataName { get; init; } = "";
    public int TrainCount { get; init; }
    public int ValidationCount { get; init; }
    public required TrainingOptions Options { get; init; }
    public EpochMetrics? Final { get; init; }
    public int? BestEpoch { get; init; }
    public double? BestScore { get; init; }
    public IReadOnlyList<EpochMetrics> History { get; init; } = [];
    public IReadOnlyList<TrainingEvent> Events { get; init; } = [];
    public string? StopReason { get; init; }
    public double WallSeconds { get; init; }
    public string? OutputDirectory { get; init; }
    public string? BestModelPath { get; init; }
    public string? LastModelPath { get; init; }
    /// <summary>With <see cref="TrainingOptions.TargetRobustAccuracy"/>: the epoch whose validation reached it, and the
    /// wall time from the start of training to the end of that epoch's validation (resumed runs add their earlier time).</summary>
    public int? TargetReachedEpoch { get; init; }
    public double? TargetReachedSeconds { get; init; }

    /// <summary>Metadata keys that later tools read back: the data's name and the seeded training/held-out split.</summary>
    public const string DataKey = "data", EpsilonKey = "training.eps", NormKey = "training.norm", SeedKey = "training.seed",
        TrainCountKey = "training.train_count", ValidationCountKey = "training.val_count";

    /// <summary>String metadata for the model file: what defense, ε, steps, step size, epochs, seed, data and final metrics.</summary>
    public IReadOnlyDictionary<string, string> ToMetadata()
    {
        var inv = CultureInfo.InvariantCulture;
        var d = new Dictionary<string, string>
        {
            [DataKey] = DataName,
            ["seed"] = Seed.ToString(inv),
            ["tool_version"] = ToolInfo.Version,
            ["training.defense"] = Defense,
            [EpsilonKey] = Epsilon.ToString("R", inv),
            [NormKey] = Norm,
            ["training.epochs"] = EpochsRun.ToString(inv),
            ["training.epochs_planned"] = EpochsPlanned.ToString(inv),
            [SeedKey] = Seed.ToString(inv),
            ["training.data"] = Data,
            [TrainCountKey] = TrainCount.ToString(inv),
            [ValidationCountKey] = ValidationCount.ToString(inv),
            ["training.optimizer"] = Options.Optimizer.ToString().ToLowerInvariant(),
            ["training.lr"] = Options.LearningRate.ToString("R", inv),
            ["training.lr_schedule"] = Options.Schedule.ToString().ToLowerInvariant(),
            ["training.batch_size"] = Options.BatchSize.ToString(inv),
            ["training.attack_precision"] = Options.AttackPrecision.Name(),
            ["training.step_precision"] = Options.StepPrecision.Name(),
            ["training.bn_recompute_images"] = Options.BatchNormRecomputeImages.ToString(inv),
            ["training.augment"] = Options.Augmentation.ToString(),
            ["training.weight_average"] = Options.WeightAverageDecay is { } ema ? "ema " + ema.ToString("R", inv) : "none",
            ["training.wall_seconds"] = WallSeconds.ToString("F1", inv),
        };
        foreach (var (k, v) in DefenseParameters) d[$"training.{k}"] = v;
        if (Final is { } f) d["training.final_metrics"] = JsonSerializer.Serialize(f, TrainingCheckpoint.Json).ReplaceLineEndings("");
        if (BestEpoch is { } b) d["training.best_epoch"] = b.ToString(inv);
        if (StopReason is { } s) d["training.stop_reason"] = s;
        if (Events.Count > 0) d["training.events"] = string.Join("; ", Events.Select(e => e.ToString()));
        return d;
    }
}
