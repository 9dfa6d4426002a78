using System.Globalization;
using Robustness.Core;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Defenses;

/// <summary>What a tuned decision threshold maximises on the validation set.</summary>
public enum ThresholdMetric { SubsetAccuracy, HammingAccuracy, MicroF1 }

/// <summary>The tuned threshold, the metric at τ = 0.5 and at the tuned τ, on how many validation images.</summary>
public sealed record ThresholdTuningResult(double Threshold, ThresholdMetric Metric, double ScoreAtHalf, double Score, int Samples)
{
    public string MetricName => ThresholdTuning.Name(Metric);

    /// <summary>Model-file provenance, e.g. "subset accuracy on 1000 held-out images: 0.762 at 0.5, 0.771 at 0.41".</summary>
    public string Describe() => FormattableString.Invariant(
        $"{MetricName} on {Samples} held-out images: {ScoreAtHalf:0.####} at 0.5, {Score:0.####} at {Threshold:0.##}");
}

/// <summary>
/// Tunes the decision threshold τ of a multi-label model on held-out data: one τ for all classes, chosen on the grid
/// 0.05, 0.06, …, 0.95 to maximise the metric (ties keep the τ closest to 0.5, so 0.5 stays unless another value is
/// strictly better). The model's probabilities are σ(decision logit + <see cref="ModelSpec.DecisionOffset"/>), so a
/// model already carrying a threshold is tuned from its raw outputs.
/// </summary>
public static class ThresholdTuning
{
    public static IReadOnlyList<double> Grid { get; } = Enumerable.Range(5, 91).Select(i => i / 100.0).ToArray();

    public static string Name(ThresholdMetric m) => m switch
    {
        ThresholdMetric.SubsetAccuracy => "subset accuracy",
        ThresholdMetric.HammingAccuracy => "Hamming accuracy",
        _ => "micro F1",
    };

    public static ThresholdMetric Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "subset" or "subset-accuracy" or "exact-match" => ThresholdMetric.SubsetAccuracy,
        "hamming" or "hamming-accuracy" => ThresholdMetric.HammingAccuracy,
        "f1" or "micro-f1" => ThresholdMetric.MicroF1,
        _ => throw new ParameterException("ThresholdMetric", $"unknown metric '{text}' (valid: subset, hamming, f1)"),
    };

    public static ThresholdTuningResult Tune(IClassifier model, ImageDataset validation, ThresholdMetric metric = ThresholdMetric.SubsetAccuracy, int batchSize = 256)
    {
        if (!model.Spec.MultiLabel) throw new ParameterException("DecisionThreshold", "only multi-label models have a decision threshold");
        if (!validation.MultiLabel) throw new ParameterException("Validation", $"{validation.Name} has class labels, not label sets");
        if (validation.Count == 0) throw new ParameterException("Validation", "the validation set is empty");
        using var scope = NewDisposeScope();
        var probabilities = new List<Tensor>();
        using (model is IGradientClassifier g ? g.EvalMode() : null)
        using (no_grad())
            foreach (var batch in validation.Batches(batchSize, model.Device))
                using (batch)
                    probabilities.Add((model.Logits(batch.Inputs).to(ScalarType.Float64) + Keep(model.Spec.DecisionOffset)).sigmoid().cpu());
        var p = cat(probabilities, 0);
        var labels = validation.Labels.cpu();
        double Score(double tau)
        {
            using var s = NewDisposeScope();
            var counts = MultiLabelCounts.Of(p.gt(Keep(tau)), labels);
            return metric switch
            {
                ThresholdMetric.SubsetAccuracy => counts.SubsetAccuracy,
                ThresholdMetric.HammingAccuracy => counts.HammingAccuracy,
                _ => counts.MicroF1,
            };
        }
        double best = 0.5, bestScore = Score(0.5), half = bestScore;
        foreach (var tau in Grid.OrderBy(t => Math.Abs(t - 0.5)))
        {
            var score = Score(tau);
            if (score > bestScore) (best, bestScore) = (tau, score);
        }
        return new ThresholdTuningResult(best, metric, half, bestScore, validation.Count);
    }

    /// <summary>Metadata key of the tuning record in a model file.</summary>
    public const string MetadataKey = "training.threshold_tuning";

    public static string Format(double threshold) => threshold.ToString("R", CultureInfo.InvariantCulture);
}
