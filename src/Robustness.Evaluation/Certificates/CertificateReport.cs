namespace Robustness.Evaluation;

/// <summary>
/// What `robust certify` proves about a model on a set of points: per-point certificates (IBP at a fixed L∞ ε, or
/// randomized smoothing's L2 radius), the aggregates derived from them, the empirical cross-check against an attack,
/// warnings and provenance. Accuracies are fractions in [0, 1].
/// </summary>
public sealed record CertificateReport
{
    public const int CurrentSchemaVersion = 1;
    public int SchemaVersion { get; init; } = CurrentSchemaVersion;
    /// <summary>"ibp" or "smoothing".</summary>
    public required string Method { get; init; }
    public required string Norm { get; init; }
    public required int Total { get; init; }
    /// <summary>IBP: the network's clean accuracy. Smoothing: the smoothed classifier's (argmax of the n Monte-Carlo counts).</summary>
    public required double CleanAccuracy { get; init; }
    /// <summary>Smoothing: the base classifier's accuracy on the clean points (no noise); null for IBP.</summary>
    public double? BaseCleanAccuracy { get; init; }
    /// <summary>IBP: fraction verified at <see cref="Epsilon"/>; null for smoothing.</summary>
    public double? VerifiedAccuracy { get; init; }
    /// <summary>IBP: the ε of <see cref="VerifiedAccuracy"/>.</summary>
    public double? Epsilon { get; init; }
    /// <summary>Smoothing: certified accuracy at radius 0 (CERTIFY did not abstain and its class is the label); null for IBP.</summary>
    public double? CertifiedAccuracy { get; init; }
    /// <summary>Smoothing: fraction of points CERTIFY abstained on (0 for IBP, which never abstains).</summary>
    public required double AbstentionRate { get; init; }
    /// <summary>Certified (smoothing) or verified (IBP, one entry per ε) accuracy at each radius, increasing.</summary>
    public required IReadOnlyList<RadiusAccuracy> CertifiedAccuracyByRadius { get; init; }
    public required IReadOnlyList<ClassCertificate> PerClass { get; init; }
    /// <summary>The attack cross-check: certified ≤ empirical, per point. Null when not run.</summary>
    public EmpiricalCheck? EmpiricalCheck { get; init; }
    /// <summary>Smoothing: the largest radius the sample size allows, and what the paper's n = 100,000 would allow.</summary>
    public SampleSizeCost? SampleSize { get; init; }
    public required IReadOnlyList<ReportWarning> Warnings { get; init; }
    public required CertificateProvenance Provenance { get; init; }
    public required IReadOnlyList<CertifiedSample> Samples { get; init; }
}

public sealed record RadiusAccuracy(double Radius, double Accuracy, int Count);

public sealed record ClassCertificate(int Class, string Label, int Count, int CleanCorrect, int Certified, int Abstained, double CleanAccuracy, double CertifiedAccuracy);

/// <param name="MaxRadius">σ·Φ⁻¹(α^(1/n)): no point can be certified beyond it with these n samples.</param>
/// <param name="PaperMaxRadius">The same with n = 100,000 (the paper's default).</param>
public sealed record SampleSizeCost(long N, double MaxRadius, long PaperN, double PaperMaxRadius, string Note);

/// <summary>
/// Certified versus empirical on the same points. For IBP the attack runs at ε on every clean-correct point; a verified
/// point the attack breaks is a violation (a bug). For smoothing the smoothed classifier is attacked at each radius
/// (PGD on its soft version) and judged by PREDICT; a point certified at r whose attacked point PREDICT assigns,
/// confidently, another class is a violation.
/// </summary>
public sealed record EmpiricalCheck
{
    public required string Attack { get; init; }
    public required IReadOnlyDictionary<string, string> Parameters { get; init; }
    public required int Points { get; init; }
    public required IReadOnlyList<EmpiricalRadius> Radii { get; init; }
    public required int Violations { get; init; }
    public bool Passed => Violations == 0 && Radii.All(r => r.Certified <= r.EmpiricalRobust);
    public required string Definition { get; init; }
}

/// <param name="Certified">Certified (or verified) accuracy at the radius, on the checked points.</param>
/// <param name="EmpiricalRobust">Fraction the attack did not refute (the number certified must stay below).</param>
/// <param name="EmpiricalRobustStrict">Smoothing: PREDICT returned the label on both the clean and the attacked point
/// (abstentions count as errors); IBP: same as <see cref="EmpiricalRobust"/>.</param>
/// <param name="Violations">Points certified at this radius that the attack refuted.</param>
public sealed record EmpiricalRadius(double Radius, double Certified, double EmpiricalRobust, double EmpiricalRobustStrict, int Violations);

public sealed record CertifiedSample
{
    public required long Index { get; init; }
    public required int Label { get; init; }
    /// <summary>The network's prediction on the clean point (no noise).</summary>
    public required int CleanPrediction { get; init; }
    /// <summary>IBP: the clean prediction. Smoothing: CERTIFY's class, −1 when it abstained.</summary>
    public required int Prediction { get; init; }
    /// <summary>Smoothing: argmax of the n counts (the Monte-Carlo smoothed prediction, no abstention).</summary>
    public int? SmoothedPrediction { get; init; }
    /// <summary>Certified L2 radius (smoothing; 0 when abstained or wrong), or the ε of a verified point (IBP; 0 when not verified).</summary>
    public required double Radius { get; init; }
    /// <summary>Whether the certificate holds for the label (verified / certified with the right class).</summary>
    public required bool Certified { get; init; }
    public double? PALower { get; init; }
    public long? CountA { get; init; }
    /// <summary>IBP: the smallest margin lower bound over j ≠ y at the main ε (positive = verified).</summary>
    public double? WorstMargin { get; init; }
    /// <summary>IBP with an ε list: verified at each ε of <see cref="CertificateReport.CertifiedAccuracyByRadius"/>.</summary>
    public IReadOnlyList<bool>? VerifiedByRadius { get; init; }
    /// <summary>The attack refuted the point at these radii (only for checked points).</summary>
    public IReadOnlyList<double>? RefutedAt { get; init; }
    public bool CleanCorrect => CleanPrediction == Label;
}

public sealed record CertificateProvenance
{
    public required string ToolVersion { get; init; }
    public required string TorchSharpVersion { get; init; }
    public required string Libtorch { get; init; }
    public required string Device { get; init; }
    public required long Seed { get; init; }
    public required int BatchSize { get; init; }
    public required IReadOnlyDictionary<string, string> Parameters { get; init; }
    public required string DatasetName { get; init; }
    public required string DatasetSource { get; init; }
    public required IReadOnlyList<string> ClassNames { get; init; }
    public required IReadOnlyList<long> SampleIndices { get; init; }
    public string? ModelPath { get; init; }
    public string? ModelSha256 { get; init; }
    public required string ModelArch { get; init; }
    public required double WallSeconds { get; init; }
    public required double SecondsPerPoint { get; init; }
    public required DateTimeOffset Date { get; init; }
}
