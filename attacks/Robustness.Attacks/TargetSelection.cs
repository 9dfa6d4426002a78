using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>How a targeted attack picks its target classes.</summary>
public enum TargetMode { Given, Random, LeastLikely, TopK }

/// <summary>
/// Chooses target classes for targeted attacks: given labels, a random other class (seeded), the least-likely class
/// (argmin of the clean logits), or the k most likely wrong classes (APGD-T runs one attack per such target).
/// </summary>
public sealed record TargetSelection(TargetMode Mode, Tensor? GivenTargets = null, int Count = 1)
{
    public static readonly IReadOnlyList<string> ModeNames = ["random", "least-likely", "top-k"];

    public static TargetSelection Given(Tensor targets) => new(TargetMode.Given, targets);
    public static TargetSelection Random { get; } = new(TargetMode.Random);
    public static TargetSelection LeastLikely { get; } = new(TargetMode.LeastLikely);
    public static TargetSelection TopK(int k) => k >= 1 ? new(TargetMode.TopK, null, k) : throw new ParameterException("TargetCount", $"top-k needs k ≥ 1, got {k}");

    public static TargetSelection Parse(string mode, int k = 9) => mode.Trim().ToLowerInvariant() switch
    {
        "random" => Random,
        "least-likely" or "ll" => LeastLikely,
        "top-k" or "topk" => TopK(k),
        _ => throw new ParameterException("TargetMode", $"unknown mode '{mode}' (valid: {string.Join(", ", ModeNames)})"),
    };

    public string Name => Mode switch
    {
        TargetMode.Given => "given",
        TargetMode.Random => "random",
        TargetMode.LeastLikely => "least-likely",
        _ => FormattableString.Invariant($"top-{Count}"),
    };

    /// <summary>How many target sets <see cref="Select"/> yields (k for top-k, else 1).</summary>
    public int Rounds => Mode == TargetMode.TopK ? Count : 1;

    /// <summary>
    /// Target classes [N, Rounds] (int64, on the labels' device). Column r is the r-th target to try.
    /// <paramref name="cleanLogits"/> is needed for least-likely and top-k.
    /// </summary>
    public Tensor Select(Tensor labels, int numClasses, Tensor? cleanLogits, Generator? generator)
    {
        if (numClasses < 2) throw new InputException($"targeted attack: the model has {numClasses} class(es); targets need at least 2");
        return Mode switch
        {
            TargetMode.Given => (GivenTargets ?? throw new InvalidOperationException("given targets missing")).to(labels.device).reshape(-1, 1).to(ScalarType.Int64),
            TargetMode.Random => RandomOther(labels, numClasses, generator).unsqueeze(1),
            TargetMode.LeastLikely => LeastLikelyClass(Need(cleanLogits), labels).unsqueeze(1),
            _ => TopKOthers(Need(cleanLogits), labels, Math.Min(Count, numClasses - 1)),
        };
    }

    /// <summary>
    /// Multi-label: per sample the label(s) a targeted round asks to flip, [N, Rounds] int64 — a random label, the one
    /// farthest from its threshold (least-likely), or the k closest to it (top-k). Given goals are not label choices.
    /// </summary>
    public Tensor SelectLabels(Tensor cleanLogits, Generator? generator)
    {
        long n = cleanLogits.shape[0], k = cleanLogits.shape[1];
        return Mode switch
        {
            TargetMode.Random => randint(0, k, [n], dtype: ScalarType.Int64, generator: generator).to(cleanLogits.device).unsqueeze(1),
            TargetMode.LeastLikely => cleanLogits.abs().argmax(1).unsqueeze(1),
            TargetMode.TopK => ClosestLabels(cleanLogits, Count),
            _ => throw new ParameterException("TargetMode", "multi-label models take target label sets (a goal), not given target classes"),
        };
    }

    private static Tensor Need(Tensor? logits) => logits ?? throw new InvalidOperationException("this target mode needs the clean logits");

    /// <summary>A uniformly random class ≠ label: label + U{1..K−1} mod K.</summary>
    public static Tensor RandomOther(Tensor labels, int numClasses, Generator? generator)
    {
        var offset = randint(1, numClasses, labels.shape, dtype: ScalarType.Int64, generator: generator).to(labels.device);
        return (labels + offset).remainder(Keep(numClasses));
    }

    /// <summary>The class with the smallest clean logit among those ≠ label.</summary>
    public static Tensor LeastLikelyClass(Tensor logits, Tensor labels)
    {
        var mask = nn.functional.one_hot(labels, logits.shape[1]).to(ScalarType.Bool);
        return logits.masked_fill(mask, Keep(float.PositiveInfinity)).argmin(1);
    }

    /// <summary>Multi-label: the k labels whose clean decision logits are closest to the threshold (smallest |z|),
    /// closest first: [N, k] int64.</summary>
    public static Tensor ClosestLabels(Tensor logits, int k) =>
        logits.abs().topk(Math.Min(k, (int)logits.shape[1]), 1, largest: false).indexes;

    /// <summary>The k classes ≠ label with the largest clean logits, most likely first: [N, k].</summary>
    public static Tensor TopKOthers(Tensor logits, Tensor labels, int k)
    {
        var mask = nn.functional.one_hot(labels, logits.shape[1]).to(ScalarType.Bool);
        return logits.masked_fill(mask, Keep(float.NegativeInfinity)).topk(k, 1).indexes;
    }
}
