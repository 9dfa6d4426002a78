using System.Globalization;
using Robustness.Core;
using Robustness.Data.Toy;

namespace Robustness.Playground;

/// <summary>
/// Everything a user sets on the page: the whole state that the URL carries (keys as in the TF Playground where it has
/// them: percTrainData, batchSize, networkShape, learningRate, regularizationRate, …). Immutable; a change is a new
/// state, applied by <see cref="With(IReadOnlyDictionary{string, string})"/>, which validates every key like CLI input.
/// Network weights are not part of it (neither are they in the TF Playground's URL): Reset re-draws them from the seed.
/// </summary>
public sealed record PlaygroundState
{
    public const int MaxHiddenLayers = 6;
    public const int MaxNeurons = 8;

    public static readonly IReadOnlyList<string> FeatureNames = ["x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2"];
    public static readonly IReadOnlyList<string> Activations = ["relu", "tanh", "sigmoid", "linear"];
    public static readonly IReadOnlyList<string> Regularizations = ["none", "l1", "l2"];
    public static readonly IReadOnlyList<string> ObjectiveNames = ["standard", "pgd", "trades", "gaussian", "fgsm-rs"];
    public static readonly IReadOnlyList<string> OptimizerNames = ["sgd", "minibatch", "momentum", "full"];
    public static readonly IReadOnlyList<string> InitNames = ["random", "zeros"];

    public string Dataset { get; init; } = "circle";
    public string RegDataset { get; init; } = "plane";
    public ToyProblem Problem { get; init; } = ToyProblem.Classification;
    /// <summary>Training share of the data, 10–90 %.</summary>
    public int PercTrainData { get; init; } = 50;
    /// <summary>Noise 0–50 (the generators get noise/100).</summary>
    public int Noise { get; init; }
    public int BatchSize { get; init; } = 10;
    public long Seed { get; init; } = 1;
    public IReadOnlyList<string> Features { get; init; } = ["x1", "x2"];
    public IReadOnlyList<int> NetworkShape { get; init; } = [4, 2];
    public double LearningRate { get; init; } = 0.03;
    public string Activation { get; init; } = "tanh";
    public string Regularization { get; init; } = "none";
    public double RegularizationRate { get; init; }
    public string Init { get; init; } = "random";
    public string Optimizer { get; init; } = "minibatch";
    /// <summary>Momentum α of the "momentum" optimizer.</summary>
    public double Momentum { get; init; } = 0.9;
    /// <summary>Weight decay λ (added to the gradient, all parameters, as torch.optim.SGD).</summary>
    public double WeightDecay { get; init; }

    public Norm Norm { get; init; } = Norm.Linf;
    public double Epsilon { get; init; } = 0.3;
    public int AttackSteps { get; init; } = 10;
    /// <summary>PGD step α relative to ε.</summary>
    public double AttackStepSize { get; init; } = 0.25;
    public string Objective { get; init; } = "standard";
    /// <summary>Inner PGD / TRADES steps during adversarial training.</summary>
    public int TrainSteps { get; init; } = 5;
    public double Beta { get; init; } = 6;
    public double Sigma { get; init; } = 0.5;
    /// <summary>Side by side: a standard-trained twin on the same data, seed and schedule.</summary>
    public bool Compare { get; init; } = true;

    public bool ShowTestData { get; init; }
    public bool Discretize { get; init; }
    public bool ShowBalls { get; init; }
    public bool ShowAttack { get; init; }
    public bool ShowCertified { get; init; }

    public bool IsClassification => Problem == ToyProblem.Classification;
    public string ActiveDataset => IsClassification ? Dataset : RegDataset;
    public bool Adversarial => Objective is "pgd" or "trades" or "fgsm-rs";
    /// <summary>A twin is trained only when it would differ from the main network.</summary>
    public bool HasTwin => Compare && Objective != "standard";
    /// <summary>Examples per update: 1 for SGD, the training set for full batch, else the batch size.</summary>
    public int EffectiveBatchSize(int trainCount) => Optimizer switch
    {
        "sgd" => 1,
        "full" => trainCount,
        _ => BatchSize,
    };
    public double EffectiveMomentum => Optimizer == "momentum" ? Momentum : 0;
    public ThreatModel Threat => new(Norm, Epsilon, ToyDatasets.Bounds);

    /// <summary>Keys whose change rebuilds data and network (the TF Playground resets on these too).</summary>
    public bool NeedsRebuild(PlaygroundState other) =>
        Dataset != other.Dataset || RegDataset != other.RegDataset || Problem != other.Problem || PercTrainData != other.PercTrainData
        || Noise != other.Noise || Seed != other.Seed || !Features.SequenceEqual(other.Features) || !NetworkShape.SequenceEqual(other.NetworkShape)
        || Activation != other.Activation || Init != other.Init;

