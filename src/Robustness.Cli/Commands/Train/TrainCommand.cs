using System.CommandLine;
using System.Globalization;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Data;
using Robustness.Defenses;
using Robustness.Models;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Cli.Commands.Train;

/// <summary>Everything `robust train` was asked to do.</summary>
public sealed record TrainRunOptions
{
    public string Arch { get; init; } = "tiny-cnn";
    /// <summary>Fine-tune this model file (TorchScript archive, our .safetensors, a zoo state dict with --arch) instead of a fresh zoo model.</summary>
    public string? Model { get; init; }
    /// <summary>The --arch given explicitly (for state dicts with --model).</summary>
    public bool ArchGiven { get; init; }
    public InputContract Contract { get; init; } = InputContract.None;
    public string Data { get; init; } = "fashion-mnist";
    public string? DataDir { get; init; }
    public int? TrainSize { get; init; }
    public string Defense { get; init; } = "none";
    public Norm Norm { get; init; } = Norm.Linf;
    public double Epsilon { get; init; }
    public int? Steps { get; init; }
    public double? StepSize { get; init; }
    public double AdvRatio { get; init; } = 1.0;
    public double Beta { get; init; } = 6.0;
    public double Sigma { get; init; } = 0.1;
    public double KappaEnd { get; init; } = 0.5;
    public string AttackMode { get; init; } = "eval";
    public int? Replays { get; init; }
    public string? LabelFocus { get; init; }
    public string? MlpHidden { get; init; }
    public string Activation { get; init; } = "relu";
    /// <summary>K sigmoid outputs trained with BCE against multi-hot labels (the data must be multi-label).</summary>
    public bool MultiLabel { get; init; }
    public bool AllowEmptyLabels { get; init; }
    /// <summary>Single-label: K sigmoid outputs trained with BCE against one-hot labels (one-vs-rest).</summary>
    public bool OneVsRest { get; init; }
    /// <summary>Multi-label: tune the decision threshold on the held-out images for this metric and store it.</summary>
    public ThresholdMetric? TuneThreshold { get; init; }
    public double Dropout { get; init; }
    public int Window { get; init; }
    public string Init { get; init; } = "default";
    public int RecurrentHidden { get; init; } = ModelZoo.DefaultRecurrentHidden;
    public int RecurrentLayers { get; init; } = 1;
    public required TrainingOptions Training { get; init; }
    public string? Resume { get; init; }
    /// <summary>Start from the weights of this model file (same architecture), e.g. FGSM-RS before PGD-AT.</summary>
    public string? From { get; init; }
    /// <summary>The options as given (with defaults), saved for `--resume DIR`.</summary>
    public IReadOnlyDictionary<string, string>? Arguments { get; init; }
    public required string Out { get; init; }
}

/// <summary>`robust train`: standard or adversarial training of a zoo model, or fine-tuning of a given model
/// (TorchScript archives are written back as TorchScript); best/last model files, metrics, curves, checkpoints.</summary>
public sealed class TrainCommand(TrainRunOptions o)
{
    public static readonly IReadOnlyList<string> Defenses = ["none", .. TrainingObjectives.Names.Skip(1)];

    /// <summary>IBP's schedule when --eps-warmup / --eps-ramp are not given: warm-up for 5 % of the epochs, then ε and κ
    /// ramp over the next 40 % (Gowal et al. warm up for 3 % and ramp over 17 % of their steps; Zhang et al. 2020 found
    /// longer ramps better for certified accuracy).</summary>
    public const double IbpWarmupFraction = 0.05, IbpRampFraction = 0.4;

