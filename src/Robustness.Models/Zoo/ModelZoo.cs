using System.Globalization;
using Robustness.Core;
using Robustness.Models.Zoo;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models;

/// <summary>
/// The built-in architectures of shared/design/reference-models.md, with PyTorch-identical state-dict keys.
/// Parameters use PyTorch's default initialisation; seed with <c>torch.random.manual_seed</c> before creating.
/// </summary>
public static class ModelZoo
{
    public const string MlpName = "mlp";
    public const string LeNet5Name = "lenet5";
    public const string TinyCnnName = "tiny-cnn";
    public const string FmnistCnnName = "fmnist-cnn";
    public const string PreActResNet18Name = "preact-resnet18";
    public const string IbpSmallName = "ibp-small";
    public const string LogisticName = "logistic";
    public const string ResNetSmallName = "resnet-small";
    public const string LstmName = "lstm";
    public const string GruName = "gru";

    /// <summary>The architectures of the lecture's second half (issue 15): residual and recurrent networks.
    /// Declared before <see cref="Names"/>: static initialisers run in text order.</summary>
    private static readonly string[] LectureNames = [ResNetSmallName, LstmName, GruName];

    public static IReadOnlyList<string> Names { get; } = [MlpName, LeNet5Name, TinyCnnName, FmnistCnnName, PreActResNet18Name, IbpSmallName, .. LectureNames, LogisticName];

    /// <summary>Hidden units of lstm/gru unless the options say otherwise.</summary>
    public const int DefaultRecurrentHidden = 128;

    /// <summary>True for lstm and gru (row-by-row sequence classifiers).</summary>
    public static bool IsRecurrent(string arch) => Canonical(arch) is LstmName or GruName;

    public static readonly int[] DefaultMlpHidden = [256, 256];

    /// <summary>The architecture's canonical name, or an <see cref="InputException"/> listing the valid ones.</summary>
    public static string Canonical(string arch)
    {
        var name = (arch ?? "").Trim().ToLowerInvariant();
        return Names.Contains(name) ? name
            : throw new ParameterException("Arch", $"unknown architecture '{arch}' (valid: {string.Join(", ", Names)})");
    }

    public static int[] DefaultInputShape(string arch) =>
        Canonical(arch) == PreActResNet18Name ? [3, 32, 32] : [1, 28, 28];

    /// <summary>The network alone (no normalisation), keys as in PyTorch.</summary>
    public static nn.Module<Tensor, Tensor> Create(string arch, ZooOptions? options = null)
    {
        var name = Canonical(arch);
        options ??= new ZooOptions();
        var shape = options.InputShape ?? DefaultInputShape(name);
        if (shape.Length == 0 || shape.Any(d => d <= 0))
            throw new InputException($"{name}: input shape [{string.Join(",", shape)}] must have positive sizes");
        if (options.NumClasses < 1) throw new InputException($"{name}: number of classes must be at least 1, got {options.NumClasses}");
        var network = Build(name, shape, options);
        WeightInits.Apply(network, options.Init);
        return network;
    }

    private static nn.Module<Tensor, Tensor> Build(string name, int[] shape, ZooOptions options)
    {
        CheckDropout(options);
        CheckNoWindow(name, options);
        if (name == LogisticName)
            return options.Dropout == 0
                ? new Logistic(shape.Aggregate(1L, (a, b) => a * b), options.NumClasses)
                : throw new ParameterException(nameof(ZooOptions.Dropout), "logistic is one linear layer and has no dropout head");
        if (name == MlpName)
        {
            var hidden = options.Hidden ?? DefaultMlpHidden;
            if (hidden.Any(h => h < 1)) throw new InputException($"mlp: hidden widths [{string.Join(",", hidden)}] must be positive");
            long inputs = shape.Aggregate(1L, (a, b) => a * b);
            return new Mlp(inputs, hidden, options.NumClasses, options.Activation.Trim().ToLowerInvariant(), options.Dropout);
        }
        if (shape.Length != 3)
            throw new InputException($"{name}: needs a C,H,W input shape, got [{string.Join(",", shape)}]");
        int c = shape[0], h = shape[1], w = shape[2];
        int minimum = name switch { LeNet5Name => 12, IbpSmallName => 10, PreActResNet18Name or ResNetSmallName or LstmName or GruName => 1, _ => 4 };
        if (h < minimum || w < minimum)
            throw new InputException($"{name}: input {h}×{w} is too small (at least {minimum}×{minimum})");
        return name switch
        {
            TinyCnnName => TwoStageCnn.Tiny(c, h, w, options.NumClasses, options.Dropout, CheckWindow(name, h, w, options.Window)),
            FmnistCnnName => TwoStageCnn.Fmnist(c, h, w, options.NumClasses, options.Dropout, CheckWindow(name, h, w, options.Window)),
            LeNet5Name => new LeNet5(c, h, w, options.NumClasses, options.Dropout),
            PreActResNet18Name => new PreActResNet18(c, options.NumClasses, options.Dropout),
            IbpSmallName => options.Dropout == 0
                ? new IbpSmall(c, h, w, options.NumClasses)
                : throw new ParameterException(nameof(ZooOptions.Dropout), "ibp-small has no dropout head (its bounds are propagated through the plain network)"),
            ResNetSmallName => new ResNetSmall(c, options.NumClasses, options.Dropout),
            LstmName or GruName => Recurrent(name, c, w, options),
            _ => throw new InvalidOperationException($"zoo entry '{name}' has no constructor"),
        };
    }

