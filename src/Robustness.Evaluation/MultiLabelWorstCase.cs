using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Evaluation;

/// <summary>
/// One batch of a multi-label model at one ε: the worst case per sample and per label.
/// <list type="number">
/// <item>Sample stages: the ensemble on the samples that are exact matches (<see cref="StandingPoints"/>, a stage runs
/// only on samples no earlier stage broke); a sample breaks when any label flips (untargeted) or its goal is reached
/// (targeted). Every label a stage's point flips is recorded, on every row it ran on.</item>
/// <item>Label stages (untargeted only): each label attack runs on every (sample, label) decision that is correct and
/// still standing, with a goal that asks only that label to flip (<see cref="MultiLabelTargets.FlipOnly"/>), again
/// through <see cref="StandingPoints"/>; every label its point flips is recorded, and a sample whose label flips is
/// broken (by that stage) if nothing broke it before.</item>
/// </list>
/// A decision counts as robust only if no stage flipped it. Stage i &lt; A is sample attack i, A + j label attack j.
/// Attacks that do not differentiate the model count their queries per sample and stage (a label stage adds up the
/// queries of the sample's (sample, label) pairs; its queries to success are those of the pair that broke the sample,
/// each pair having the attack's budget), as <see cref="WorstCaseBatch"/> does for single-label models.
/// </summary>
internal sealed class MultiLabelWorstCase
{
    private readonly int _n, _k;

    private MultiLabelWorstCase(int n, int k, IReadOnlyList<IAttack> stages)
    {
        (_n, _k) = (n, k);
        // Attacks that do not differentiate the model count their queries: 0 until they run on a sample.
        var counted = stages.Select(a => a.Needs != ModelAccess.Gradients).ToArray();
        Queries = counted.Any(c => c)
            ? Enumerable.Range(0, n).Select(_ => counted.Select(c => c ? 0L : (long?)null).ToArray()).ToArray()
            : null;
        QueriesToSuccess = new long?[n];
        BrokenBy = Enumerable.Repeat(-1, n).ToArray();
        Distance = new double[n];
        Flipped = new bool[n, k];
        FlippedBy = new int[n, k];
        AdversarialSet = new int[n][];
        MinimumNorm = new double?[n];
    }

    public int[] BrokenBy { get; }
    public double[] Distance { get; }
    /// <summary>[sample, label]: a correct decision that some stage flipped.</summary>
    public bool[,] Flipped { get; }
    /// <summary>[sample, label]: the stage that first flipped the decision (where <see cref="Flipped"/>).</summary>
    public int[,] FlippedBy { get; }
    /// <summary>Predicted set at the breaking adversarial (null where not broken).</summary>
    public int[]?[] AdversarialSet { get; }
    public double?[] MinimumNorm { get; }
    /// <summary>Per sample, per stage: queries asked (null for stages that do not count); null when none counts.</summary>
    public long?[][]? Queries { get; }
    /// <summary>Per sample: the breaking stage's queries until it held the adversarial (null: not broken or not counted).</summary>
    public long?[] QueriesToSuccess { get; }
    public Dictionary<int, GalleryAttempt> Gallery { get; } = [];
    public KeptPoints? Kept { get; private set; }

    public IReadOnlyList<int> FlippedOf(int i) => Enumerable.Range(0, _k).Where(c => Flipped[i, c]).ToArray();
    public IReadOnlyList<int> FlippedByOf(int i) => Enumerable.Range(0, _k).Where(c => Flipped[i, c]).Select(c => FlippedBy[i, c]).ToArray();