    private static readonly Option<string> ArchOption = new("--arch") { Description = $"Architecture: {string.Join(", ", ModelZoo.Names)}.", DefaultValueFactory = _ => "tiny-cnn" };
    private static readonly Option<string?> ModelOption = new("--model")
    {
        Description = "Fine-tune this model instead of training a fresh one: a TorchScript archive (torch.jit.save; best.pt/last.pt are written back as " +
            "TorchScript), one of our .safetensors files, or a zoo state dict with --arch. ONNX graphs are not written back: export TorchScript to fine-tune.",
    };
    private static readonly ModelContractOptions ContractOptions = new();
    private static readonly Option<string> DataOption = SharedOptions.Data();
    private static readonly Option<string?> DataDirOption = SharedOptions.DataDir();
    private static readonly Option<int?> TrainSizeOption = new("--train-size") { Description = "Use only the first N training images (quick experiments)." };
    private static readonly Option<int> EpochsOption = new("--epochs") { Description = "Passes over the training set.", DefaultValueFactory = _ => 10 };
    private static readonly Option<string> OptimizerOption = new("--optimizer") { Description = "sgd or adam.", DefaultValueFactory = _ => "sgd" };
    private static readonly Option<double> LrOption = new("--lr") { Description = "Learning rate (peak LR for one-cycle).", DefaultValueFactory = _ => 0.05 };
    private static readonly Option<double> MomentumOption = new("--momentum") { Description = "SGD momentum.", DefaultValueFactory = _ => 0.9 };
    private static readonly Option<double> WeightDecayOption = new("--weight-decay") { Description = "L2 weight decay.", DefaultValueFactory = _ => 5e-4 };
    private static readonly Option<string> ScheduleOption = new("--schedule") { Description = "LR schedule: constant, step, cosine, one-cycle.", DefaultValueFactory = _ => "cosine" };
    private static readonly Option<string> DefenseOption = new("--defense") { Description = "none (standard), pgd (Madry), fgsm-rs (Wong et al.), trades (Zhang et al.), gaussian (noise, for randomized smoothing), ibp (interval bound propagation, Gowal et al.; L∞), crown-ibp (Zhang et al. 2020; L∞).", DefaultValueFactory = _ => "none" };
    private static readonly Option<string> NormOption = SharedOptions.Norm();
    private static readonly Option<double> EpsOption = new("--eps") { Description = "Training ε (pixels in [0,1]).", DefaultValueFactory = _ => 0.1 };
    private static readonly Option<int?> StepsOption = new("--steps") { Description = "Inner attack steps (pgd default 7, trades 10)." };
    private static readonly Option<double?> StepSizeOption = new("--step-size") { Description = "Inner attack step size α (default 2.5·ε/steps; fgsm-rs 1.25·ε)." };
    private static readonly Option<double> AdvRatioOption = new("--adv-ratio") { Description = "pgd: weight of the adversarial loss (1 = adversarial only).", DefaultValueFactory = _ => 1.0 };
    private static readonly Option<double> BetaOption = new("--beta") { Description = "trades: weight β of the KL term.", DefaultValueFactory = _ => 6.0 };
    private static readonly Option<double> SigmaOption = new("--sigma") { Description = "gaussian: noise standard deviation.", DefaultValueFactory = _ => 0.1 };
    private static readonly Option<double> KappaEndOption = new("--kappa-end") { Description = "ibp, crown-ibp: final weight κ of the clean loss (κ goes from 1 to this value over the ε ramp).", DefaultValueFactory = _ => 0.5 };
    private static readonly Option<string> AttackModeOption = new("--attack-mode") { Description = "Model mode while generating training attacks: eval (BatchNorm statistics untouched) or train.", DefaultValueFactory = _ => "eval" };
    private static readonly Option<string> AttackPrecisionOption = new("--attack-precision")
    {
        Description = "Arithmetic of the training attack's gradient passes: float32, or bf16 with --defense pgd (a bf16 copy of the network refreshed " +
            "every batch; the training step, validation and the saved model stay float32; about 2x faster PGD-7 epochs at the same robust accuracy, docs/performance.md).",
        DefaultValueFactory = _ => "float32",
    };
    private static readonly Option<string> TrainPrecisionOption = new("--train-precision")
    {
        Description = "Arithmetic of the training step's forward and backward passes: float32, or bf16 with --defense pgd (mixed precision: the " +
            "loss runs through the same bf16 copy as the attack, its gradients are applied in float32 to float32 weights; not for BatchNorm networks; docs/time-to-robust.md).",
        DefaultValueFactory = _ => "float32",
    };
    private static readonly Option<int> BnRecomputeOption = new("--bn-recompute")
    {
        Description = "After every epoch, re-estimate BatchNorm running statistics as an average over the first N training images (0 = off); " +
            "for short runs, whose moving averages lag behind the weights (docs/results.md).",
        DefaultValueFactory = _ => 0,
    };
    private static readonly Option<double?> EmaOption = new("--ema")
    {
        Description = "Keep an exponential moving average of the weights with this decay (e.g. 0.999), updated every step; validation, best/last " +
            "and the final model use the average (Gowal et al. 2020: more robust accuracy, less robust overfitting). Recorded as training.weight_average.",
    };
    private static readonly Option<string?> LabelFocusOption = new("--label-focus")
    {
        Description = $"pgd on a --multi-label model: which decisions the inner attack goes after: {string.Join(", ", LabelFocusNames.Names)} " +
            "(all = the whole label set's BCE; weakest = per image the decision closest to flipping, alone, as the evaluation's per-label attacks do; mixed = half of each batch each; default all).",
    };
    private static readonly Option<int?> ReplaysOption = new("--replays") { Description = $"free: replays m of each minibatch (default {FreeAdversarialObjective.DefaultReplays}); the run takes m optimizer steps per minibatch, so use about epochs/m epochs." };
    private static readonly Option<double?> TargetRobustOption = new("--target-robust")
    {
        Description = "Stop as soon as the validation robust accuracy (PGD-10 at --eps on the held-out images) reaches this fraction, e.g. 0.74; " +
            "the best model is then confirmed with PGD-20 on the full test set and the time to reach it is written to time-to-robust.json.",
    };
    private static readonly Option<double?> EpsRampOption = new("--eps-ramp") { Description = $"Epochs over which ε grows linearly from 0 (default 0; ibp, crown-ibp: {IbpRampFraction:P0} of the epochs)." };
    private static readonly Option<double?> EpsWarmupOption = new("--eps-warmup") { Description = $"Epochs of clean training (ε = 0) before the ramp (default 0; ibp, crown-ibp: {IbpWarmupFraction:P0} of the epochs)." };
    private static readonly Option<int> ValSizeOption = new("--val-size") { Description = "Training images held out for per-epoch (robust) validation.", DefaultValueFactory = _ => 1000 };
    private static readonly Option<string?> MlpHiddenOption = new("--mlp-hidden") { Description = "mlp: hidden widths, e.g. 256,256." };
    private static readonly Option<string> ActivationOption = new("--activation") { Description = "mlp: relu, tanh, sigmoid or linear.", DefaultValueFactory = _ => "relu" };
    private static readonly Option<bool> MultiLabelOption = new("--multi-label")
    {
        Description = "Multi-label model for a multi-label dataset (e.g. fashion-mnist-multi, or a folder with labels.csv): K sigmoid outputs, " +
            "binary cross-entropy with logits; PGD-AT's inner attack maximises the BCE, TRADES uses the per-label Bernoulli KL. Decision threshold 0.5 unless --tune-threshold.",
    };
    private static readonly Option<bool> AllowEmptyOption = SharedOptions.AllowEmptyLabels();
    private static readonly Option<bool> OneVsRestOption = new("--one-vs-rest") { Description = "Single-label data: K sigmoid outputs trained with BCE against one-hot labels (one-vs-rest, e.g. --arch logistic); predictions stay arg-max." };
    private static readonly Option<string?> TuneThresholdOption = new("--tune-threshold")
    {
        Description = "With --multi-label: after training, choose the decision threshold (0.05…0.95) that maximises subset, hamming, f1 or robust-hamming " +
            "(Hamming accuracy when PGD-10 at --eps attacks every decision on its own, as the evaluation's per-label stages do) on the held-out images (--val-size) " +
            "and store it in best/last.safetensors.",
    };
    private static readonly Option<double> DropoutOption = new("--dropout") { Description = "Dropout probability on the classifier head (train mode only; 0 = none).", DefaultValueFactory = _ => 0.0 };
    private static readonly Option<int> WindowOption = new("--window")
    {
        Description = "tiny-cnn/fmnist-cnn: the classifier head reads each W×W-pixel block of the input on its own and keeps each class's " +
                      "largest logit (global max pooling; for multi-label images made of items, e.g. 28 on fashion-mnist-multi). " +
                      "A multiple of 4 that divides the input; 0 = the whole input.",
        DefaultValueFactory = _ => 0,
    };
    private static readonly Option<string> InitOption = new("--init") { Description = $"Initial weights: {string.Join(", ", WeightInits.Names)} (default = PyTorch's per-layer defaults).", DefaultValueFactory = _ => "default" };
    private static readonly Option<int> RnnHiddenOption = new("--rnn-hidden") { Description = "lstm/gru: hidden units per layer.", DefaultValueFactory = _ => ModelZoo.DefaultRecurrentHidden };
    private static readonly Option<int> RnnLayersOption = new("--rnn-layers") { Description = "lstm/gru: stacked recurrent layers (1 or 2).", DefaultValueFactory = _ => 1 };
    private static readonly Option<string> AugmentOption = new("--augment")
    {
        Description = "Data augmentation of every training batch, on the device: crop (random crop after padding by --crop-padding), flip (horizontal, p = 0.5), both as crop,flip, or none. Seeded by --seed; recorded in the model's metadata.",
        DefaultValueFactory = _ => "none",
    };
    private static readonly Option<int> CropPaddingOption = new("--crop-padding") { Description = "Padding of the random crop, pixels per side (2–4 is usual).", DefaultValueFactory = _ => Augmentation.DefaultCropPadding };
    private static readonly Option<long> SeedOption = SharedOptions.Seed();
    private static readonly Option<int> BatchOption = SharedOptions.BatchSize(128);
    private static readonly Option<string> DeviceOption = SharedOptions.Device();
    private static readonly Option<int> ThreadsOption = SharedOptions.Threads();
    private static readonly Option<string?> ResumeOption = new("--resume") { Description = "Continue the run checkpointed in this directory (after a crash or kill)." };
    private static readonly Option<string?> FromOption = new("--from") { Description = "Start from the weights of this model file (same architecture and shape), e.g. a standard or FGSM-RS model before PGD-AT; recorded with its SHA-256." };
    private static readonly Option<string?> OutOption = new("--out") { Description = "Output directory: best.safetensors, last.safetensors, metrics.jsonl, training-curves.png, checkpoint/." };

