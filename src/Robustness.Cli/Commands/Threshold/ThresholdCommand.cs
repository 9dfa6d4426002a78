using System.CommandLine;
using System.Globalization;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Data;
using Robustness.Defenses;
using Robustness.Models;
using static TorchSharp.torch;

namespace Robustness.Cli.Commands.Threshold;

/// <summary>Everything `robust threshold` was asked to do; null = read from the model's training metadata.</summary>
public sealed record ThresholdRunOptions
{
    public required string Model { get; init; }
    public required ThresholdMetric Metric { get; init; }
    public required string Out { get; init; }
    public string? Data { get; init; }
    public string? DataDir { get; init; }
    public int? ValidationSize { get; init; }
    public long? Seed { get; init; }
    public double? Epsilon { get; init; }
    public string? Norm { get; init; }
    public int Steps { get; init; } = 10;
    public int BatchSize { get; init; } = 256;
    public string Device { get; init; } = "auto";
    public int Threads { get; init; }
}

/// <summary>
/// `robust threshold MODEL --metric M --out FILE`: tunes a multi-label model's decision threshold after training, on the
/// held-out images of the split it was trained with (seed and size from its metadata, so no training image is used),
/// and writes a copy that carries it, as `robust train --tune-threshold` does at the end of a run.
/// </summary>
public sealed class ThresholdCommand(ThresholdRunOptions o)
{
    private static readonly Argument<string> ModelArg = new("model") { Description = "A multi-label .safetensors model file." };
    private static readonly Option<string> MetricOption = new("--metric")
    {
        Description = "What the threshold maximises on the held-out images: subset, hamming, f1, or robust-hamming (Hamming accuracy when PGD at --eps " +
            "attacks every decision on its own, as the evaluation's per-label stages do).",
        Required = true,
    };
    private static readonly Option<string?> DataOption = new("--data") { Description = "The training data of the model (default: the model's metadata)." };
    private static readonly Option<string?> DataDirOption = SharedOptions.DataDir();
    private static readonly Option<int?> ValSizeOption = new("--val-size") { Description = "Held-out images of the training split (default: the model's training.val_count)." };
    private static readonly Option<long?> SeedOption = new("--seed") { Description = "Seed of the training split, and of the attack's random starts (default: the model's training.seed)." };
    private static readonly Option<double?> EpsOption = new("--eps") { Description = "robust-hamming: ε (default: the model's training ε)." };
    private static readonly Option<string?> NormOption = new("--norm") { Description = "robust-hamming: linf or l2 (default: the model's training norm, else linf)." };
    private static readonly Option<int> StepsOption = new("--steps") { Description = "robust-hamming: PGD steps per decision.", DefaultValueFactory = _ => 10 };
    private static readonly Option<int> BatchOption = SharedOptions.BatchSize(256);
    private static readonly Option<string> DeviceOption = SharedOptions.Device();
    private static readonly Option<int> ThreadsOption = SharedOptions.Threads();
    private static readonly Option<string> OutOption = SharedOptions.Out("Where to write the model with the tuned threshold (may be the input file; written atomically).");

    public static Command Definition()
    {
        var command = new Command("threshold", "Tune a multi-label model's decision threshold on the held-out images of its training split and write the model with it.")
        {
            ModelArg, MetricOption, DataOption, DataDirOption, ValSizeOption, SeedOption, EpsOption, NormOption, StepsOption, BatchOption, DeviceOption, ThreadsOption, OutOption,
        };
        CommandRunner.SetAction(command, p => new ThresholdCommand(new ThresholdRunOptions
        {
            Model = p.GetValue(ModelArg)!,
            Metric = ParseMetric(p.GetValue(MetricOption)!),
            Out = p.GetValue(OutOption)!,
            Data = p.GetValue(DataOption),
            DataDir = p.GetValue(DataDirOption),
            ValidationSize = p.GetValue(ValSizeOption),
            Seed = p.GetValue(SeedOption),
            Epsilon = p.GetValue(EpsOption),
            Norm = p.GetValue(NormOption),
            Steps = p.GetValue(StepsOption),
            BatchSize = p.GetValue(BatchOption),
            Device = p.GetValue(DeviceOption)!,
            Threads = p.GetValue(ThreadsOption),
        }).Execute());
        return command;
    }