    /// <param name="attackable">Samples the sample stages run on (exact matches whose goal is not met yet).</param>
    /// <param name="correctLabels">[n, K] decisions correct on the clean input (the only ones that can be flipped).</param>
    /// <param name="goal">Targeted evaluation: the goals [n, K]; then there are no label stages.</param>
    public static MultiLabelWorstCase Run(IClassifier model, Tensor x, Tensor y, bool[] attackable, bool[,] correctLabels,
        IReadOnlyList<IAttack> attacks, IReadOnlyList<IAttack> labelAttacks, Tensor? goal, Func<int, ulong> seedOf, CancellationToken cancel,
        ISet<int> galleryRows, bool keep, Action<int, double> onStage)
    {
        int n = attackable.Length, k = (int)y.shape[1];
        var outcome = new MultiLabelWorstCase(n, k, [.. attacks, .. labelAttacks]);
        using var scope = NewDisposeScope();
        var context = new AttackContext(null, null, cancel);
        var targets = new AttackTargets(y, goal);
        using var blocked = tensor(attackable.Select(a => !a).ToArray(), device: model.Device);
        var points = new StandingPoints(x, targets, KeepRule.SuccessOrFirstAttempt, blocked);
        points.Run(StandingPoints.StagesOf(model, attacks), context, StageSeeding.PerStage(seedOf), report =>
        {
            if (report.Outcome?.Result is { } result)
                outcome.Record(report.Rows.cpu().data<long>().Select(r => (int)r).ToArray(), result, report.Index, attacks[report.Index].Name,
                    correctLabels, y.index_select(0, report.Rows), galleryRows, fromLabelStage: false);
            onStage(report.Index, report.Seconds);
        });
        var kept = points.Adversarial;
        bool ownsKept = false;

        if (goal is null)
            for (int j = 0; j < labelAttacks.Count; j++)
            {
                var watch = System.Diagnostics.Stopwatch.StartNew();
                cancel.ThrowIfCancellationRequested();
                var pairs = new List<(int Sample, int Label)>();
                for (int i = 0; i < n; i++)
                    for (int c = 0; c < k; c++)
                        if (correctLabels[i, c] && !outcome.Flipped[i, c]) pairs.Add((i, c));
                // In chunks of at most one batch of rows: a batch of B samples has up to B·K standing decisions.
                int chunkSize = Math.Max(1, n);
                for (int chunk = 0; chunk * chunkSize < pairs.Count; chunk++)
                {
                    using var stageScope = NewDisposeScope();
                    var part = pairs.Skip(chunk * chunkSize).Take(chunkSize).ToArray();
                    var sampleIndex = tensor(part.Select(p => (long)p.Sample).ToArray(), device: model.Device);
                    var labelIndex = tensor(part.Select(p => (long)p.Label).ToArray(), device: model.Device);
                    var yPairs = y.index_select(0, sampleIndex);
                    var pairTargets = new AttackTargets(yPairs, MultiLabelTargets.FlipOnly(yPairs, labelIndex));
                    var pairPoints = new StandingPoints(x.index_select(0, sampleIndex), pairTargets, KeepRule.Success);
                    int stage = attacks.Count + j;
                    var attack = labelAttacks[j];
                    ulong seed = seedOf(stage) + (ulong)chunk * 0x9E3779B97F4A7C15UL;
                    pairPoints.Run(StandingPoints.StagesOf(model, [attack]), context, StageSeeding.PerStage(_ => seed), report =>
                    {
                        if (report.Outcome?.Result is not { } result) return;
                        var rows = report.Rows.cpu().data<long>().Select(r => part[(int)r].Sample).ToArray();
                        var newlyBroken = outcome.Record(rows, result, stage, "label:" + attack.Name, correctLabels, yPairs.index_select(0, report.Rows),
                            galleryRows, fromLabelStage: true);
                        if (keep && newlyBroken.Count > 0)
                        {
                            // The sample's kept point becomes the label stage's adversarial that first broke it.
                            var local = tensor(newlyBroken.Select(b => (long)b.Row).ToArray(), device: model.Device);
                            var samples = tensor(newlyBroken.Select(b => (long)b.Sample).ToArray(), device: model.Device);
                            var next = kept.index_copy(0, samples, result.Adversarial.index_select(0, local).to(kept.dtype)).DetachFromDisposeScope();
                            if (ownsKept) kept.Dispose();
                            (kept, ownsKept) = (next, true);
                        }
                    });
                }
                onStage(attacks.Count + j, watch.Elapsed.TotalSeconds);
            }
        if (keep) outcome.Kept = KeptPoints.Of(model, x, kept, attacks[0].Threat);
        if (ownsKept) kept.Dispose();
        return outcome;
    }

