using System.Globalization;
using System.Text.Json;
using Robustness.Core;

namespace Robustness.Models;

/// <summary>
/// The string metadata of a model file (safetensors <c>__metadata__</c>) and its mapping to <see cref="ModelSpec"/>.
/// Keys other than the reserved ones travel in <see cref="ModelSpec.Extra"/> (training provenance, mlp widths).
/// </summary>
public static class ModelMetadata
{
    public const string Format = "format";
    public const string FormatVersion = "robustness-model/1";
    public const string Arch = "arch";
    public const string InputShape = "input_shape";
    public const string NumClasses = "num_classes";
    public const string Labels = "labels";
    public const string Bounds = "bounds";
    public const string Mean = "mean";
    public const string Std = "std";
    public const string MultiLabel = "multi_label";
    /// <summary>Multi-label models: the probability threshold τ of a positive decision (written only for them).</summary>
    public const string DecisionThreshold = "decision_threshold";
    /// <summary>"softmax" (one softmax over the classes) or "sigmoid" (K independent sigmoids: one-vs-rest, and every
    /// multi-label model); absent = softmax for single-label, sigmoid for multi-label models. Travels in Extra.</summary>
    public const string Output = ModelSpec.OutputKey;
    public const string MlpHidden = "mlp_hidden";
    public const string MlpActivation = "mlp_activation";
    /// <summary>Classifier-head dropout probability (absent = 0).</summary>
    public const string Dropout = "dropout";
    /// <summary>tiny-cnn/fmnist-cnn: the classifier head's window in pixels (absent = the whole input).</summary>
    public const string Window = "window";
    /// <summary>lstm/gru: hidden units and stacked layers.</summary>
    public const string RecurrentHidden = "rnn_hidden";
    public const string RecurrentLayers = "rnn_layers";
    /// <summary>Provenance only: the initialisation the weights started from (absent = PyTorch's defaults).</summary>
    public const string Init = "init";

    /// <summary>Keys that map to <see cref="ModelSpec"/> properties rather than <see cref="ModelSpec.Extra"/>.</summary>
    public static IReadOnlySet<string> SpecKeys { get; } =
        new HashSet<string>(StringComparer.Ordinal) { Format, Arch, InputShape, NumClasses, Labels, Bounds, Mean, Std, MultiLabel, DecisionThreshold };