    public static Command Definition()
    {
        var command = new Command("train", "Train a zoo model, normally or adversarially (PGD-AT, FGSM-RS, TRADES).")
        {
            ArchOption, DataOption, DataDirOption, TrainSizeOption, EpochsOption, OptimizerOption, LrOption, MomentumOption, WeightDecayOption,
            ScheduleOption, DefenseOption, NormOption, EpsOption, StepsOption, StepSizeOption, AdvRatioOption, BetaOption, SigmaOption, KappaEndOption,
            AttackModeOption, AttackPrecisionOption, TrainPrecisionOption, BnRecomputeOption, EmaOption, ReplaysOption, LabelFocusOption, TargetRobustOption, EpsRampOption, EpsWarmupOption, ValSizeOption, MlpHiddenOption, ActivationOption,
            DropoutOption, WindowOption, InitOption, RnnHiddenOption, RnnLayersOption, AugmentOption, CropPaddingOption,
            MultiLabelOption, OneVsRestOption, TuneThresholdOption, AllowEmptyOption, SeedOption, BatchOption, DeviceOption,
            ThreadsOption, ResumeOption, FromOption, OutOption, ModelOption,
        };
        foreach (var option in ContractOptions.All) command.Options.Add(option);
        CommandRunner.SetAction(command, p =>
        {
            var resume = p.GetValue(ResumeOption);
            // `--resume DIR` alone continues the run with the options it was started with (saved beside its checkpoint).
            if (resume is not null && TrainArguments.TryLoad(resume) is { } saved)
            {
                p = command.Parse(TrainArguments.ForResume(p, resume, saved));
                if (p.Errors.Count > 0) throw new InputException($"--resume: {Path.Combine(resume, TrainArguments.FileName)}: {p.Errors[0].Message}");
            }
            var outDir = p.GetValue(OutOption) ?? resume ?? throw new InputException("--out: required (or --resume DIR)");
            var threads = p.GetValue(ThreadsOption);
            var epochs = p.GetValue(EpochsOption);
            bool certified = p.GetValue(DefenseOption)!.Trim().ToLowerInvariant() is "ibp" or "crown-ibp";
            if (threads < 0) throw new InputException($"--threads: must be ≥ 0, got {threads}");
            var training = new TrainingOptions
            {
                Epochs = epochs,
                BatchSize = p.GetValue(BatchOption),
                Optimizer = p.GetValue(OptimizerOption)!.Trim().ToLowerInvariant() switch
                {
                    "sgd" => OptimizerKind.Sgd,
                    "adam" => OptimizerKind.Adam,
                    var s => throw new InputException($"--optimizer: unknown optimizer '{s}' (valid: sgd, adam)"),
                },
                LearningRate = p.GetValue(LrOption),
                Momentum = p.GetValue(MomentumOption),
                WeightDecay = p.GetValue(WeightDecayOption),
                Schedule = p.GetValue(ScheduleOption)!.Trim().ToLowerInvariant() switch
                {
                    "constant" => LearningRateScheduleKind.Constant,
                    "step" => LearningRateScheduleKind.Step,
                    "cosine" => LearningRateScheduleKind.Cosine,
                    "one-cycle" or "onecycle" => LearningRateScheduleKind.OneCycle,
                    var s => throw new InputException($"--schedule: unknown schedule '{s}' (valid: constant, step, cosine, one-cycle)"),
                },
                EpsRampEpochs = p.GetValue(EpsRampOption) ?? (certified ? IbpRampFraction * epochs : 0),
                EpsWarmupEpochs = p.GetValue(EpsWarmupOption) ?? (certified ? IbpWarmupFraction * epochs : 0),
                TargetRobustAccuracy = p.GetValue(TargetRobustOption),
                AttackPrecision = GradientPrecisions.Parse(p.GetValue(AttackPrecisionOption)!, "--attack-precision"),
                StepPrecision = GradientPrecisions.Parse(p.GetValue(TrainPrecisionOption)!, "--train-precision"),
                BatchNormRecomputeImages = p.GetValue(BnRecomputeOption),
                WeightAverageDecay = p.GetValue(EmaOption),
                Seed = p.GetValue(SeedOption),
                Device = p.GetValue(DeviceOption)!,
                ValidationSize = p.GetValue(ValSizeOption),
                Threads = threads == 0 ? Math.Max(1, Environment.ProcessorCount) : threads,
                OutputDirectory = outDir,
                Augmentation = Augmentation.Parse(p.GetValue(AugmentOption), p.GetValue(CropPaddingOption)),
            };
            return new TrainCommand(new TrainRunOptions
            {
                Arch = p.GetValue(ArchOption)!,
                ArchGiven = p.GetResult(ArchOption) is { Implicit: false },
                Model = p.GetValue(ModelOption),
                Contract = ContractOptions.Read(p),
                Data = p.GetValue(DataOption)!,
                DataDir = p.GetValue(DataDirOption),
                TrainSize = p.GetValue(TrainSizeOption),
                Defense = p.GetValue(DefenseOption)!,
                Norm = NormNames.Parse(p.GetValue(NormOption)!),
                Epsilon = p.GetValue(EpsOption),
                Steps = p.GetValue(StepsOption),
                StepSize = p.GetValue(StepSizeOption),
                AdvRatio = p.GetValue(AdvRatioOption),
                Beta = p.GetValue(BetaOption),
                Sigma = p.GetValue(SigmaOption),
                KappaEnd = p.GetValue(KappaEndOption),
                AttackMode = p.GetValue(AttackModeOption)!,
                Replays = p.GetValue(ReplaysOption),
                LabelFocus = p.GetValue(LabelFocusOption),
                MlpHidden = p.GetValue(MlpHiddenOption),
                Activation = p.GetValue(ActivationOption)!,
                MultiLabel = p.GetValue(MultiLabelOption),
                AllowEmptyLabels = p.GetValue(AllowEmptyOption),
                OneVsRest = p.GetValue(OneVsRestOption),
                TuneThreshold = p.GetValue(TuneThresholdOption) is { } metric ? ThresholdTuning.Parse(metric) : null,
                Dropout = p.GetValue(DropoutOption),
                Window = p.GetValue(WindowOption),
                Init = p.GetValue(InitOption)!,
                RecurrentHidden = p.GetValue(RnnHiddenOption),
                RecurrentLayers = p.GetValue(RnnLayersOption),
                Training = training,
                Resume = resume,
                From = p.GetValue(FromOption),
                Arguments = ResumeArguments(p),
                Out = outDir,
            }).Execute();
        });
        return command;
    }