    private ImageDataset LoadTrain(string data)
    {
        try { return DatasetCatalog.Load(data, "train", o.DataDir); }
        catch (InputException) when (o.Data is null)
        {
            throw new InputException($"--data: {o.Model} records its training data as '{data}', which is not a dataset name or path found here; give --data");
        }
    }

    private static ThresholdMetric ParseMetric(string text)
    {
        try { return ThresholdTuning.Parse(text); }
        catch (ParameterException e) { throw new InputException($"--metric: {e.Problem}"); }
    }

    public int Execute()
    {
        SharedOptions.RequirePositive(o.Steps, "--steps");
        SharedOptions.RequirePositive(o.BatchSize, "--batch-size");
        SharedOptions.ApplyThreads(o.Threads);
        var device = Devices.Parse(o.Device);
        using var model = ModelFile.Load(o.Model, device);
        var spec = model.Spec;
        var sha256 = ModelFile.Sha256(o.Model); // before --out may overwrite it
        if (!spec.MultiLabel) throw new InputException($"{o.Model}: not a multi-label model (single-label models predict the arg-max class)");
        string Recorded(string key, string option) => spec.Extra.TryGetValue(key, out var v) ? v
            : throw new InputException($"{option}: {o.Model} does not record it ({key}); give {option}");
        var data = o.Data ?? Recorded(TrainingReport.DataKey, "--data");
        int valSize = o.ValidationSize ?? int.Parse(Recorded(TrainingReport.ValidationCountKey, "--val-size"), CultureInfo.InvariantCulture);
        long seed = o.Seed ?? long.Parse(Recorded(TrainingReport.SeedKey, "--seed"), CultureInfo.InvariantCulture);
        ThresholdAttack? attack = null;
        if (o.Metric == ThresholdMetric.RobustHammingAccuracy)
        {
            var eps = o.Epsilon ?? double.Parse(Recorded(TrainingReport.EpsilonKey, "--eps"), CultureInfo.InvariantCulture);
            if (!(eps > 0) || double.IsInfinity(eps)) throw new InputException($"--eps: must be a finite number > 0, got {eps}");
            var norm = NormNames.Parse(o.Norm ?? (spec.Extra.TryGetValue(TrainingReport.NormKey, out var n) ? n : "linf"));
            attack = new ThresholdAttack(eps, norm) { Steps = o.Steps, Seed = seed };
        }
        else if (o.Epsilon is not null || o.Norm is not null)
            throw new InputException($"--eps, --norm: only for --metric robust-hamming, not {ThresholdTuning.Name(o.Metric)}");

        using var train = LoadTrain(data);
        if (!train.MultiLabel) throw new InputException($"--data: {data} has one class per image; the model is multi-label");
        if (o.ValidationSize is null && spec.Extra.TryGetValue(TrainingReport.TrainCountKey, out var trained)
            && int.Parse(trained, CultureInfo.InvariantCulture) + valSize != train.Count)
            throw new InputException($"--data: {o.Model} was trained on {trained} + {valSize} held-out images, but {data} has {train.Count} training images; give --val-size and --seed of its split");
        if (valSize <= 0 || valSize >= train.Count) throw new InputException($"--val-size: must be in 1..{train.Count - 1}, got {valSize}");
        var (rest, validation) = ValidationSplit.Split(train, valSize, seed);
        using (rest)
        using (validation)
        {
            var tuned = ThresholdFile.TuneAndSave(model, o.Out, validation, o.Metric, attack, o.BatchSize, device);
            JsonOutput.Write(new Dictionary<string, object?>
            {
                ["model"] = Path.GetFullPath(o.Model),
                ["model_sha256"] = sha256,
                ["output"] = Path.GetFullPath(o.Out),
                ["metric"] = tuned.MetricName,
                ["threshold"] = tuned.Threshold,
                ["score"] = tuned.Score,
                ["score_at_half"] = tuned.ScoreAtHalf,
                ["held_out_images"] = tuned.Samples,
                ["seed"] = seed,
                ["data"] = data,
            });
        }
        return ExitCodes.Ok;
    }
}
