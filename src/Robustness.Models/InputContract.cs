using System.Globalization;
using Robustness.Core;

namespace Robustness.Models;

/// <summary>
/// What a model without our metadata (ONNX, TorchScript) needs to be told about its input: the per-sample shape,
/// the pixel bounds, the normalisation applied inside the classifier (so ε stays in pixel units) and class names.
/// Every field is optional; <see cref="ModelLoader"/> reports which values it inferred and which it assumed.
/// </summary>
public sealed record InputContract
{
    /// <summary>Per-sample shape, e.g. [3, 224, 224].</summary>
    public int[]? InputShape { get; init; }
    /// <summary>Pixel bounds; [0,1] when absent.</summary>
    public Bounds? Bounds { get; init; }
    public float[]? Mean { get; init; }
    public float[]? Std { get; init; }
    public IReadOnlyList<string>? Labels { get; init; }
    /// <summary>A shape to use when neither the file nor <see cref="InputShape"/> gives one (e.g. the dataset's).</summary>
    public int[]? FallbackInputShape { get; init; }
    /// <summary>Where <see cref="FallbackInputShape"/> comes from, for the description ("the data").</summary>
    public string FallbackSource { get; init; } = "the data";

    public static InputContract None { get; } = new();

    /// <summary>True when the user gave any field (the fallback does not count).</summary>
    public bool IsGiven => InputShape is not null || Bounds is not null || Mean is not null || Std is not null || Labels is not null;

    /// <summary>Parses "C,H,W" (positive sizes, at most 2^28 values per sample).</summary>
    public static int[] ParseShape(string text, string parameter = nameof(InputShape))
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var shape = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out shape[i]) || shape[i] < 1)
                throw new ParameterException(parameter, $"'{text}' is not a comma-separated list of positive sizes such as 3,32,32");
        CheckShape(shape, parameter);
        return shape;
    }

    public static void CheckShape(IReadOnlyList<long> shape, string parameter)
    {
        long total = 1;
        foreach (var d in shape)
        {
            if (d < 1 || d > 1 << 20) throw new ParameterException(parameter, $"size {d} in [{string.Join(",", shape)}] is not between 1 and 2^20");
            total *= d;
            if (total > 1 << 28) throw new ParameterException(parameter, $"[{string.Join(",", shape)}] is more than 2^28 values per sample");
        }
    }

    private static void CheckShape(int[] shape, string parameter) => CheckShape(shape.Select(d => (long)d).ToArray(), parameter);

    /// <summary>Parses "0.5,0.5,0.5" (or one value for every channel).</summary>
    public static float[] ParseFloats(string text, string parameter)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length == 0 || parts.All(p => p.Length == 0)) throw new ParameterException(parameter, "needs at least one number");
        if (parts.Any(p => p.Length == 0)) throw new ParameterException(parameter, $"'{text}' has an empty entry");
        var values = new float[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!float.TryParse(parts[i], NumberStyles.Float, CultureInfo.InvariantCulture, out values[i]) || !float.IsFinite(values[i]))
                throw new ParameterException(parameter, $"'{parts[i]}' is not a finite number");
        return values;
    }

    /// <summary>Class names, one a line (blank lines at the end ignored).</summary>
    public static IReadOnlyList<string> ReadLabels(string path)
    {
        string[] lines;
        try { lines = File.ReadAllLines(path); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        { throw new ParameterException(nameof(Labels), $"{path}: file not found"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new ParameterException(nameof(Labels), $"{path}: cannot read ({e.Message})"); }
        var labels = lines.Select(l => l.Trim()).ToList();
        while (labels.Count > 0 && labels[^1].Length == 0) labels.RemoveAt(labels.Count - 1);
        if (labels.Count == 0) throw new ParameterException(nameof(Labels), $"{path}: no class names (one a line)");
        if (labels.Any(l => l.Length == 0)) throw new ParameterException(nameof(Labels), $"{path}: line {labels.IndexOf("") + 1} is empty");
        return labels;
    }
}
