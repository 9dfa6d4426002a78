using static TorchSharp.torch;

namespace Robustness.Core;

/// <summary>
/// Confusion counts of a multi-label classifier on a set: per class true/false positives and negatives, and the number
/// of samples whose predicted set equals the true set (exact match). Every multi-label accuracy of the toolkit is
/// computed from these: subset accuracy (exact-match ratio), Hamming accuracy (correct (sample, class) decisions over
/// N·K), per-class precision, recall and F1, and micro-averaged F1.
/// </summary>
public sealed record MultiLabelCounts(int Samples, long ExactMatches, long[] TruePositives, long[] FalsePositives, long[] FalseNegatives, long[] TrueNegatives)
{
    public int Classes => TruePositives.Length;

    public double SubsetAccuracy => Samples == 0 ? 0 : (double)ExactMatches / Samples;

    public double HammingAccuracy
    {
        get
        {
            long total = (long)Samples * Classes;
            return total == 0 ? 0 : (double)(TruePositives.Sum() + TrueNegatives.Sum()) / total;
        }
    }

    /// <summary>TP / (TP + FP); 0 when the class is never predicted (the scikit-learn convention).</summary>
    public double Precision(int c) => Ratio(TruePositives[c], TruePositives[c] + FalsePositives[c]);
    /// <summary>TP / (TP + FN); 0 when the class never occurs.</summary>
    public double Recall(int c) => Ratio(TruePositives[c], TruePositives[c] + FalseNegatives[c]);
    public double F1(int c) => Ratio(2 * TruePositives[c], 2 * TruePositives[c] + FalsePositives[c] + FalseNegatives[c]);

    public double MicroF1
    {
        get
        {
            long tp = TruePositives.Sum(), fp = FalsePositives.Sum(), fn = FalseNegatives.Sum();
            return Ratio(2 * tp, 2 * tp + fp + fn);
        }
    }

    public double MacroF1 => Classes == 0 ? 0 : Enumerable.Range(0, Classes).Average(F1);

    private static double Ratio(long a, long b) => b == 0 ? 0 : (double)a / b;

    public static MultiLabelCounts Empty(int classes) => new(0, 0, new long[classes], new long[classes], new long[classes], new long[classes]);

    /// <summary>Counts from predicted (bool [N,K]) and true (multi-hot [N,K]) sets. Synchronises with the host.</summary>
    public static MultiLabelCounts Of(Tensor predicted, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var truth = MultiLabelTargets.On(labels);
        var p = predicted.to(ScalarType.Bool);
        long[] Count(Tensor mask) => mask.sum([0L], type: ScalarType.Int64).cpu().data<long>().ToArray();
        var tp = Count(p.logical_and(truth));
        var fp = Count(p.logical_and(truth.logical_not()));
        var fn = Count(p.logical_not().logical_and(truth));
        var tn = Count(p.logical_not().logical_and(truth.logical_not()));
        var exact = p.eq(truth).all(1).sum().item<long>();
        return new MultiLabelCounts((int)labels.shape[0], exact, tp, fp, fn, tn);
    }

    public MultiLabelCounts Add(MultiLabelCounts other) => new(Samples + other.Samples, ExactMatches + other.ExactMatches,
        Sum(TruePositives, other.TruePositives), Sum(FalsePositives, other.FalsePositives),
        Sum(FalseNegatives, other.FalseNegatives), Sum(TrueNegatives, other.TrueNegatives));

    private static long[] Sum(long[] a, long[] b) => a.Zip(b, (x, y) => x + y).ToArray();
}

/// <summary>Multi-label accuracies of a classifier on a dataset (decision logit &gt; 0), eval mode, no graph.</summary>
public static class MultiLabelAccuracy
{
    public static MultiLabelCounts Counts(IClassifier model, ImageDataset data, int batchSize = 256)
    {
        if (!data.MultiLabel) throw new ArgumentException($"{data.Name} is not a multi-label dataset", nameof(data));
        using var mode = model is IGradientClassifier g ? g.EvalMode() : null;
        using var _ = no_grad();
        var counts = MultiLabelCounts.Empty(data.NumClasses);
        foreach (var batch in data.Batches(batchSize, model.Device))
        {
            using var b = batch;
            using var scope = NewDisposeScope();
            counts = counts.Add(MultiLabelCounts.Of(MultiLabelTargets.Predicted(model.Logits(b.Inputs)), b.Labels));
        }
        return counts;
    }
}
