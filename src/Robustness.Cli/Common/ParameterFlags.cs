using System.CommandLine;
using Robustness.Core;

namespace Robustness.Cli.Common;

/// <summary>
/// The one place where library parameter names become command-line flags. Libraries throw
/// <see cref="ParameterException"/> naming their own parameter (<c>Epsilon</c>, <c>Steps</c>); the CLI shows the flag
/// of the running verb that sets it (<c>--eps</c>, <c>--steps</c>), or the parameter's name when the verb has no such
/// flag. Verbs whose flag differs from the common one override it (eval maps <c>Attack</c> to <c>--attacks</c>).
/// </summary>
public static class ParameterFlags
{
    public static IReadOnlyDictionary<string, string> Common { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["Device"] = "--device", ["BatchSize"] = "--batch-size", ["Threads"] = "--threads", ["Seed"] = "--seed",
        ["Norm"] = "--norm", ["Epsilon"] = "--eps", ["SweepEpsilons"] = "--eps-sweep", ["Bounds"] = "--bounds",
        ["Arch"] = "--arch", ["Dataset"] = "--data", ["Split"] = "--split", ["SampleIndices"] = "--indices", ["SampleCount"] = "--n",
        ["Attack"] = "--attack", ["Attacks"] = "--attacks", ["ImageCount"] = "--images", ["SanitySubset"] = "--sanity-subset",
        ["Shard"] = "--shard", ["Precision"] = "--precision", ["AttackPrecision"] = "--attack-precision", ["StepPrecision"] = "--train-precision", ["BatchNormRecomputeImages"] = "--bn-recompute", ["WeightAverageDecay"] = "--ema",
        ["Steps"] = "--steps", ["StepSize"] = "--step-size", ["RelativeStepSize"] = "--rel-step-size", ["Restarts"] = "--restarts",
        ["Targeted"] = "--targeted", ["TargetMode"] = "--target-mode", ["TargetCount"] = "--target-count", ["Loss"] = "--loss",
        ["Queries"] = "--queries", ["SquareHalvingFrom"] = "--square-halving", ["HalvingFrom"] = "--square-halving", ["EarlyStop"] = "--early-stop", ["Momentum"] = "--momentum", ["Confidence"] = "--confidence", ["L1Sparsity"] = "--l1-sparsity",
        ["Epochs"] = "--epochs", ["LearningRate"] = "--lr", ["WeightDecay"] = "--weight-decay", ["Schedule"] = "--schedule",
        ["Optimizer"] = "--optimizer", ["EpsRampEpochs"] = "--eps-ramp", ["ValidationSize"] = "--val-size", ["AdvRatio"] = "--adv-ratio", ["LabelFocus"] = "--label-focus",
        ["AlphaFactor"] = "--step-size", ["Beta"] = "--beta", ["Sigma"] = "--sigma", ["Defense"] = "--defense",
        ["MlpHidden"] = "--mlp-hidden", ["Activation"] = "--activation", ["AttackMode"] = "--attack-mode", ["Patience"] = "--patience",
        ["EpsWarmupEpochs"] = "--eps-warmup", ["KappaEnd"] = "--kappa-end", ["N0"] = "--n0", ["N"] = "--noise-samples", ["Alpha"] = "--alpha",
        ["CheckPoints"] = "--check-points", ["CheckSamples"] = "--check-samples", ["CertifyIbp"] = "--certify",
        ["InputShape"] = "--input-shape", ["Mean"] = "--mean", ["Std"] = "--std", ["Labels"] = "--labels",
        ["Resize"] = "--resize", ["CenterCrop"] = "--center-crop", ["ResultsDatabase"] = "--results-db",
        ["EotSamples"] = "--eot", ["InputNoise"] = "--input-noise", ["Surrogate"] = "--transfer-from", ["Backend"] = "--backend",
        ["Dropout"] = "--dropout", ["Window"] = "--window", ["Init"] = "--init", ["RecurrentHidden"] = "--rnn-hidden", ["RecurrentLayers"] = "--rnn-layers",
        ["Augmentation"] = "--augment", ["CropPadding"] = "--crop-padding",
        ["TargetLabels"] = "--target-labels", ["FlipCount"] = "--flip", ["LabelAttacks"] = "--label-attacks", ["ThresholdMetric"] = "--tune-threshold",
        ["AllowEmptyLabels"] = "--allow-empty-labels",
    };

    /// <summary>The flag for <paramref name="parameter"/> on <paramref name="command"/> (parameters given as flags pass through).</summary>
    public static string For(string parameter, Command? command, IReadOnlyDictionary<string, string>? overrides = null)
    {
        if (parameter.StartsWith('-')) return parameter;
        if (!(overrides?.TryGetValue(parameter, out var flag) ?? false) && !Common.TryGetValue(parameter, out flag)) return parameter;
        return command is null || Has(command, flag) ? flag : parameter;
    }

    /// <summary>The user-facing message of a library's bad-input exception.</summary>
    public static string Message(InputException e, Command? command, IReadOnlyDictionary<string, string>? overrides = null) =>
        e is ParameterException p ? $"{For(p.Parameter, command, overrides)}: {p.Problem}" : e.Message;

    private static bool Has(Command command, string flag)
    {
        for (var c = command; c is not null; c = c.Parents.OfType<Command>().FirstOrDefault())
            if (c.Options.Any(o => o.Name == flag || o.Aliases.Contains(flag))) return true;
        return false;
    }
}