    /// <summary>The window of a two-stage CNN's head (<see cref="ZooOptions.Window"/>), checked against the input.</summary>
    private static int CheckWindow(string name, int height, int width, int window)
    {
        if (window == 0) return 0;
        if (window < 4 || window % 4 != 0)
            throw new ParameterException(nameof(ZooOptions.Window), $"must be a positive multiple of 4 (two 2×2 poolings), got {window}");
        if (height % window != 0 || width % window != 0)
            throw new ParameterException(nameof(ZooOptions.Window), $"{window} does not divide the {name} input {height}×{width}");
        return window;
    }

    private static void CheckNoWindow(string name, ZooOptions options)
    {
        if (options.Window != 0 && name is not (TinyCnnName or FmnistCnnName))
            throw new ParameterException(nameof(ZooOptions.Window), $"only tiny-cnn and fmnist-cnn have a windowed head, not {name}");
    }

    private static void CheckDropout(ZooOptions options)
    {
        if (!(options.Dropout >= 0 && options.Dropout < 1))
            throw new ParameterException(nameof(ZooOptions.Dropout), $"must be in [0, 1), got {options.Dropout.ToString(CultureInfo.InvariantCulture)}");
    }

    private static RecurrentNet Recurrent(string name, int channels, int width, ZooOptions options)
    {
        CheckRecurrent(name, options);
        return new RecurrentNet(name, channels, width, options.RecurrentHidden, options.RecurrentLayers, options.NumClasses, options.Dropout);
    }

    private static void CheckRecurrent(string name, ZooOptions options)
    {
        if (options.RecurrentHidden < 1)
            throw new ParameterException(nameof(ZooOptions.RecurrentHidden), $"{name}: must be ≥ 1, got {options.RecurrentHidden}");
        if (options.RecurrentLayers is < 1 or > 2)
            throw new ParameterException(nameof(ZooOptions.RecurrentLayers), $"{name}: must be 1 or 2, got {options.RecurrentLayers}");
    }

    /// <summary>
    /// The number of trainable parameters <see cref="Create"/> would allocate, computed without allocating
    /// (saturates at <see cref="long.MaxValue"/>). Loading uses it to refuse metadata that asks for a network far
    /// larger than the file's tensors before building it.
    /// </summary>
    public static long ParameterCount(string arch, ZooOptions? options = null)
    {
        var name = Canonical(arch);
        options ??= new ZooOptions();
        var shape = options.InputShape ?? DefaultInputShape(name);
        long k = options.NumClasses;
        try
        {
            checked
            {
                if (name == LogisticName) return (shape.Aggregate(1L, (a, b) => a * b) + 1) * k;
                if (name == MlpName)
                {
                    var widths = new List<long> { shape.Aggregate(1L, (a, b) => a * b) };
                    widths.AddRange((options.Hidden ?? DefaultMlpHidden).Select(h => (long)h));
                    widths.Add(k);
                    long total = 0;
                    for (int i = 0; i + 1 < widths.Count; i++) total += (widths[i] + 1) * widths[i + 1];
                    return total;
                }
                if (shape.Length != 3) return 0; // Create reports the bad shape
                long c = shape[0], h = shape[1], w = shape[2];
                return name switch
                {
                    TinyCnnName => c * 16 * 9 + 16 + 16 * 32 * 9 + 32 + 32 * HeadCells(h, w, options) * 128 + 128 + 128 * k + k,
                    FmnistCnnName => c * 32 * 25 + 32 + 32 * 64 * 25 + 64 + 64 * HeadCells(h, w, options) * 1024 + 1024 + 1024 * k + k,
                    LeNet5Name => c * 6 * 25 + 6 + 6 * 16 * 25 + 16 + 16 * Math.Max((h / 2 - 4) / 2, 0) * Math.Max((w / 2 - 4) / 2, 0) * 120 + 120
                                  + 120 * 84 + 84 + 84 * k + k,
                    PreActResNet18Name => c * 64 * 9 + PreActResNet18Body + 512 * k + k,
                    IbpSmallName => c * 16 * 16 + 16 + 16 * 32 * 16 + 32
                                    + 32 * Math.Max(IbpSmall.FeatureSide(h), 0) * Math.Max(IbpSmall.FeatureSide(w), 0) * 100 + 100 + 100 * k + k,
                    ResNetSmallName => ResNetSmall.ParameterCount(c, k),
                    LstmName => RecurrentNet.ParameterCount(4, c * w, options.RecurrentHidden, options.RecurrentLayers, k),
                    GruName => RecurrentNet.ParameterCount(3, c * w, options.RecurrentHidden, options.RecurrentLayers, k),
                    _ => 0,
                };
            }
        }
        catch (OverflowException) { return long.MaxValue; }
    }

