using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Evaluation;

/// <summary>An adversarial attempt kept for the gallery: the point, its prediction, whether it broke the sample.</summary>
internal sealed record GalleryAttempt(float[] Adversarial, int Prediction, double Confidence, bool Broken, string Attack, double Distance)
{
    /// <summary>Multi-label: the predicted set at the point, and its decision logits.</summary>
    public int[]? PredictedSet { get; init; }
    public double[]? DecisionLogits { get; init; }
}

/// <summary>
/// One batch at one ε: the per-sample worst case over the attacks (<see cref="StandingPoints"/>, AutoAttack's
/// protocol), seeded per (seed, ε, attack, batch start), with what the report records per sample: the attack that
/// first broke it, that adversarial's distance and prediction, the smallest minimum norm any attack found, and
/// gallery attempts. Optionally the point kept for every sample (the adversarial where broken, else the first
/// attack's attempt), for `robust attack`'s adversarial file.
/// </summary>
internal sealed class WorstCaseBatch
{
    private WorstCaseBatch(int n, IReadOnlyList<IAttack> attacks)
    {
        // Attacks that do not differentiate the model count their queries: 0 until they run on a sample.
        var counted = attacks.Select(a => a.Needs != ModelAccess.Gradients).ToArray();
        Queries = counted.Any(c => c)
            ? Enumerable.Range(0, n).Select(_ => counted.Select(c => c ? 0L : (long?)null).ToArray()).ToArray()
            : null;
        QueriesToSuccess = new long?[n];
        BrokenBy = Enumerable.Repeat(-1, n).ToArray();
        Distance = new double[n];
        AdversarialPrediction = Enumerable.Repeat(-1, n).ToArray();
        AdversarialConfidence = new double[n];
        MinimumNorm = new double?[n];
    }

    public int[] BrokenBy { get; }
    public double[] Distance { get; }
    public int[] AdversarialPrediction { get; }
    public double[] AdversarialConfidence { get; }
    public double?[] MinimumNorm { get; }
    /// <summary>Per sample, per attack: queries asked (null for attacks that do not count); null when none counts.</summary>
    public long?[][]? Queries { get; }
    /// <summary>Per sample: the breaking attack's queries until it held the adversarial (null: not broken or not counted).</summary>
    public long?[] QueriesToSuccess { get; }
    public Dictionary<int, GalleryAttempt> Gallery { get; } = [];
    /// <summary>When asked for: per sample the kept point (CPU, flattened) with its distance and prediction.</summary>
    public KeptPoints? Kept { get; private set; }

    /// <param name="cleanCorrect">Only these rows are attacked; the others count as broken before any attack.</param>
    /// <param name="galleryRows">Rows whose attempts are kept for the gallery.</param>
    /// <param name="onStage">Called after each attack with its index and seconds (progress, timing).</param>
    public static WorstCaseBatch Run(IClassifier model, Tensor x, Tensor y, bool[] cleanCorrect, IReadOnlyList<IAttack> attacks,
        StageSeeding seeding, CancellationToken cancel, ISet<int> galleryRows, bool keep, Action<int, double> onStage)
    {
        int n = cleanCorrect.Length;
        var outcome = new WorstCaseBatch(n, attacks);
        bool labelsOnly = ModelAccesses.Of(model) == ModelAccess.Labels;
        using var scope = NewDisposeScope();
        using var wrong = tensor(cleanCorrect.Select(c => !c).ToArray(), device: model.Device);
        var points = new StandingPoints(x, new AttackTargets(y), KeepRule.SuccessOrFirstAttempt, wrong);
        points.Run(StandingPoints.StagesOf(model, attacks), new AttackContext(null, null, cancel), seeding, report =>
        {
            if (report.Outcome?.Result is { } result)
                outcome.Record(report.Rows.cpu().data<long>().Select(r => (int)r).ToArray(), result, report.Index, attacks[report.Index].Name, galleryRows, labelsOnly);
            onStage(report.Index, report.Seconds);
        });
        if (keep) outcome.Kept = KeptPoints.Of(model, x, points.Adversarial, attacks[0].Threat);
        return outcome;
    }