    /// <summary>The optimizer is rebuilt (momentum buffers cleared) when these change.</summary>
    public bool NeedsNewOptimizer(PlaygroundState other) =>
        EffectiveMomentum != other.EffectiveMomentum || WeightDecay != other.WeightDecay;

    /// <summary>This state with the given keys changed; every key and value is checked.</summary>
    public PlaygroundState With(IReadOnlyDictionary<string, string> changes)
    {
        var s = this;
        foreach (var (key, raw) in changes)
        {
            var v = raw.Trim();
            s = key switch
            {
                "dataset" => s with { Dataset = OneOf(key, v, ToyDatasets.ClassificationNames) },
                "regDataset" => s with { RegDataset = OneOf(key, v, ToyDatasets.RegressionNames) },
                "problem" => s with { Problem = OneOf(key, v, ["classification", "regression"]) == "classification" ? ToyProblem.Classification : ToyProblem.Regression },
                "percTrainData" => s with { PercTrainData = Int(key, v, 10, 90) },
                "noise" => s with { Noise = Int(key, v, 0, 50) },
                "batchSize" => s with { BatchSize = Int(key, v, 1, 30) },
                "seed" => s with { Seed = Long(key, v, 0, int.MaxValue) },
                "features" => s with { Features = ParseFeatures(v) },
                "networkShape" => s with { NetworkShape = ParseShape(v) },
                "learningRate" => s with { LearningRate = Real(key, v, 0.00001, 10) },
                "activation" => s with { Activation = OneOf(key, v, Activations) },
                "regularization" => s with { Regularization = OneOf(key, v, Regularizations) },
                "regularizationRate" => s with { RegularizationRate = Real(key, v, 0, 10) },
                "init" => s with { Init = OneOf(key, v, InitNames) },
                "optimizer" => s with { Optimizer = OneOf(key, v, OptimizerNames) },
                "momentum" => s with { Momentum = Real(key, v, 0, 0.99) },
                "weightDecay" => s with { WeightDecay = Real(key, v, 0, 1) },
                "norm" => s with { Norm = OneOf(key, v, ["linf", "l2"]) == "linf" ? Norm.Linf : Norm.L2 },
                "epsilon" => s with { Epsilon = Real(key, v, 0, 3) },
                "attackSteps" => s with { AttackSteps = Int(key, v, 1, 100) },
                "attackStepSize" => s with { AttackStepSize = Real(key, v, 0.01, 2) },
                "objective" => s with { Objective = OneOf(key, v, ObjectiveNames) },
                "trainSteps" => s with { TrainSteps = Int(key, v, 1, 20) },
                "beta" => s with { Beta = Real(key, v, 0, 20) },
                "sigma" => s with { Sigma = Real(key, v, 0, 3) },
                "compare" => s with { Compare = Bool(key, v) },
                "showTestData" => s with { ShowTestData = Bool(key, v) },
                "discretize" => s with { Discretize = Bool(key, v) },
                "showBalls" => s with { ShowBalls = Bool(key, v) },
                "showAttack" => s with { ShowAttack = Bool(key, v) },
                "showCertified" => s with { ShowCertified = Bool(key, v) },
                _ => throw new ParameterException(key, $"unknown setting (valid: {string.Join(", ", Keys)})"),
            };
        }
        return s.Validate();
    }

    /// <summary>Checks the combinations that single keys cannot: adversarial objectives need ε &gt; 0 and a classification problem.</summary>
    public PlaygroundState Validate()
    {
        if (Features.Count == 0) throw new ParameterException("features", "at least one input feature must be on");
        if (Adversarial && !(Epsilon > 0)) throw new ParameterException("epsilon", $"the {Objective} objective trains against an ε-ball and needs ε > 0, got {Inv(Epsilon)}");
        if (!IsClassification && Objective is "trades" or "fgsm-rs")
            throw new ParameterException("objective", $"{Objective} is defined for classifiers; regression offers standard, pgd and gaussian");
        if (!IsClassification && ShowCertified)
            throw new ParameterException("showCertified", "interval certificates are shown for classification only");
        return this;
    }

    public static readonly IReadOnlyList<string> Keys =
    [
        "dataset", "regDataset", "problem", "percTrainData", "noise", "batchSize", "seed", "features", "networkShape",
        "learningRate", "activation", "regularization", "regularizationRate", "init", "optimizer", "momentum", "weightDecay",
        "norm", "epsilon", "attackSteps", "attackStepSize", "objective", "trainSteps", "beta", "sigma", "compare",
        "showTestData", "discretize", "showBalls", "showAttack", "showCertified",
    ];