    /// <summary>The options saved for `--resume`. A fine-tuned model brings its own architecture: --arch is saved only
    /// when it was given (a state dict needs it), so the default cannot contradict the model's file on resume.</summary>
    private static Dictionary<string, string> ResumeArguments(ParseResult p)
    {
        var arguments = TrainArguments.Capture(p);
        if (p.GetValue(ModelOption) is not null && p.GetResult(ArchOption) is not { Implicit: false }) arguments.Remove(ArchOption.Name);
        return arguments;
    }

    public ITrainingObjective Objective()
    {
        var keepMode = o.AttackMode.Trim().ToLowerInvariant() switch
        {
            "eval" => false,
            "train" => true,
            var s => throw new InputException($"--attack-mode: '{s}' is not eval or train"),
        };
        return TrainingObjectives.Create(o.Defense, new DefenseSettings
        {
            Norm = o.Norm, Epsilon = o.Epsilon, Steps = o.Steps, StepSize = o.StepSize,
            AdvRatio = o.AdvRatio, Beta = o.Beta, Sigma = o.Sigma, KeepModelMode = keepMode, KappaEnd = o.KappaEnd, Replays = o.Replays,
            LabelFocus = o.LabelFocus is { } focus ? LabelFocusNames.Parse(focus) : null,
        });
    }

