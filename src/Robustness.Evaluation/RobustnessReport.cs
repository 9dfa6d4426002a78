using System.Text.Json.Serialization;

namespace Robustness.Evaluation;

/// <summary>
/// The result of an evaluation. Every aggregate (accuracies, stages, sweep, per-class, perturbation statistics) is
/// derived from <see cref="Samples"/> by <see cref="ReportAggregator"/>, so that shards can be merged into exactly the
/// report an unsharded run produces. Accuracies are fractions in [0, 1].
/// </summary>
public sealed record RobustnessReport
{
    public const int CurrentSchemaVersion = 1;

    public int SchemaVersion { get; init; } = CurrentSchemaVersion;
    public required string Norm { get; init; }
    /// <summary>The main ε (the one <see cref="RobustAccuracy"/> refers to).</summary>
    public required double Epsilon { get; init; }
    public required int Total { get; init; }
    public required double CleanAccuracy { get; init; }
    /// <summary>Per-sample worst case over every attack at the main ε.</summary>
    public required double RobustAccuracy { get; init; }

    // Multi-label models only (absent from single-label reports). Clean and robust accuracy above are then the subset
    // (exact-match) accuracies; per_class holds each label's decision accuracy (clean and worst case).

    /// <summary>Multi-label: clean exact-match ratio (equals <see cref="CleanAccuracy"/>).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? SubsetAccuracy { get; init; }
    /// <summary>Multi-label: clean (sample, label) decisions that are correct, over N·K.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? HammingAccuracy { get; init; }
    /// <summary>Multi-label: samples with every label correct and no label flipped by any attack at the main ε.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? RobustSubsetAccuracy { get; init; }
    /// <summary>Multi-label: (sample, label) decisions correct clean and flipped by no attack at the main ε, over N·K.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? RobustHammingAccuracy { get; init; }
    /// <summary>Multi-label: per-label metrics, the Hamming sweep, labels flipped.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public MultiLabelReport? MultiLabel { get; init; }

    /// <summary>With certification (eval --certify): the fraction IBP proves robust at the main ε; null otherwise.
    /// Always at most <see cref="RobustAccuracy"/> (a violation is a bug and raises the certified-but-broken warning).</summary>
    public double? VerifiedAccuracy { get; init; }
    /// <summary>AutoAttack-style stages at the main ε: robust accuracy after each attack, cumulatively.</summary>
    public required IReadOnlyList<AttackStageReport> PerAttack { get; init; }
    /// <summary>One entry per evaluated ε (the main ε included), in increasing ε.</summary>
    public required IReadOnlyList<EpsilonResult> EpsSweep { get; init; }
    public required IReadOnlyList<ClassAccuracy> PerClass { get; init; }
    public required PerturbationStatistics Perturbation { get; init; }
    public required IReadOnlyList<ReportWarning> Warnings { get; init; }
    /// <summary>What each sanity check measured, whether or not it fired (lets a merge recompute warnings).</summary>
    public required IReadOnlyList<SanityCheckResult> SanityChecks { get; init; }
    public required Provenance Provenance { get; init; }
    /// <summary>Per-sample outcomes in evaluation order (small: labels, predictions, breaking attack, distance).</summary>
    public required IReadOnlyList<SampleOutcome> Samples { get; init; }
    /// <summary>Set when this report covers one shard only; null for a complete (or merged) report.</summary>
    public ShardInfo? Shard { get; init; }
    /// <summary>The queries of the query-based attacks (score-based, decision-based, transfer) at the main ε; null
    /// when none ran.</summary>
    public QueryReport? Queries { get; init; }
}