    /// <summary>Feature cells a two-stage CNN's fc1 reads: the whole (H/4)×(W/4) map, or one window's.</summary>
    private static long HeadCells(long h, long w, ZooOptions options) =>
        options.Window > 0 ? (long)(options.Window / 4) * (options.Window / 4) : (h / 4) * (w / 4);

    /// <summary>Parameters of preact-resnet18 between its first conv and its classifier (convs, shortcuts, BN affine).</summary>
    private const long PreActResNet18Body = 11_165_312; // checked against the built network by ParameterCountTests

    /// <summary>The default spec: Fashion-MNIST shape (CIFAR-10 for preact-resnet18), 10 classes, bounds [0,1].</summary>
    public static ModelSpec DefaultSpec(string arch) => DefaultSpec(arch, new ZooOptions());

    /// <summary>A spec for the architecture built with <paramref name="options"/> (mlp widths go into <see cref="ModelSpec.Extra"/>).</summary>
    public static ModelSpec DefaultSpec(string arch, ZooOptions options)
    {
        var name = Canonical(arch);
        var extra = new Dictionary<string, string>();
        if (name == MlpName)
        {
            extra[ModelMetadata.MlpHidden] = string.Join(",", (options.Hidden ?? DefaultMlpHidden).Select(h => h.ToString(CultureInfo.InvariantCulture)));
            extra[ModelMetadata.MlpActivation] = options.Activation.Trim().ToLowerInvariant();
        }
        if (name is LstmName or GruName)
        {
            CheckRecurrent(name, options);
            extra[ModelMetadata.RecurrentHidden] = options.RecurrentHidden.ToString(CultureInfo.InvariantCulture);
            extra[ModelMetadata.RecurrentLayers] = options.RecurrentLayers.ToString(CultureInfo.InvariantCulture);
        }
        CheckDropout(options);
        if (options.Dropout != 0) extra[ModelMetadata.Dropout] = options.Dropout.ToString("R", CultureInfo.InvariantCulture);
        CheckNoWindow(name, options);
        if (options.Window != 0) extra[ModelMetadata.Window] = options.Window.ToString(CultureInfo.InvariantCulture);
        if (options.Init != WeightInit.Default) extra[ModelMetadata.Init] = options.Init.Name();
        return new ModelSpec
        {
            Arch = name,
            InputShape = options.InputShape ?? DefaultInputShape(name),
            NumClasses = options.NumClasses,
            Bounds = Bounds.Unit,
            Extra = extra,
        };
    }

    /// <summary>The zoo options that rebuild the network a spec describes.</summary>
    public static ZooOptions OptionsFor(ModelSpec spec)
    {
        var options = new ZooOptions { InputShape = spec.InputShape, NumClasses = spec.NumClasses };
        if (spec.Extra.TryGetValue(ModelMetadata.Dropout, out var dropoutText))
            options = options with { Dropout = ParseMetadataNumber(dropoutText, ModelMetadata.Dropout, 0, 0.999999) };
        if (spec.Extra.TryGetValue(ModelMetadata.Window, out var windowText))
            options = options with { Window = (int)ParseMetadataNumber(windowText, ModelMetadata.Window, 4, 1 << 16, integer: true) };
        if (IsRecurrent(spec.Arch))
        {
            if (spec.Extra.TryGetValue(ModelMetadata.RecurrentHidden, out var hiddenText))
                options = options with { RecurrentHidden = (int)ParseMetadataNumber(hiddenText, ModelMetadata.RecurrentHidden, 1, 1 << 20, integer: true) };
            if (spec.Extra.TryGetValue(ModelMetadata.RecurrentLayers, out var layersText))
                options = options with { RecurrentLayers = (int)ParseMetadataNumber(layersText, ModelMetadata.RecurrentLayers, 1, 2, integer: true) };
            return options;
        }
        if (Canonical(spec.Arch) != MlpName) return options;
        IReadOnlyList<int> hidden = DefaultMlpHidden;
        if (spec.Extra.TryGetValue(ModelMetadata.MlpHidden, out var text))
            hidden = ParseHidden(text, ModelMetadata.MlpHidden);
        var activation = spec.Extra.TryGetValue(ModelMetadata.MlpActivation, out var a) ? a : "relu";
        return options with { Hidden = hidden, Activation = activation };
    }