    public int Execute()
    {
        var objective = Objective();
        if (o.Training.AttackPrecision != GradientPrecision.Float32 && !objective.ReducedPrecisionValidated)
        {
            // The policy is the library's (ITrainingObjective.ReducedPrecisionValidated); here it is said in flags.
            var offered = TrainingObjectives.Names.Where(n => TrainingObjectives.Create(n, new DefenseSettings()).ReducedPrecisionValidated);
            throw new InputException($"--attack-precision {o.Training.AttackPrecision.Name()}: offered only with --defense {string.Join(", ", offered)}, where it matched " +
                $"float32 robust accuracy within 0.5 points; with '{o.Defense}' it did not or was not measured (docs/performance.md)");
        }
        if (o.Training.StepPrecision != GradientPrecision.Float32 && !objective.ReducedPrecisionValidated)
            throw new InputException($"--train-precision {o.Training.StepPrecision.Name()}: offered only with --defense pgd, where reduced precision was measured; " +
                $"with '{o.Defense}' it was not (docs/time-to-robust.md)");
        if (o.Model is null && o.Contract.IsGiven)
            throw new InputException("--input-shape, --bounds, --mean, --std, --labels: describe a model given with --model (a fresh zoo model takes the data's shape)");
        if (o.LabelFocus is not null && !(o.MultiLabel && objective is PgdAdversarialObjective))
            throw new InputException("--label-focus: is for --defense pgd on a --multi-label model (the decisions its inner attack goes after)");
        if (o.MultiLabel && o.OneVsRest) throw new InputException("--one-vs-rest: single-label models only; a --multi-label model always has one sigmoid per label");
        if (o.TuneThreshold is not null && !o.MultiLabel) throw new InputException("--tune-threshold: needs --multi-label (single-label models predict the arg-max class)");
        if (o.TuneThreshold is not null && o.Training.ValidationSize == 0) throw new InputException("--tune-threshold: needs held-out images (--val-size > 0)");
        if (o.Model is not null && o.OneVsRest) throw new InputException("--one-vs-rest: is for a fresh zoo model; --model brings its own output layer");
        var device = Devices.Parse(o.Training.Device);
        if (o.Training.Threads is { } t) set_num_threads(t);
        using var train = LoadTrain();
        if (train.MultiLabel && !o.MultiLabel)
            throw new InputException($"--multi-label: {o.Data} is a multi-label dataset (label sets); train it with --multi-label");
        if (o.MultiLabel && !train.MultiLabel)
            throw new InputException($"--multi-label: {o.Data} has one class per image; multi-label training needs label sets (e.g. fashion-mnist-multi, or a folder with labels.csv)");
        using var test = TryLoadTest();
        random.manual_seed(o.Training.Seed);
        using var loaded = o.Model is null ? null : LoadToFineTune(device, train);
        using var fresh = loaded is null ? CreateZooModel(device, train) : null;
        var model = loaded?.Classifier ?? fresh!;
        IModelWriter writer = loaded?.Format == ModelFormat.TorchScript ? TorchScriptModelWriter.Instance : ModelFileWriter.Instance;
        if (o.Model is { } basePath)
            writer = new BaseModelProvenance(writer, new Dictionary<string, string>
            {
                ["fine_tuned_from"] = Path.GetFullPath(basePath),
                ["fine_tuned_from_sha256"] = ModelFile.Sha256(basePath),
            });
        if (model.Spec.MultiLabel && objective is IbpObjective or CrownIbpObjective)
            throw new InputException($"--defense {o.Defense}: certified training bounds the margins of one top-1 class; a multi-label model has one decision per label (use pgd, free or trades)");
        Trainer.CheckStepPrecision(model, o.Training);
        // Warnings come after every check, so that bad input is still exactly one line.
        foreach (var warning in new[] { NativeBf16.Warning(o.Training.AttackPrecision, device, "--attack-precision"), NativeBf16.Warning(o.Training.StepPrecision, device, "--train-precision") })
            if (warning is not null) Console.Error.WriteLine($"robust: warning: {warning}");
        using var outLock = OutputLock.Acquire(o.Out);
        if (o.Resume is null && o.Arguments is { } arguments) TrainArguments.Save(o.Out, new Dictionary<string, string>(arguments));

        var hook = new ConsoleTrainingHook();
        var trainer = new Trainer(model, objective, o.Training, [hook]) { ModelWriter = writer, ReducedPrecisionViews = Bf16Views.Instance };
        TrainingReport report = null!;
        hook.Run(o.Training.Epochs, () =>
        {
            report = o.Resume is { } dir ? trainer.Resume(dir, train) : trainer.Fit(train);
        });

        var table = new Table().AddColumn("epoch").AddColumn("lr").AddColumn("loss").AddColumn("train clean").AddColumn("train adv").AddColumn("val clean").AddColumn("val robust").AddColumn("s");
        foreach (var m in report.History)
            table.AddRow(m.Epoch.ToString(CultureInfo.InvariantCulture), m.LearningRate.ToString("G3", CultureInfo.InvariantCulture), m.TrainLoss.ToString("F4", CultureInfo.InvariantCulture),
                Pct(m.TrainCleanAccuracy), Pct(m.TrainAdversarialAccuracy), Pct(m.ValidationCleanAccuracy), Pct(m.ValidationRobustAccuracy), m.Seconds.ToString("F0", CultureInfo.InvariantCulture));
        CommandRunner.Out.Write(table);
        foreach (var e in report.Events)
            CommandRunner.Out.MarkupLine($"[yellow]{Markup.Escape($"epoch {e.Epoch}: {e.Kind}: {e.Message}")}[/]");
        (double Accuracy, int Images)? testAccuracy = null;
        if (o.TuneThreshold is { } metric)
            foreach (var path in new[] { report.BestModelPath, report.LastModelPath })
                if (path is not null && File.Exists(path)) TuneAndStore(path, train, metric, device);
        if (test is not null && report.BestModelPath is { } best && File.Exists(best))
        {
            using var bestModel = ModelLoader.Load(best, device, loaded?.Format == ModelFormat.TorchScript ? FineTuneContract(train) : null, null);
            if (test.MultiLabel)
            {
                var counts = MultiLabelAccuracy.Counts(bestModel.Classifier, test, o.Training.BatchSize * 2);
                CommandRunner.Out.MarkupLine($"test accuracy of {Markup.Escape(best)} (threshold {bestModel.Classifier.Spec.DecisionThreshold.ToString("0.##", CultureInfo.InvariantCulture)}): " +
                    $"subset [bold]{Pct(counts.SubsetAccuracy)}[/], Hamming [bold]{Pct(counts.HammingAccuracy)}[/], micro-F1 {Pct(counts.MicroF1)} ({test.Count} images)");
            }
            else
            {
                var acc = Accuracy.Clean(bestModel.Classifier, test, o.Training.BatchSize * 2);
                CommandRunner.Out.MarkupLine($"test accuracy of {Markup.Escape(best)}: [bold]{Pct(acc)}[/] ({test.Count} images)");
                testAccuracy = (acc, test.Count);
            }
        }
        var timeToRobust = o.Training.TargetRobustAccuracy is { } target
            ? ConfirmTarget(report, target, test, device, loaded?.Format == ModelFormat.TorchScript ? FineTuneContract(train) : null)
            : null;
        CommandRunner.Out.MarkupLine($"wall time {report.WallSeconds:F0} s; best epoch {report.BestEpoch}; files in {Markup.Escape(Path.GetFullPath(o.Out))}");
        JsonOutput.Write(new Dictionary<string, object?>
        {
            ["output"] = Path.GetFullPath(o.Out),
            ["best_model"] = report.BestModelPath,
            ["last_model"] = report.LastModelPath,
            ["defense"] = report.Defense,
            ["defense_parameters"] = report.DefenseParameters,
            ["norm"] = report.Norm,
            ["epsilon"] = report.Epsilon,
            ["seed"] = report.Seed,
            ["data"] = report.DataName,
            ["train_count"] = report.TrainCount,
            ["validation_count"] = report.ValidationCount,
            ["epochs_planned"] = report.EpochsPlanned,
            ["epochs_run"] = report.EpochsRun,
            ["best_epoch"] = report.BestEpoch,
            ["best_score"] = report.BestScore,
            ["stop_reason"] = report.StopReason,
            ["wall_seconds"] = report.WallSeconds,
            ["history"] = report.History,
            ["events"] = report.Events,
            ["test_accuracy"] = testAccuracy?.Accuracy,
            ["test_images"] = testAccuracy?.Images,
            ["time_to_robust"] = timeToRobust,
        });
        return ExitCodes.Ok;
    }