/// <summary>
/// The multi-label part of a report. Worst case per sample: a sample is robust when it is an exact match and no attack
/// flipped any of its labels. Worst case per label: a (sample, label) decision is robust when it is correct and no
/// attack — the ensemble on the samples, then each label attack on every decision still standing — flipped it.
/// "Under attack" precision, recall and F1 count each decision that is not robust as wrong.
/// </summary>
/// <param name="DecisionThreshold">The model's probability threshold τ (decision logit = raw logit − logit τ).</param>
/// <param name="LabelStages">Names of the per-label stages (the label attacks), after the sample-level attacks.</param>
/// <param name="Goal">For a targeted evaluation, the target label sets (success = goal reached); null when untargeted.</param>
public sealed record MultiLabelReport(
    double DecisionThreshold, double LabelCardinality, double PredictedCardinality,
    double CleanMicroF1, double RobustMicroF1, double CleanMacroF1, double RobustMacroF1,
    double MeanLabelsFlipped, double MeanLabelsFlippedBroken,
    IReadOnlyList<LabelMetrics> PerLabel, IReadOnlyList<MultiLabelEpsilonResult> EpsSweep,
    IReadOnlyList<string> LabelStages, string? Goal, string Objectives);

/// <param name="Support">Samples that have the label.</param>
public sealed record LabelMetrics(int Label, string Name, int Support,
    double CleanPrecision, double CleanRecall, double CleanF1, double RobustPrecision, double RobustRecall, double RobustF1,
    double CleanAccuracy, double RobustAccuracy);

/// <param name="MeanLabelsFlipped">Labels flipped per sample (over all samples; clean-correct labels only).</param>
/// <param name="FlippedHistogram">Samples with 0, 1, 2, … labels flipped.</param>
public sealed record MultiLabelEpsilonResult(double Epsilon, double RobustSubsetAccuracy, double RobustHammingAccuracy,
    double MeanLabelsFlipped, IReadOnlyList<int> FlippedHistogram);

/// <summary>
/// How many queries the query-based attacks asked of the model at the main ε (one query = one sample through the
/// model), and how robust accuracy depends on the query budget.
/// </summary>
/// <param name="RobustAccuracyByBudget">Robust accuracy when every query-based attack had stopped after q queries per
/// sample (points broken by other attacks count at every q; the last entry is the budget and equals the report's
/// robust accuracy). After an earlier attack broke a point, later attacks did not run on it, so below the budget this
/// is an upper bound for a run with a budget of q.</param>
/// <param name="ModelQueries">Samples the model answered over the whole evaluation (attacks, clean passes, final
/// verdicts, sanity checks) when it is a query-only model; null otherwise.</param>
public sealed record QueryReport(IReadOnlyList<AttackQueryStatistics> PerAttack, IReadOnlyList<QueryBudgetPoint> RobustAccuracyByBudget, long? ModelQueries);

/// <param name="Budget">The attack's budget per sample (its "queries" parameter).</param>
/// <param name="Samples">Samples it ran on (still robust when its turn came).</param>
/// <param name="Total">Queries it asked for, over those samples.</param>
/// <param name="Successes">Samples it broke.</param>
/// <param name="QueriesToSuccess">Over the samples it broke: the queries it had used when it first held their adversarial.</param>
public sealed record AttackQueryStatistics(string Name, long? Budget, int Samples, long Total, double Mean, long Max, int Successes, QueryQuantiles? QueriesToSuccess);

public sealed record QueryQuantiles(double Median, double Q25, double Q75, double Q90, long Max);

public sealed record QueryBudgetPoint(long Queries, double RobustAccuracy);

/// <param name="Name">Attack name as in the registry.</param>
/// <param name="RobustAccuracyAfter">Robust accuracy after this attack and every attack before it.</param>
/// <param name="RobustAfter">Number of points still robust after this attack.</param>
/// <param name="Broken">Points this attack broke first (that no earlier attack broke).</param>
/// <param name="Seconds">Wall time spent in this attack (summed over batches and shards).</param>
public sealed record AttackStageReport(string Name, double RobustAccuracyAfter, int RobustAfter, int Broken, double Seconds)
{
    /// <summary>Multi-label: (sample, label) decisions this attack flipped first, and the robust Hamming accuracy after it.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? LabelsFlipped { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? RobustHammingAfter { get; init; }
}