    private static double ParseMetadataNumber(string text, string key, double min, double max, bool integer = false)
    {
        var style = integer ? NumberStyles.Integer : NumberStyles.Float;
        if (double.TryParse(text, style, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max)
            return value;
        throw new ModelFormatException($"metadata '{key}' = '{text}' is not {(integer ? "an integer" : "a number")} in " +
            $"[{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}]");
    }

    /// <summary>Parses "256,256" (an empty string means no hidden layer).</summary>
    public static int[] ParseHidden(string text, string source)
    {
        if (string.IsNullOrWhiteSpace(text)) return [];
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var widths = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out widths[i]) || widths[i] < 1)
                throw new InputException($"{source}: '{text}' is not a comma-separated list of positive widths");
        return widths;
    }

    /// <summary>A zoo network wrapped as a classifier, with <see cref="Normalize"/> in front when the spec has mean/std.</summary>
    /// <param name="init">The initial weights (<see cref="ZooOptions.Init"/>); the spec only records them.</param>
    public static TorchClassifier CreateClassifier(string arch, Device? device = null, ModelSpec? spec = null, WeightInit init = WeightInit.Default)
    {
        var name = Canonical(arch);
        spec ??= DefaultSpec(name);
        if (Canonical(spec.Arch) != name)
            throw new ParameterException("Arch", $"'{name}' does not match the spec's architecture '{spec.Arch}'");
        var network = Create(name, OptionsFor(spec) with { Init = init });
        return Wrap(network, spec, device);
    }

    /// <summary>
    /// Wraps a network (PyTorch keys) as a classifier: <see cref="NormalizedNetwork"/>(normalize, network) when the spec
    /// has mean/std, and, for a multi-label model with a decision threshold τ ≠ 0.5, a last stage that subtracts logit(τ)
    /// from the logits (<see cref="ModelSpec.DecisionOffset"/>), so the classifier's logits are decision logits.
    /// </summary>
    public static TorchClassifier Wrap(nn.Module<Tensor, Tensor> network, ModelSpec spec, Device? device = null)
    {
        if (spec.MultiLabel && !(spec.DecisionThreshold > 0 && spec.DecisionThreshold < 1))
            throw new ParameterException(nameof(ModelSpec.DecisionThreshold), $"must be in (0, 1), got {spec.DecisionThreshold}");
        if (spec.DecisionOffset != 0)
        {
            var inner = Wrap(network, spec with { MultiLabel = false }, device);
            var shifted = nn.Sequential(("model", inner.Module), ("decision_shift", new DecisionShift(spec.DecisionOffset)));
            return new TorchClassifier(network, spec, device, shifted);
        }
        if (spec.Mean is null != spec.Std is null)
            throw new InputException($"{spec.Arch}: mean and std must be given together");
        if (spec.Mean is null || spec.Std is null) return new TorchClassifier(network, spec, device);
        if (spec.Mean.Length != spec.Std.Length)
            throw new InputException($"{spec.Arch}: mean has {spec.Mean.Length} values but std has {spec.Std.Length}");
        var channels = spec.InputShape.Length >= 2 ? spec.InputShape[0] : 1;
        if (spec.Mean.Length != channels && spec.Mean.Length != 1)
            throw new InputException($"{spec.Arch}: mean/std have {spec.Mean.Length} values but the input has {channels} channels");
        Normalize normalize;
        try { normalize = new Normalize(spec.Mean, spec.Std); }
        catch (ArgumentException e) { throw new InputException($"{spec.Arch}: {e.Message}"); }
        var pipeline = new NormalizedNetwork(normalize, network);
        return new TorchClassifier(network, spec, device, pipeline);
    }
}