    /// <summary>Tunes the threshold of a saved multi-label model on the trainer's held-out images (the same seeded
    /// split) and rewrites the file with it (atomically).</summary>
    private void TuneAndStore(string path, ImageDataset train, ThresholdMetric metric, Device device)
    {
        var (rest, validation) = ValidationSplit.Split(train, o.Training.ValidationSize, o.Training.Seed);
        using (rest)
        using (validation)
        {
            var attack = metric == ThresholdMetric.RobustHammingAccuracy
                ? new ThresholdAttack(o.Epsilon, o.Norm) { Seed = o.Training.Seed }
                : null;
            using var model = ModelFile.Load(path, device);
            ThresholdFile.TuneAndSave(model, path, validation, metric, attack, o.Training.BatchSize * 2, device);
        }
    }

    /// <summary>Copies the weights (and BN statistics) of <paramref name="path"/> into the new model; the architecture,
    /// input shape, classes and every architecture option must agree.</summary>
    private static void StartFrom(TorchClassifier model, string path)
    {
        using var source = ModelFile.Load(path, model.Device);
        var (a, b) = (ModelZoo.OptionsFor(source.Spec) with { Init = WeightInit.Default }, ModelZoo.OptionsFor(model.Spec) with { Init = WeightInit.Default });
        bool same = source.Spec.Arch == model.Spec.Arch && source.Spec.InputShape.SequenceEqual(model.Spec.InputShape) && a.NumClasses == b.NumClasses
            && a.Dropout == b.Dropout && a.Window == b.Window && a.RecurrentHidden == b.RecurrentHidden && a.RecurrentLayers == b.RecurrentLayers && a.Activation == b.Activation
            && (a.Hidden ?? []).SequenceEqual(b.Hidden ?? []);
        if (!same)
            throw new InputException($"--from: {path} is a {source.Spec.Arch} [{string.Join(",", source.Spec.InputShape)}] with other architecture options than the model being trained ({model.Spec.Arch} [{string.Join(",", model.Spec.InputShape)}], --dropout, --rnn-*, --mlp-hidden and --activation must match)");
        ModelFile.CopyInto(model.Network, new Robustness.Core.Formats.StateDict(source.Network.state_dict()), path);
    }