/// <param name="PerAttack">Robust accuracy after each attack (cumulative, as in <see cref="AttackStageReport"/>).</param>
public sealed record EpsilonResult(double Epsilon, double RobustAccuracy, int Robust, IReadOnlyList<AttackStageReport> PerAttack)
{
    /// <summary>IBP-verified accuracy at this ε when the evaluation certified (else null).</summary>
    public double? VerifiedAccuracy { get; init; }
    public int? Verified { get; init; }
}

public sealed record ClassAccuracy(int Class, string Label, int Count, int CleanCorrect, int RobustCorrect, double CleanAccuracy, double RobustAccuracy)
{
    /// <summary>IBP-verified points of the class at the main ε (null without certification).</summary>
    public int? Verified { get; init; }
}

/// <summary>
/// Norms of successful adversarial perturbations at the main ε (in the threat model's norm). The median minimum
/// norm is only set when a minimum-norm attack (e.g. C&amp;W, DeepFool) reported one.
/// </summary>
public sealed record PerturbationStatistics(int Successful, double MaxNorm, double MeanNorm, double? MedianMinimumNorm, int MinimumNormCount);

/// <param name="Code">Stable identifier, e.g. "zero-gradients".</param>
/// <param name="Message">What was observed and what it means.</param>
/// <param name="Advice">What to do about it.</param>
public sealed record ReportWarning(string Code, string Message, string Advice);

/// <summary>One sanity check's outcome: the measured value, the threshold, whether it fired.</summary>
/// <param name="Scope">"data" checks are recomputed from the samples after a merge; "model" checks ran the model on a subset.</param>
public sealed record SanityCheckResult(string Code, string Scope, bool Fired, double Measured, double Threshold, int SubsetSize, string Detail);

public sealed record SampleOutcome
{
    /// <summary>Position in the evaluation order (0..Total−1), the unit of sharding.</summary>
    public required int Position { get; init; }
    /// <summary>Row in the dataset.</summary>
    public required long Index { get; init; }
    public required int Label { get; init; }
    public required int CleanPrediction { get; init; }
    public required double CleanConfidence { get; init; }
    /// <summary>One entry per ε of <see cref="RobustnessReport.EpsSweep"/>, same order.</summary>
    public required IReadOnlyList<SampleEpsilonOutcome> PerEpsilon { get; init; }
    /// <summary>Multi-label: the true label set (ascending class indices); <see cref="Label"/> and
    /// <see cref="CleanPrediction"/> are then −1.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<int>? LabelSet { get; init; }
    /// <summary>Multi-label: the predicted label set on the clean input.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<int>? PredictedSet { get; init; }
    /// <summary>Single-label: top-1 correct. Multi-label: exact match of the predicted and true sets.</summary>
    public bool CleanCorrect => LabelSet is { } set ? PredictedSet is { } p && p.SequenceEqual(set) : CleanPrediction == Label;
    /// <summary>Multi-label: labels decided correctly on the clean input.</summary>
    public IEnumerable<int> CorrectLabels(int classes) =>
        Enumerable.Range(0, classes).Where(c => (LabelSet?.Contains(c) ?? false) == (PredictedSet?.Contains(c) ?? false));
    /// <summary>Clean-correct and not broken by any attack at ε index <paramref name="epsIndex"/>: robust.</summary>
    public bool RobustAt(int epsIndex) => CleanCorrect && !PerEpsilon[epsIndex].Broken;
}

