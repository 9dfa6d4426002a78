namespace Robustness.Core;

/// <summary>What a classifier expects and produces: the metadata stored with a model file.</summary>
public sealed record ModelSpec
{
    public required string Arch { get; init; }
    /// <summary>Per-sample input shape, e.g. [1, 28, 28].</summary>
    public required int[] InputShape { get; init; }
    public required int NumClasses { get; init; }
    public IReadOnlyList<string> Labels { get; init; } = [];
    public Bounds Bounds { get; init; } = Bounds.Unit;
    /// <summary>Per-channel mean and std applied inside the model (pixels are never normalised outside it).</summary>
    public float[]? Mean { get; init; }
    public float[]? Std { get; init; }
    public bool MultiLabel { get; init; }
    /// <summary>Free-form provenance (how it was trained, data, metrics), stored as string metadata.</summary>
    public IReadOnlyDictionary<string, string> Extra { get; init; } = new Dictionary<string, string>();

    public int InputSize => InputShape.Aggregate(1, (a, b) => a * b);

    public string LabelOf(long index) =>
        index >= 0 && index < Labels.Count ? Labels[(int)index] : index.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