    /// <summary>The metadata for a spec: Extra entries, then <paramref name="extra"/>, then the spec fields (which win).</summary>
    public static Dictionary<string, string> FromSpec(ModelSpec spec, IReadOnlyDictionary<string, string>? extra = null)
    {
        var m = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in spec.Extra) m[k] = v;
        if (extra is not null) foreach (var (k, v) in extra) m[k] = v;
        m[Format] = FormatVersion;
        m[Arch] = spec.Arch;
        m[InputShape] = string.Join(",", spec.InputShape.Select(d => d.ToString(CultureInfo.InvariantCulture)));
        m[NumClasses] = spec.NumClasses.ToString(CultureInfo.InvariantCulture);
        m[Labels] = JsonSerializer.Serialize(spec.Labels.ToArray());
        m[Bounds] = spec.Bounds.ToString();
        if (spec.Mean is not null) m[Mean] = FloatArray(spec.Mean);
        else m.Remove(Mean);
        if (spec.Std is not null) m[Std] = FloatArray(spec.Std);
        else m.Remove(Std);
        m[MultiLabel] = spec.MultiLabel ? "true" : "false";
        if (spec.MultiLabel) m[DecisionThreshold] = spec.DecisionThreshold.ToString("R", CultureInfo.InvariantCulture);
        else m.Remove(DecisionThreshold);
        return m;
    }

    /// <summary>Reads a spec from metadata that has at least <c>arch</c>; other fields default as in <see cref="ModelZoo.DefaultSpec(string)"/>.</summary>
    public static ModelSpec ToSpec(IReadOnlyDictionary<string, string> metadata, string file)
    {
        if (metadata.TryGetValue(Format, out var format) && format != FormatVersion)
            throw new ModelFormatException($"{file}: metadata format '{format}' is not supported (expected {FormatVersion})");
        if (!metadata.TryGetValue(Arch, out var archText))
            throw new ModelFormatException($"{file}: metadata has no '{Arch}'");
        string arch;
        try { arch = ModelZoo.Canonical(archText); }
        catch (InputException) { throw new ModelFormatException($"{file}: metadata arch '{archText}' is not a zoo architecture (valid: {string.Join(", ", ModelZoo.Names)})"); }
        var defaults = ModelZoo.DefaultSpec(arch);

        int[] inputShape = defaults.InputShape;
        if (metadata.TryGetValue(InputShape, out var shapeText))
        {
            var parts = shapeText.Split(',', StringSplitOptions.TrimEntries);
            inputShape = new int[parts.Length];
            for (int i = 0; i < parts.Length; i++)
                if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out inputShape[i]) || inputShape[i] < 1)
                    throw Bad(file, InputShape, shapeText, "a comma-separated list of positive sizes");
        }
        int numClasses = defaults.NumClasses;
        if (metadata.TryGetValue(NumClasses, out var classesText) &&
            (!int.TryParse(classesText, NumberStyles.Integer, CultureInfo.InvariantCulture, out numClasses) || numClasses < 1))
            throw Bad(file, NumClasses, classesText, "a positive integer");
        var labels = metadata.TryGetValue(Labels, out var labelsText) ? StringArray(labelsText, file) : [];
        if (labels.Length != 0 && labels.Length != numClasses)
            throw new ModelFormatException($"{file}: metadata has {labels.Length} labels for {numClasses} classes");
        var bounds = metadata.TryGetValue(Bounds, out var boundsText)
            ? Core.Bounds.Parse(boundsText, $"{file}: metadata '{Bounds}'")
            : Core.Bounds.Unit;
        var mean = metadata.TryGetValue(Mean, out var meanText) ? Floats(meanText, file, Mean) : null;
        var std = metadata.TryGetValue(Std, out var stdText) ? Floats(stdText, file, Std) : null;
        if (mean is null != std is null) throw new ModelFormatException($"{file}: metadata has only one of '{Mean}' and '{Std}'");
        if (mean is not null && std is not null)
        {
            if (mean.Length != std.Length) throw new ModelFormatException($"{file}: metadata mean has {mean.Length} values but std has {std.Length}");
            if (std.Any(s => !(s > 0) || !float.IsFinite(s)) || mean.Any(v => !float.IsFinite(v)))
                throw new ModelFormatException($"{file}: metadata std must be positive and mean/std finite");
        }
        bool multiLabel = false;
        if (metadata.TryGetValue(MultiLabel, out var multiText) && !bool.TryParse(multiText, out multiLabel))
            throw Bad(file, MultiLabel, multiText, "true or false");
        double threshold = 0.5;
        if (metadata.TryGetValue(DecisionThreshold, out var thresholdText) &&
            (!double.TryParse(thresholdText, NumberStyles.Float, CultureInfo.InvariantCulture, out threshold) || !(threshold > 0 && threshold < 1)))
            throw Bad(file, DecisionThreshold, thresholdText, "a probability strictly between 0 and 1");
        if (metadata.TryGetValue(Output, out var outputText) && outputText is not ("softmax" or "sigmoid"))
            throw Bad(file, Output, outputText, "softmax or sigmoid");
        if (multiLabel && outputText == "softmax")
            throw new ModelFormatException($"{file}: metadata says multi_label = true with output = softmax; multi-label models have sigmoid outputs");

        var extra = metadata.Where(kv => !SpecKeys.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        return new ModelSpec
        {
            Arch = arch,
            InputShape = inputShape,
            NumClasses = numClasses,
            Labels = labels,
            Bounds = bounds,
            Mean = mean,
            Std = std,
            MultiLabel = multiLabel,
            DecisionThreshold = threshold,
            Extra = extra,
        };
    }

    private static string FloatArray(float[] values) =>
        "[" + string.Join(",", values.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + "]";

    private static string[] StringArray(string text, string file)
    {
        try
        {
            return JsonSerializer.Deserialize<string[]>(text) is { } a && a.All(s => s is not null)
                ? a : throw Bad(file, Labels, text, "a JSON array of strings");
        }
        catch (JsonException) { throw Bad(file, Labels, text, "a JSON array of strings"); }
    }

    private static float[] Floats(string text, string file, string key)
    {
        try
        {
            return JsonSerializer.Deserialize<float[]>(text) is { Length: > 0 } a ? a : throw Bad(file, key, text, "a non-empty JSON array of numbers");
        }
        catch (JsonException) { throw Bad(file, key, text, "a non-empty JSON array of numbers"); }
    }

    private static ModelFormatException Bad(string file, string key, string value, string expected)
    {
        var shown = value.Length > 60 ? value[..60] + "…" : value;
        return new ModelFormatException($"{file}: metadata '{key}' = '{shown}' is not {expected}");
    }
}
