using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Robustness.Core;

namespace Robustness.Evaluation;

/// <summary>
/// One finished run as the results store keeps it: what was evaluated (model, dataset, samples, threat model, attack
/// set, seed — together the <see cref="Key"/>), the headline numbers, the per-attack stages and the ε sweep, and where
/// the full report is. Accuracies are fractions in [0, 1].
/// </summary>
public sealed record ResultRecord
{
    public const string EvalKind = "eval";
    public const string CertifyKind = "certify";

    /// <summary>Row id assigned by the store (0 before it is appended).</summary>
    public long Id { get; init; }
    /// <summary><see cref="EvalKind"/> (empirical, from attacks) or <see cref="CertifyKind"/> (a certification run).</summary>
    public required string Kind { get; init; }
    public required string ModelSha256 { get; init; }
    /// <summary>What people call the model: the model file's name without extension.</summary>
    public required string ModelName { get; init; }
    public string? ModelPath { get; init; }
    public string? ModelArch { get; init; }
    /// <summary>Dataset name; a split other than test is appended after a colon ("fashion-mnist:train").</summary>
    public required string Dataset { get; init; }
    /// <summary>SHA-256 of the sample index list (<see cref="HashIndices"/>).</summary>
    public required string SamplesSha256 { get; init; }
    public required int SampleCount { get; init; }
    public required string Norm { get; init; }
    public required double Epsilon { get; init; }
    /// <summary>Attack names in order, comma-separated ("apgd-ce,apgd-t,square"); the certification method for certify runs.</summary>
    public required string AttackSet { get; init; }
    /// <summary>SHA-256 of every attack's name and parameters (two runs of "pgd" with different steps differ here).</summary>
    public required string AttackConfigSha256 { get; init; }
    public required long Seed { get; init; }
    public required double CleanAccuracy { get; init; }
    /// <summary>Per-sample worst case over the attack set at <see cref="Epsilon"/>; null for a certification-only run.</summary>
    public double? RobustAccuracy { get; init; }
    /// <summary>Fraction proven robust at <see cref="Epsilon"/> (null when nothing was certified).</summary>
    public double? CertifiedAccuracy { get; init; }
    /// <summary>How <see cref="CertifiedAccuracy"/> was proven ("ibp", "crown-ibp", "smoothing").</summary>
    public string? CertificationMethod { get; init; }
    /// <summary>Warning codes the run raised; null when unknown (records made before schema version 2).</summary>
    public IReadOnlyList<string>? WarningCodes { get; init; }
    /// <summary>Arithmetic of the attacks' gradient passes ("float32", "bf16"); null when unknown.</summary>
    public string? AttackPrecision { get; init; }
    public required string ToolVersion { get; init; }
    public required DateTimeOffset Date { get; init; }
    /// <summary>Absolute path of the run's report.json (or certificate.json) when it was written.</summary>
    public string? ReportPath { get; init; }
    /// <summary>Cumulative robust accuracy after each attack, for every ε of the sweep.</summary>
    public IReadOnlyList<StageRecord> Stages { get; init; } = [];
    /// <summary>Worst-case (and certified, when known) accuracy at each ε, increasing.</summary>
    public IReadOnlyList<SweepRecord> Sweep { get; init; } = [];

    /// <summary>
    /// Identifies the experiment: model SHA-256, dataset, sample indices, threat model, attack configuration, seed and
    /// kind. Two records with the same key ran the same thing; the newer supersedes the older.
    /// </summary>
    public string Key => Sha256Hex(string.Join("\n", Kind, ModelSha256, Dataset, SamplesSha256, Norm,
        Epsilon.ToString("R", CultureInfo.InvariantCulture), AttackConfigSha256, Seed.ToString(CultureInfo.InvariantCulture)));

    public string ShortSha => ModelSha256.Length > 8 ? ModelSha256[..8] : ModelSha256;

    /// <summary>SHA-256 (lower-case hex) of the indices written as decimal numbers separated by commas, in order.</summary>
    public static string HashIndices(IReadOnlyList<long> indices) =>
        Sha256Hex(string.Join(",", indices.Select(i => i.ToString(CultureInfo.InvariantCulture))));