/// <param name="BrokenBy">Index of the first attack that broke the point, −1 when it stayed robust or was misclassified clean (not attacked).</param>
/// <param name="Distance">‖δ‖ of the breaking adversarial, 0 when not broken.</param>
/// <param name="AdversarialPrediction">Prediction on the breaking adversarial, −1 when not broken.</param>
/// <param name="MinimumNorm">Smallest adversarial norm a minimum-norm attack found, null when none reported one.</param>
/// <param name="AdversarialConfidence">Softmax confidence of that prediction; NaN for a label-only model (no scores).</param>
/// <param name="Verified">IBP proved the point robust at this ε (null when the evaluation did not certify).</param>
public sealed record SampleEpsilonOutcome(double Epsilon, int BrokenBy, double Distance, int AdversarialPrediction, double AdversarialConfidence, double? MinimumNorm = null,
    bool? Verified = null)
{
    public bool Broken => BrokenBy >= 0;
    /// <summary>Multi-label: clean-correct labels some attack flipped at this ε (ascending).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<int>? FlippedLabels { get; init; }
    /// <summary>Multi-label: per entry of <see cref="FlippedLabels"/>, the stage (attack index) that flipped it first.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<int>? FlippedBy { get; init; }
    /// <summary>Multi-label: the predicted set at the breaking adversarial (null when not broken).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<int>? AdversarialSet { get; init; }
    /// <summary>Per attack (same order as the report's attacks): queries it asked on this sample, 0 where it did not
    /// run on it, null for attacks that do not count queries. Null when no attack counts queries.</summary>
    public IReadOnlyList<long?>? Queries { get; init; }
    /// <summary>Queries the breaking attack had used when it first held this sample's adversarial; null when not
    /// broken or broken by an attack that does not count queries.</summary>
    public long? QueriesToSuccess { get; init; }
}

public sealed record ShardInfo(int Index, int Count);

/// <param name="NeedsGradients">White-box (kept beside <see cref="Needs"/> for readers of older reports).</param>
public sealed record AttackDescription(string Name, bool NeedsGradients, IReadOnlyDictionary<string, string> Parameters)
{
    /// <summary>What the attack needs from the model: "gradients", "scores" or "labels" (null in older reports: read
    /// <see cref="NeedsGradients"/>).</summary>
    public string? Needs { get; init; }
    /// <summary>True for attacks that do not differentiate the model (score-based, decision-based, transfer).</summary>
    public bool BlackBox => Needs is null ? !NeedsGradients : Needs != "gradients";
}

public sealed record Provenance
{
    public required string ToolVersion { get; init; }
    public required string TorchSharpVersion { get; init; }
    public required string Libtorch { get; init; }
    public required string Device { get; init; }
    public required long Seed { get; init; }
    public required int BatchSize { get; init; }
    /// <summary>Arithmetic of the attacks' gradient passes: "float32" or "bf16" (verdicts are always float32).</summary>
    public string AttackPrecision { get; init; } = "float32";
    /// <summary>"ibp" when the evaluation also certified every point (eval --certify), else null.</summary>
    public string? Certification { get; init; }
    /// <summary>Attacks at the main ε, in order, with every parameter.</summary>
    public required IReadOnlyList<AttackDescription> Attacks { get; init; }
    public required string DatasetName { get; init; }
    public required string DatasetSource { get; init; }
    /// <summary>Split of the dataset the samples come from ("test", "train"); null in reports that did not record it.</summary>
    public string? DatasetSplit { get; init; }
    public required IReadOnlyList<string> ClassNames { get; init; }
    public required IReadOnlyList<long> SampleIndices { get; init; }
    public string? ModelPath { get; init; }
    public string? ModelSha256 { get; init; }
    public required string ModelArch { get; init; }
    /// <summary>What wraps the model beyond its file (input noise, a transfer surrogate); empty for the file as it is.</summary>
    public IReadOnlyDictionary<string, string> ModelNotes { get; init; } = new Dictionary<string, string>();
    public required double WallSeconds { get; init; }
    public required DateTimeOffset Date { get; init; }
    public string Sharding { get; init; } = ShardSpec.Description;
}