    /// <summary>Records a stage's checked result on <paramref name="samples"/> (one entry per result row). Returns the
    /// (result row, sample) pairs this stage broke first.</summary>
    private List<(int Row, int Sample)> Record(int[] samples, AttackResult result, int stage, string attackName, bool[,] correctLabels,
        Tensor rowLabels, ISet<int> galleryRows, bool fromLabelStage)
    {
        using var scope = NewDisposeScope();
        var predicted = MultiLabelTargets.Predicted(result.Logits).cpu().data<bool>().ToArray();
        var truth = MultiLabelTargets.On(rowLabels).cpu().data<bool>().ToArray();
        var dist = result.Distance.cpu().to(ScalarType.Float64).data<double>().ToArray();
        var mins = result.MinimumNorm?.cpu().to(ScalarType.Float64).data<double>().ToArray();
        bool gallery = samples.Any(galleryRows.Contains);
        using var advCpu = gallery ? result.Adversarial.cpu().to(ScalarType.Float32) : null;
        double[]? logits = gallery ? LogitsOf(result.Logits) : null;
        var success = result.Success.cpu().data<bool>().ToArray();
        var queries = result.Queries?.cpu().data<long>().ToArray();
        var toSuccess = result.QueriesToSuccess?.cpu().data<long>().ToArray();
        var newlyBroken = new List<(int, int)>();
        for (int j = 0; j < samples.Length; j++)
        {
            int i = samples[j];
            if (mins is not null && double.IsFinite(mins[j]))
                MinimumNorm[i] = Math.Min(MinimumNorm[i] ?? double.PositiveInfinity, mins[j]);
            // A label stage runs once per (sample, label) pair: the sample's count is the sum over its pairs so far.
            if (queries is not null && Queries is not null) Queries[i][stage] = (fromLabelStage ? Queries[i][stage] ?? 0 : 0) + queries[j];
            bool flippedAny = false;
            for (int c = 0; c < _k; c++)
                if (correctLabels[i, c] && predicted[j * _k + c] != truth[j * _k + c])
                {
                    if (!Flipped[i, c]) FlippedBy[i, c] = stage;
                    Flipped[i, c] = true;
                    flippedAny = true;
                }
            // Sample stages break by their criterion (which is the goal when targeted); label stages by any flip.
            bool broke = fromLabelStage ? flippedAny : success[j];
            bool first = broke && BrokenBy[i] < 0;
            if (first)
            {
                BrokenBy[i] = stage;
                // The breaking run's own count (a label stage: the pair that broke it), within the attack's budget.
                if (queries is not null)
                    QueriesToSuccess[i] = toSuccess is not null && toSuccess[j] >= 0 ? toSuccess[j] : queries[j];
                Distance[i] = dist[j];
                AdversarialSet[i] = Enumerable.Range(0, _k).Where(c => predicted[j * _k + c]).ToArray();
                newlyBroken.Add((j, i));
            }
            if (advCpu is not null && galleryRows.Contains(i) && (!fromLabelStage || first) && !(Gallery.TryGetValue(i, out var g) && g.Broken))
                Gallery[i] = new GalleryAttempt(advCpu[j].flatten().data<float>().ToArray(), -1, 0, broke, attackName, dist[j])
                {
                    PredictedSet = Enumerable.Range(0, _k).Where(c => predicted[j * _k + c]).ToArray(),
                    DecisionLogits = logits!.Skip(j * _k).Take(_k).ToArray(),
                };
        }
        return newlyBroken;
    }

    /// <summary>Decision logits flattened [rows·K] on the CPU (σ(z + offset) is the model's probability).</summary>
    internal static double[] LogitsOf(Tensor logits)
    {
        using var scope = NewDisposeScope();
        return logits.detach().to(ScalarType.Float64).cpu().contiguous().flatten().data<double>().ToArray();
    }
}
