using System.Globalization;
using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Defenses;

/// <summary>What a tuned decision threshold maximises on the validation set.</summary>
public enum ThresholdMetric
{
    SubsetAccuracy,
    HammingAccuracy,
    MicroF1,
    /// <summary>Hamming accuracy when every decision of every image is attacked on its own (<see cref="ThresholdAttack"/>).</summary>
    RobustHammingAccuracy,
}

/// <summary>
/// The attack behind <see cref="ThresholdMetric.RobustHammingAccuracy"/>: PGD with <see cref="Steps"/> steps of
/// 2.5·ε/steps from a uniform start, once per (image, label), asked to flip that label alone
/// (<see cref="MultiLabelTargets.FlipOnly"/>, binary cross-entropy), as the per-label stages of a multi-label evaluation do.
/// </summary>
public sealed record ThresholdAttack(double Epsilon, Norm Norm = Norm.Linf)
{
    public int Steps { get; init; } = ProjectedGradientAttack.DefaultSteps;
    public long Seed { get; init; }

    public string Describe() => FormattableString.Invariant($"PGD-{Steps} per label, {Norm.Name()} ε = {Epsilon:0.####}");
}

/// <summary>The tuned threshold, the metric at τ = 0.5 and at the tuned τ, on how many validation images.</summary>
public sealed record ThresholdTuningResult(double Threshold, ThresholdMetric Metric, double ScoreAtHalf, double Score, int Samples)
{
    /// <summary>The attack of a robust metric (null otherwise).</summary>
    public ThresholdAttack? Attack { get; init; }

    public string MetricName => ThresholdTuning.Name(Metric) + (Attack is { } a ? $" ({a.Describe()})" : "");

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
        ThresholdMetric.RobustHammingAccuracy => "robust Hamming accuracy",
        _ => "micro F1",
    };

    public static ThresholdMetric Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "subset" or "subset-accuracy" or "exact-match" => ThresholdMetric.SubsetAccuracy,
        "hamming" or "hamming-accuracy" => ThresholdMetric.HammingAccuracy,
        "f1" or "micro-f1" => ThresholdMetric.MicroF1,
        "robust-hamming" or "robust-hamming-accuracy" => ThresholdMetric.RobustHammingAccuracy,
        _ => throw new ParameterException("ThresholdMetric", $"unknown metric '{text}' (valid: subset, hamming, f1, robust-hamming)"),
    };

    /// <summary>
    /// Chooses τ on <paramref name="validation"/>. <see cref="ThresholdMetric.RobustHammingAccuracy"/> needs
    /// <paramref name="attack"/>: each decision's worst decision logit within the ball is found once
    /// (<see cref="WorstCaseLogits"/>) and every τ of the grid is scored on it, so the attack does not depend on τ
    /// (an L∞ or L2 step follows the sign or direction of one logit's gradient, whatever the offset).
    /// </summary>
    public static ThresholdTuningResult Tune(IClassifier model, ImageDataset validation, ThresholdMetric metric = ThresholdMetric.SubsetAccuracy,
        int batchSize = 256, ThresholdAttack? attack = null, IProgress<int>? imagesDone = null)
    {
        if (!model.Spec.MultiLabel) throw new ParameterException("DecisionThreshold", "only multi-label models have a decision threshold");
        if (!validation.MultiLabel) throw new ParameterException("Validation", $"{validation.Name} has class labels, not label sets");
        if (validation.Count == 0) throw new ParameterException("Validation", "the validation set is empty");
        bool robust = metric == ThresholdMetric.RobustHammingAccuracy;
        if (robust && attack is null) throw new ParameterException("Attack", "robust Hamming accuracy needs an attack (ε, norm, steps)");
        if (robust && model is not IGradientClassifier) throw new ParameterException("Attack", "robust Hamming accuracy needs a model with gradients");
        using var scope = NewDisposeScope();
        var probabilities = new List<Tensor>();
        if (robust)
        {
            using var generator = new Generator((ulong)attack!.Seed, CPU);
            // One copy of each image per label: keep the attacked batch near batchSize images.
            int images = Math.Max(1, batchSize / (int)model.Spec.NumClasses);
            foreach (var batch in validation.Batches(images, model.Device))
                using (batch)
                using (var step = NewDisposeScope())
                {
                    probabilities.Add((WorstCaseLogits((IGradientClassifier)model, batch.Inputs, batch.Labels, attack, generator).to(ScalarType.Float64)
                        + Keep(model.Spec.DecisionOffset)).sigmoid().cpu().MoveToOuterDisposeScope());
                    imagesDone?.Report((int)batch.Inputs.shape[0]);
                }
        }
        else
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
                ThresholdMetric.HammingAccuracy or ThresholdMetric.RobustHammingAccuracy => counts.HammingAccuracy,
                _ => counts.MicroF1,
            };
        }
        double best = 0.5, bestScore = Score(0.5), half = bestScore;
        foreach (var tau in Grid.OrderBy(t => Math.Abs(t - 0.5)))
        {
            var score = Score(tau);
            if (score > bestScore) (best, bestScore) = (tau, score);
        }
        return new ThresholdTuningResult(best, metric, half, bestScore, validation.Count) { Attack = robust ? attack : null };
    }

    /// <summary>
    /// Per image and label, the decision logit (the model's own, threshold folded in) at its worst within the ball: the
    /// smallest one seen for a present label, the largest for an absent one, over the clean input and a PGD run that
    /// asks that label alone to flip (<see cref="ThresholdAttack"/>). [N, K], float32, in the caller's scope. A
    /// decision is robustly correct at threshold offset t when this logit is still on its true side of t.
    /// </summary>
    public static Tensor WorstCaseLogits(IGradientClassifier model, Tensor inputs, Tensor labels, ThresholdAttack attack, Generator? generator = null)
    {
        long n = inputs.shape[0], k = labels.shape[1];
        var pgd = new ProjectedGradientAttack(new ThreatModel(attack.Norm, attack.Epsilon, model.Spec.Bounds))
        {
            Steps = attack.Steps,
            AbsoluteStepSize = 2.5 * attack.Epsilon / attack.Steps,
            Start = Starts.Uniform,
            EarlyStop = false,
        };
        using var scope = NewDisposeScope();
        var label = arange(Keep(k), device: inputs.device).repeat(n);
        var y = labels.repeat_interleave(k, 0);
        var adversarial = pgd.Craft(model, inputs.repeat_interleave(k, 0), new AttackTargets(y, MultiLabelTargets.FlipOnly(y, label)), new AttackContext(generator));
        using var eval = model.EvalMode();
        using var noGrad = no_grad();
        var attacked = model.Logits(adversarial).gather(1, label.unsqueeze(1)).view(n, k);
        var signs = MultiLabelTargets.Signs(labels);
        // s·z is the margin of the true side; keep the smaller of clean and attacked, and turn it back into a logit.
        return (minimum(signs * model.Logits(inputs), signs * attacked) * signs).MoveToOuterDisposeScope();
    }

    /// <summary>Metadata key of the tuning record in a model file.</summary>
    public const string MetadataKey = "training.threshold_tuning";

    public static string Format(double threshold) => threshold.ToString("R", CultureInfo.InvariantCulture);
}
