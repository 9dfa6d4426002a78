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
    /// <summary>K independent sigmoid outputs (multi-label) instead of one softmax over K classes.</summary>
    public bool MultiLabel { get; init; }
    /// <summary>
    /// Multi-label models: class ℓ is predicted when σ(raw logit ℓ) &gt; τ (0.5 unless tuned on validation data). The
    /// classifier's <see cref="IClassifier.Logits"/> are decision logits, raw − logit(τ), so every criterion decides at
    /// 0 whatever τ is (see <see cref="DecisionOffset"/>). Ignored for single-label models.
    /// </summary>
    public double DecisionThreshold { get; init; } = 0.5;
    /// <summary>Free-form provenance (how it was trained, data, metrics), stored as string metadata.</summary>
    public IReadOnlyDictionary<string, string> Extra { get; init; } = new Dictionary<string, string>();

    /// <summary>logit(τ) = ln(τ / (1 − τ)): what the classifier subtracts from the raw logits of a multi-label model
    /// (0 for τ = 0.5 and for single-label models). σ(decision logit + offset) is the model's probability.</summary>
    public double DecisionOffset => MultiLabel ? Math.Log(DecisionThreshold / (1 - DecisionThreshold)) : 0;

    /// <summary>Metadata key (in <see cref="Extra"/>) of the output kind: "softmax" or "sigmoid".</summary>
    public const string OutputKey = "output";

    /// <summary>
    /// K independent sigmoid outputs trained with binary cross-entropy: every multi-label model, and single-label
    /// one-vs-rest models (<see cref="Extra"/>["output"] = "sigmoid"; they still predict the arg-max class).
    /// </summary>
    public bool SigmoidOutputs => MultiLabel || (Extra.TryGetValue(OutputKey, out var o) && o == "sigmoid");

    public int InputSize => InputShape.Aggregate(1, (a, b) => a * b);

    public string LabelOf(long index) =>
        index >= 0 && index < Labels.Count ? Labels[(int)index] : index.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