    /// <summary>The state as key → value text, the form the URL and <see cref="With(IReadOnlyDictionary{string, string})"/> use.</summary>
    public IReadOnlyDictionary<string, string> ToDictionary() => new Dictionary<string, string>
    {
        ["dataset"] = Dataset, ["regDataset"] = RegDataset, ["problem"] = IsClassification ? "classification" : "regression",
        ["percTrainData"] = Inv(PercTrainData), ["noise"] = Inv(Noise), ["batchSize"] = Inv(BatchSize), ["seed"] = Inv(Seed),
        ["features"] = string.Join(",", Features), ["networkShape"] = string.Join(",", NetworkShape),
        ["learningRate"] = Inv(LearningRate), ["activation"] = Activation, ["regularization"] = Regularization,
        ["regularizationRate"] = Inv(RegularizationRate), ["init"] = Init, ["optimizer"] = Optimizer, ["momentum"] = Inv(Momentum),
        ["weightDecay"] = Inv(WeightDecay), ["norm"] = Norm.Name(), ["epsilon"] = Inv(Epsilon), ["attackSteps"] = Inv(AttackSteps),
        ["attackStepSize"] = Inv(AttackStepSize), ["objective"] = Objective, ["trainSteps"] = Inv(TrainSteps), ["beta"] = Inv(Beta),
        ["sigma"] = Inv(Sigma), ["compare"] = B(Compare), ["showTestData"] = B(ShowTestData), ["discretize"] = B(Discretize),
        ["showBalls"] = B(ShowBalls), ["showAttack"] = B(ShowAttack), ["showCertified"] = B(ShowCertified),
    };

    /// <summary>Parses "k=v&amp;k=v" (the URL fragment or query; a leading '#' or '?' is ignored).</summary>
    public static Dictionary<string, string> ParseQuery(string text)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        var t = text.TrimStart('#', '?');
        foreach (var part in t.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            if (eq <= 0) throw new ParameterException(part, "expected key=value");
            d[Uri.UnescapeDataString(part[..eq])] = Uri.UnescapeDataString(part[(eq + 1)..].Replace('+', ' '));
        }
        return d;
    }

    public string ToQuery() => string.Join("&", ToDictionary().Select(kv => $"{kv.Key}={Uri.EscapeDataString(kv.Value)}"));

    private static string B(bool b) => b ? "true" : "false";
    private static string Inv(double v) => v.ToString("R", CultureInfo.InvariantCulture);
    private static string Inv(long v) => v.ToString(CultureInfo.InvariantCulture);

    private static string OneOf(string key, string v, IReadOnlyList<string> valid)
    {
        var lower = v.ToLowerInvariant();
        if (lower is "none" && valid.Contains("standard") && !valid.Contains("none")) lower = "standard";
        return valid.Contains(lower) ? lower : throw new ParameterException(key, $"'{v}' is not one of {string.Join(", ", valid)}");
    }

    private static int Int(string key, string v, int min, int max) =>
        (int)Long(key, v, min, max);

    private static long Long(string key, string v, long min, long max)
    {
        if (!long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
            throw new ParameterException(key, $"'{v}' is not a whole number");
        if (n < min || n > max) throw new ParameterException(key, $"must be in [{min}, {max}], got {n}");
        return n;
    }

    private static double Real(string key, string v, double min, double max)
    {
        if (!double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) || !double.IsFinite(x))
            throw new ParameterException(key, $"'{v}' is not a finite number");
        if (x < min || x > max) throw new ParameterException(key, $"must be in [{Inv(min)}, {Inv(max)}], got {Inv(x)}");
        return x;
    }

    private static bool Bool(string key, string v) => v.ToLowerInvariant() switch
    {
        "true" or "1" => true,
        "false" or "0" => false,
        _ => throw new ParameterException(key, $"'{v}' is not true or false"),
    };

    private static IReadOnlyList<string> ParseFeatures(string v)
    {
        var list = v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(f => f.ToLowerInvariant()).ToList();
        foreach (var f in list)
            if (!FeatureNames.Contains(f)) throw new ParameterException("features", $"'{f}' is not one of {string.Join(", ", FeatureNames)}");
        if (list.Distinct().Count() != list.Count) throw new ParameterException("features", "a feature is listed twice");
        if (list.Count == 0) throw new ParameterException("features", "at least one input feature must be on");
        // Canonical order, so equal sets compare equal.
        return FeatureNames.Where(list.Contains).ToList();
    }

    private static IReadOnlyList<int> ParseShape(string v)
    {
        var parts = v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length > MaxHiddenLayers) throw new ParameterException("networkShape", $"at most {MaxHiddenLayers} hidden layers, got {parts.Length}");
        var shape = new List<int>();
        foreach (var p in parts)
        {
            if (!int.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
                throw new ParameterException("networkShape", $"'{p}' is not a whole number");
            if (n < 1 || n > MaxNeurons) throw new ParameterException("networkShape", $"each hidden layer has 1–{MaxNeurons} neurons, got {n}");
            shape.Add(n);
        }
        return shape;
    }
}