    /// <summary>
    /// The race's finish line: the model at the stop (last.safetensors) attacked with PGD-20 (random start, α = 2.5·ε/20)
    /// on the full test set through the evaluator, and time-to-robust.json with the time the validation reached the target.
    /// </summary>
    private Dictionary<string, object?> ConfirmTarget(TrainingReport report, double target, ImageDataset? test, Device device, InputContract? contract)
    {
        var result = new Dictionary<string, object?>
        {
            ["target_robust_accuracy"] = target,
            ["reached"] = report.TargetReachedEpoch is not null,
            ["epoch"] = report.TargetReachedEpoch,
            ["seconds_to_target"] = report.TargetReachedSeconds,
            ["wall_seconds"] = report.WallSeconds,
            ["validation"] = $"PGD-{o.Training.ValidationPgdSteps} on {report.ValidationCount} held-out training images",
            ["defense"] = report.Defense,
            ["eps"] = o.Epsilon,
            ["norm"] = o.Norm.Name(),
            ["seed"] = o.Training.Seed,
            ["provenance"] = RunProvenance.Describe(device, o.Training.Seed),
        };
        if (test is not null && report.LastModelPath is { } last && File.Exists(last))
        {
            using var loadedLast = ModelLoader.Load(last, device, contract, null);
            var model = loadedLast.Classifier;
            var options = new Robustness.Evaluation.EvaluationOptions
            {
                Norm = o.Norm,
                Epsilon = o.Epsilon,
                Attacks = new Robustness.Evaluation.RegistryAttackSuite("pgd", new Robustness.Attacks.AttackOptions { Steps = 20 }),
                BatchSize = 256,
                Seed = o.Training.Seed,
                SanityChecks = false,
                ImageCount = 0,
            };
            Robustness.Evaluation.RobustnessReport confirmed = null!;
            ProgressReporter.Run($"PGD-20 on the {test.Count} test images", progress => confirmed = new Robustness.Evaluation.Evaluator().Evaluate(model, test, options, progress).Report);
            result["test_images"] = test.Count;
            result["test_clean_accuracy"] = confirmed.CleanAccuracy;
            result["test_pgd20_robust_accuracy"] = confirmed.RobustAccuracy;
            result["model"] = Path.GetFullPath(last);
            result["model_sha256"] = ModelFile.Sha256(last);
            CommandRunner.Out.MarkupLine($"target {Pct(target)} {(report.TargetReachedEpoch is { } e ? $"reached in epoch {e} after {report.TargetReachedSeconds:F0} s" : "not reached")}; " +
                $"test (full): clean [bold]{Pct(confirmed.CleanAccuracy)}[/], PGD-20 [bold]{Pct(confirmed.RobustAccuracy)}[/]");
        }
        AtomicFile.WriteAllText(Path.Combine(o.Out, "time-to-robust.json"), Json.Serialize(result));
        return result;
    }