    private void Record(int[] rows, AttackResult result, int attack, string attackName, ISet<int> galleryRows, bool labelsOnly)
    {
        var success = result.Success.cpu().data<bool>().ToArray();
        var dist = result.Distance.cpu().to(ScalarType.Float64).data<double>().ToArray();
        var (pred, conf) = Predictions.Of(result.Logits, labelsOnly);
        var mins = result.MinimumNorm?.cpu().to(ScalarType.Float64).data<double>().ToArray();
        var queries = result.Queries?.cpu().data<long>().ToArray();
        var toSuccess = result.QueriesToSuccess?.cpu().data<long>().ToArray();
        using var advCpu = rows.Any(galleryRows.Contains) ? result.Adversarial.cpu().to(ScalarType.Float32) : null;
        for (int j = 0; j < rows.Length; j++)
        {
            int i = rows[j];
            if (mins is not null && double.IsFinite(mins[j]))
                MinimumNorm[i] = Math.Min(MinimumNorm[i] ?? double.PositiveInfinity, mins[j]);
            if (queries is not null && Queries is not null) Queries[i][attack] = queries[j];
            if (success[j])
            {
                BrokenBy[i] = attack;
                QueriesToSuccess[i] = toSuccess is not null && toSuccess[j] >= 0 ? toSuccess[j] : queries?[j];
                Distance[i] = dist[j];
                AdversarialPrediction[i] = pred[j];
                AdversarialConfidence[i] = conf[j];
            }
            if (advCpu is not null && galleryRows.Contains(i))
                Gallery[i] = new GalleryAttempt(advCpu[j].flatten().data<float>().ToArray(), pred[j], conf[j], success[j], attackName, dist[j]);
        }
    }
}

/// <summary>The point kept per sample (adversarial where broken, else the first attempt; the input where no attack
/// ran), flattened on the CPU, with its distance to the input and the model's prediction on it (multi-label models:
/// <see cref="PredictedSets"/>, N·K flags, and −1 predictions).</summary>
public sealed record KeptPoints(float[] Pixels, double[] Distance, int[] Prediction, double[] Confidence)
{
    public bool[]? PredictedSets { get; init; }

    internal static KeptPoints Of(IClassifier model, Tensor x, Tensor kept, ThreatModel threat)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var mode = Evaluator.EvalScope(model);
        var distance = Core.Geometry.Geometries.For(threat.Norm).Distance(kept.to(ScalarType.Float64) - x.to(ScalarType.Float64));
        var logits = model.Logits(kept);
        var pixels = kept.cpu().to(ScalarType.Float32).contiguous().flatten().data<float>().ToArray();
        var distances = distance.cpu().data<double>().ToArray();
        if (model.Spec.MultiLabel)
        {
            int n = (int)kept.shape[0];
            return new KeptPoints(pixels, distances, Enumerable.Repeat(-1, n).ToArray(), new double[n])
            {
                PredictedSets = MultiLabelTargets.Predicted(logits).cpu().contiguous().flatten().data<bool>().ToArray(),
            };
        }
        var (pred, conf) = Predictions.Of(logits, ModelAccesses.Of(model) == ModelAccess.Labels);
        return new KeptPoints(pixels, distances, pred, conf);
    }

    public static KeptPoints Concat(IEnumerable<KeptPoints> parts)
    {
        var list = parts.ToArray();
        return new KeptPoints(list.SelectMany(p => p.Pixels).ToArray(), list.SelectMany(p => p.Distance).ToArray(),
            list.SelectMany(p => p.Prediction).ToArray(), list.SelectMany(p => p.Confidence).ToArray())
        {
            PredictedSets = list.All(p => p.PredictedSets is not null) && list.Length > 0 ? list.SelectMany(p => p.PredictedSets!).ToArray() : null,
        };
    }
}

/// <summary>Top-1 predictions and their softmax confidence, on the CPU.</summary>
internal static class Predictions
{
    /// <param name="labelsOnly">A label-only model: its one-hot outputs carry no confidence, reported as NaN.</param>
    public static (int[] Pred, double[] Conf) Of(Tensor logits, bool labelsOnly = false)
    {
        using var scope = NewDisposeScope();
        var probs = logits.detach().to(ScalarType.Float64).softmax(1);
        var (conf, pred) = probs.max(1);
        var confidence = labelsOnly ? Enumerable.Repeat(double.NaN, (int)pred.shape[0]).ToArray() : conf.cpu().data<double>().ToArray();
        return (pred.cpu().data<long>().Select(v => (int)v).ToArray(), confidence);
    }
}