    /// <summary>SHA-256 of the attack descriptions: name and sorted parameters of each attack, in order.</summary>
    public static string HashAttacks(IReadOnlyList<AttackDescription> attacks) =>
        Sha256Hex(string.Join("\n", attacks.Select(a =>
            a.Name + "(" + string.Join(",", a.Parameters.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}")) + ")")));

    /// <summary>
    /// The record of a complete evaluation report; <paramref name="reportPath"/> is the report.json written for it. The
    /// dataset label carries the report's split when it is not the test split.
    /// </summary>
    public static ResultRecord FromReport(RobustnessReport report, string? reportPath)
    {
        ArgumentNullException.ThrowIfNull(report);
        var p = report.Provenance;
        if (report.Shard is { } shard)
            throw new ParameterException(nameof(report), $"covers shard {shard.Index}/{shard.Count} only; record the merged report of all shards");
        if (string.IsNullOrEmpty(p.ModelSha256))
            throw new ParameterException(nameof(Provenance.ModelSha256), "is required to record a result (the report has no model hash)");
        var stages = report.EpsSweep.SelectMany(e => e.PerAttack.Select((a, i) => new StageRecord(e.Epsilon, i, a.Name, a.RobustAccuracyAfter, a.RobustAfter, a.Broken))).ToArray();
        return new ResultRecord
        {
            Kind = EvalKind,
            ModelSha256 = p.ModelSha256,
            ModelName = ModelNameOf(p.ModelPath, p.ModelArch),
            ModelPath = p.ModelPath,
            ModelArch = p.ModelArch,
            Dataset = DatasetLabel(p.DatasetName, p.DatasetSplit),
            SamplesSha256 = HashIndices(p.SampleIndices),
            SampleCount = report.Total,
            Norm = report.Norm,
            Epsilon = report.Epsilon,
            AttackSet = string.Join(",", p.Attacks.Select(a => a.Name)),
            AttackConfigSha256 = HashAttacks(p.Attacks),
            Seed = p.Seed,
            CleanAccuracy = report.CleanAccuracy,
            RobustAccuracy = report.RobustAccuracy,
            CertifiedAccuracy = report.VerifiedAccuracy,
            CertificationMethod = report.VerifiedAccuracy is null ? null : p.Certification ?? "ibp",
            WarningCodes = report.Warnings.Select(w => w.Code).ToArray(),
            AttackPrecision = p.AttackPrecision,
            ToolVersion = p.ToolVersion,
            Date = p.Date,
            ReportPath = reportPath is null ? null : Path.GetFullPath(reportPath),
            Stages = stages,
            Sweep = report.EpsSweep.Select(e => new SweepRecord(e.Epsilon, e.RobustAccuracy, e.VerifiedAccuracy)).ToArray(),
        };
    }

    /// <summary>
    /// The records of a certificate (robust certify). Interval bounds (ibp, crown-ibp) prove the model itself robust at
    /// each ε verified: one record per ε. Randomized smoothing certifies the smoothed classifier, not the model: its
    /// records say so in <see cref="CertificationMethod"/> ("smoothing σ=0.25"), one per radius that is a multiple of
    /// 0.25 on its curve. A certificate the attack check contradicted proves nothing and gives no record.
    /// </summary>
    public static IReadOnlyList<ResultRecord> FromCertificate(CertificateReport certificate, string? reportPath, string? split)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var p = certificate.Provenance;
        if (string.IsNullOrEmpty(p.ModelSha256))
            throw new ParameterException(nameof(CertificateProvenance.ModelSha256), "is required to record a result (the certificate has no model hash)");
        if (certificate.EmpiricalCheck is { Passed: false }) return [];
        bool smoothing = certificate.Method == "smoothing";
        var method = smoothing ? $"smoothing σ={p.Parameters.GetValueOrDefault("sigma", "?")}" : certificate.Method;
        var curve = certificate.CertifiedAccuracyByRadius;
        var radii = smoothing
            ? curve.Where(r => r.Radius > 0 && Math.Abs(r.Radius / 0.25 - Math.Round(r.Radius / 0.25)) < 1e-6).ToArray()
            : curve.ToArray();
        var sweep = curve.Select(r => new SweepRecord(r.Radius, null, r.Accuracy)).ToArray();
        var config = Sha256Hex(method + "\n" + string.Join("\n", p.Parameters.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}")));
        return radii.Select(r => new ResultRecord
        {
            Kind = CertifyKind,
            ModelSha256 = p.ModelSha256,
            ModelName = ModelNameOf(p.ModelPath, p.ModelArch),
            ModelPath = p.ModelPath,
            ModelArch = p.ModelArch,
            Dataset = DatasetLabel(p.DatasetName, split),
            SamplesSha256 = HashIndices(p.SampleIndices),
            SampleCount = certificate.Total,
            Norm = certificate.Norm,
            Epsilon = r.Radius,
            AttackSet = method,
            AttackConfigSha256 = config,
            Seed = p.Seed,
            CleanAccuracy = certificate.CleanAccuracy,
            CertifiedAccuracy = r.Accuracy,
            CertificationMethod = method,
            WarningCodes = certificate.Warnings.Select(w => w.Code).ToArray(),
            ToolVersion = p.ToolVersion,
            Date = p.Date,
            ReportPath = reportPath is null ? null : Path.GetFullPath(reportPath),
            Sweep = sweep,
        }).ToArray();
    }

    public static string ModelNameOf(string? modelPath, string arch) =>
        string.IsNullOrEmpty(modelPath) ? arch : Path.GetFileNameWithoutExtension(modelPath);

    public static string DatasetLabel(string name, string? split) =>
        string.IsNullOrEmpty(split) || split.Equals("test", StringComparison.OrdinalIgnoreCase) ? name : $"{name}:{split}";

    internal static string Sha256Hex(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}

/// <param name="Position">Index of the attack in the attack set.</param>
/// <param name="RobustAccuracyAfter">Robust accuracy after this attack and every attack before it (cumulative).</param>
/// <param name="RobustAfter">Points still robust after it.</param>
/// <param name="Broken">Points this attack broke first.</param>
public sealed record StageRecord(double Epsilon, int Position, string Attack, double RobustAccuracyAfter, int RobustAfter, int Broken);

/// <param name="RobustAccuracy">Worst case over the attack set at this ε (null for certification-only runs).</param>
/// <param name="CertifiedAccuracy">Proven robust at this ε (null when not certified).</param>
public sealed record SweepRecord(double Epsilon, double? RobustAccuracy, double? CertifiedAccuracy);