    private TorchClassifier CreateZooModel(Device device, ImageDataset train)
    {
        var spec = ModelZoo.DefaultSpec(o.Arch, new ZooOptions
        {
            InputShape = train.SampleShape,
            NumClasses = train.NumClasses,
            Hidden = o.MlpHidden is { } h ? ModelZoo.ParseHidden(h, "--mlp-hidden") : null,
            Activation = o.Activation,
            Dropout = o.Dropout,
            Window = o.Window,
            RecurrentHidden = o.RecurrentHidden,
            RecurrentLayers = o.RecurrentLayers,
            Init = WeightInits.Parse(o.Init),
        }) with { Labels = train.ClassNames, MultiLabel = o.MultiLabel };
        if (o.OneVsRest) spec = spec with { Extra = new Dictionary<string, string>(spec.Extra) { [ModelMetadata.Output] = "sigmoid" } };
        if (!spec.InputShape.SequenceEqual(train.SampleShape))
            throw new InputException($"--arch: {o.Arch} takes inputs [{string.Join(",", spec.InputShape)}] but {o.Data} has [{string.Join(",", train.SampleShape)}]");
        if (o.From is { } from)
            spec = spec with { Extra = new Dictionary<string, string>(spec.Extra) { ["training.from"] = Path.GetFileName(from), ["training.from_sha256"] = ModelFile.Sha256(from) } };
        var model = ModelZoo.CreateClassifier(o.Arch, device, spec, WeightInits.Parse(o.Init));
        try
        {
            if (o.From is { } start) StartFrom(model, start);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The contract of a file without our metadata: as given, the shape falling back to the data's.</summary>
    private InputContract FineTuneContract(ImageDataset train) =>
        o.Contract with { FallbackInputShape = train.SampleShape, FallbackSource = $"--data {o.Data}" };

    /// <summary>The model to fine-tune, white-box, with its own trainable parameters; it must take the data.</summary>
    private LoadedModel LoadToFineTune(Device device, ImageDataset train)
    {
        var path = o.Model!;
        if (o.From is not null) throw new InputException("--from: not with --model (the model file is already where training starts)");
        if (o.MlpHidden is not null) throw new InputException("--mlp-hidden: is for a fresh mlp; --model brings its own architecture");
        bool needsContract = ModelLoader.NeedsContract(path);
        var loaded = ModelLoader.Load(path, device, needsContract ? FineTuneContract(train) : o.Contract, o.ArchGiven ? o.Arch : null);
        try
        {
            if (loaded.Format == ModelFormat.Onnx)
                throw new InputException($"--model: {path} is an ONNX graph, which is not written back after training; fine-tune a TorchScript archive (torch.jit.save) instead");
            LoadedRun.CheckCompatible(train, loaded.Classifier.Spec, o.Data);
            return loaded;
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    private ImageDataset LoadTrain()
    {
        var full = DatasetCatalog.Load(o.Data, "train", o.DataDir, new ImageFolderOptions { AllowEmptyLabels = o.AllowEmptyLabels });
        if (o.TrainSize is not { } size) return full;
        using (full)
        {
            if (size <= 0 || size > full.Count) throw new InputException($"--train-size: must be in 1..{full.Count}, got {size}");
            return full.Take(size);
        }
    }

    private ImageDataset? TryLoadTest()
    {
        try { return DatasetCatalog.Load(o.Data, "test", o.DataDir, new ImageFolderOptions { AllowEmptyLabels = o.AllowEmptyLabels }); }
        catch (InputException) { return null; }
    }

    private static string Pct(double? v) => v is { } x ? (100 * x).ToString("F2", CultureInfo.InvariantCulture) : "–";
}

/// <summary>A live Spectre.Console progress bar over the training iterations with the running loss and accuracies.</summary>
internal sealed class ConsoleTrainingHook : ITrainingHook
{
    private ProgressTask? _task;
    private string _status = "";

    public void Run(int epochs, Action work)
    {
        if (!JsonOutput.ProgressVisible)
        {
            work();
            return;
        }
        CommandRunner.Out.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                _task = ctx.AddTask("training", maxValue: 1);
                work();
            });
    }

    public void OnBatchEnd(BatchProgress p, TrainingState state)
    {
        if (_task is null) return;
        _task.MaxValue = Math.Max(1, (double)state.Epochs * p.BatchesPerEpoch);
        _task.Value = p.Iteration;
        if (p.RunningLoss is { } loss)
            _status = FormattableString.Invariant($"loss {loss:F3} clean {100 * (p.RunningCleanAccuracy ?? 0):F1}% adv {(p.RunningAdversarialAccuracy is { } a ? $"{100 * a:F1}%" : "–")}");
        _task.Description = Markup.Escape($"epoch {p.Epoch}/{state.Epochs} {_status}");
    }

    public void OnEvent(TrainingEvent e)
    {
        if (!JsonOutput.ProgressVisible) Console.WriteLine($"epoch {e.Epoch}: {e.Kind}: {e.Message}");
    }

    public void OnEpochEnd(EpochMetrics m, TrainingState state)
    {
        if (!JsonOutput.ProgressVisible)
            Console.WriteLine(FormattableString.Invariant($"epoch {m.Epoch}: loss {m.TrainLoss:F4} val clean {m.ValidationCleanAccuracy:P2} val robust {m.ValidationRobustAccuracy:P2} ({m.Seconds:F0} s)"));
    }
}

/// <summary>Adds where a fine-tuned model came from (the base file and its SHA-256) to what the trainer records.</summary>
internal sealed class BaseModelProvenance(IModelWriter inner, IReadOnlyDictionary<string, string> extra) : IModelWriter
{
    public string FileExtension => inner.FileExtension;

    public void Save(IGradientClassifier model, string path, IReadOnlyDictionary<string, string> metadata)
    {
        var all = new Dictionary<string, string>(metadata);
        foreach (var (k, v) in extra) all[k] = v;
        inner.Save(model, path, all);
    }
}
