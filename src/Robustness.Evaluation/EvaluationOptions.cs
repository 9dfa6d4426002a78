using System.Globalization;
using Robustness.Core;
using Robustness.Core.Attacking;

namespace Robustness.Evaluation;

/// <summary>
/// What to evaluate and how. Attacks come from <see cref="Attacks"/> (a factory per threat model), so the options
/// stay independent of how attacks are configured: the CLI passes a <see cref="RegistryAttackSuite"/> built from
/// attack names or a preset plus the attack library's <c>AttackOptions</c>.
/// </summary>
public sealed record EvaluationOptions
{
    public required Norm Norm { get; init; }
    /// <summary>The main ε, in the units of the model's input bounds.</summary>
    public required double Epsilon { get; init; }
    /// <summary>Extra ε values for the accuracy-vs-ε sweep (the main ε is always included).</summary>
    public IReadOnlyList<double> SweepEpsilons { get; init; } = [];
    public required IAttackSuite Attacks { get; init; }
    public int BatchSize { get; init; } = 128;
    public long Seed { get; init; }
    /// <summary>Evaluate this many samples (a seeded random subset, in increasing row order); null = all.</summary>
    public int? SampleCount { get; init; }
    /// <summary>Explicit dataset rows; overrides <see cref="SampleCount"/>.</summary>
    public IReadOnlyList<long>? SampleIndices { get; init; }
    /// <summary>How many adversarial examples to keep for the perturbation gallery.</summary>
    public int ImageCount { get; init; } = 16;
    public bool SanityChecks { get; init; } = true;
    /// <summary>Samples the model-based sanity checks run on (the first ones in evaluation order).</summary>
    public int SanitySubset { get; init; } = 100;
    public ShardSpec? Shard { get; init; }
    public string? ModelPath { get; init; }
    public string? ModelSha256 { get; init; }
    /// <summary>The dataset split the samples come from ("test", "train"), recorded in the provenance; null when unknown.</summary>
    public string? DatasetSplit { get; init; }
    /// <summary>Arithmetic of the attacks' gradient passes ("float32", "bf16"), as recorded in the report. The caller
    /// chooses it by the model it passes (a bf16 gradient view judges every point in float32).</summary>
    public string AttackPrecision { get; init; } = "float32";
    /// <summary>Also verify every point with interval bound propagation at each ε (L∞ only) and report the verified
    /// accuracy beside the empirical one; a verified point an attack breaks is a bug and becomes a warning.</summary>
    public bool CertifyIbp { get; init; }
    /// <summary>Also return the point kept per sample at the main ε (<see cref="EvaluationResult.Kept"/>): the
    /// adversarial where an attack broke it, else the first attack's attempt.</summary>
    public bool KeepAdversarials { get; init; }
    /// <summary>
    /// Multi-label models: the attacks run per label after the ensemble, on every correct decision still standing, each
    /// asked to flip that one label (null = the same attacks as <see cref="Attacks"/>; a suite that builds no attack =
    /// none, which only measures the flips the sample attacks happen to make and so can overestimate per-label
    /// robustness).
    /// </summary>
    public IAttackSuite? LabelAttacks { get; init; }
    /// <summary>Multi-label models: evaluate a targeted threat (Song et al. 2018) — a sample is broken when the attack
    /// reaches its target set; no label stages. Null = untargeted.</summary>
    public Robustness.Attacks.LabelGoal? TargetGoal { get; init; }
    /// <summary>What the evaluated model is beyond its file (e.g. <c>input_noise_std</c> of a noise wrapper,
    /// <c>transfer_from</c> and its SHA-256), recorded in the provenance.</summary>
    public IReadOnlyDictionary<string, string> ModelNotes { get; init; } = new Dictionary<string, string>();

    /// <summary>The sorted, distinct ε list the evaluator runs (main ε included).</summary>
    public IReadOnlyList<double> AllEpsilons() =>
        SweepEpsilons.Append(Epsilon).Distinct().Order().ToArray();

    public void Validate(Bounds bounds)
    {
        foreach (var eps in AllEpsilons())
            new ThreatModel(Norm, eps, bounds).Validate(eps == Epsilon ? nameof(Epsilon) : nameof(SweepEpsilons));
        if (BatchSize <= 0) throw new ParameterException("BatchSize", $"must be > 0, got {BatchSize}");
        if (SampleCount is <= 0) throw new ParameterException("SampleCount", $"must be > 0, got {SampleCount}");
        if (ImageCount < 0) throw new ParameterException("ImageCount", $"must be ≥ 0, got {ImageCount}");
        if (SanitySubset <= 0) throw new ParameterException("SanitySubset", $"must be > 0, got {SanitySubset}");
        if (CertifyIbp && Norm != Norm.Linf) throw new ParameterException(nameof(CertifyIbp), $"IBP certifies L∞ balls, not {Norm.Name()}");
    }
}

/// <summary>
/// Shard <see cref="Index"/> of <see cref="Count"/>. The unit of sharding is the batch: the evaluation order is cut
/// into batches of the batch size, and batch b belongs to shard b mod n. Because every shard forms exactly the
/// batches an unsharded run forms, and each batch's attack randomness is seeded from (seed, ε, attack, first
/// position of the batch), a merge of all shards reproduces the unsharded run's per-sample results exactly.
/// (Splitting single samples k mod n would change batch composition, and with it random starts and the
/// floating-point order of batched kernels.)
/// </summary>
public sealed record ShardSpec(int Index, int Count)
{
    public const string Description = "batch b of the evaluation order goes to shard b mod n; attack randomness is seeded per (seed, eps, attack, batch start)";

    public static ShardSpec Parse(string text, string parameter = "Shard")
    {
        var parts = text.Split('/', StringSplitOptions.TrimEntries);
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var i)
            || !int.TryParse(parts[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
            throw new ParameterException(parameter, $"'{text}' is not of the form i/n (e.g. 0/4)");
        return new ShardSpec(i, n).Validate(parameter);
    }

    public ShardSpec Validate(string parameter = "Shard")
    {
        if (Count < 1 || Index < 0 || Index >= Count)
            throw new ParameterException(parameter, $"need 0 ≤ i < n, got {Index}/{Count}");
        return this;
    }

    public bool OwnsBatch(int batchNumber) => batchNumber % Count == Index;

    public override string ToString() => FormattableString.Invariant($"{Index}/{Count}");
}

/// <summary>Progress in attack-batch units: one unit is one attack on one batch at one ε (plus the clean pass).</summary>
public sealed record EvaluationProgress(string Phase, int Completed, int Total, double? Epsilon = null, string? Attack = null);

/// <summary>Builds the attacks of an evaluation for a threat model, plus the reference attacks sanity checks need.</summary>
public interface IAttackSuite
{
    /// <summary>For reports, e.g. "preset fast" or "fgsm, pgd".</summary>
    string Description { get; }
    /// <summary>The ensemble, in the order the worst case runs them.</summary>
    IReadOnlyList<IAttack> Build(ThreatModel threat);
    IAttack Fgsm(ThreatModel threat);
    IAttack Pgd(ThreatModel threat, int steps, int restarts);
    /// <summary>Steps and restarts of the suite's PGD, the baseline the "more iterations" spot check doubles.</summary>
    (int Steps, int Restarts) PgdBudget { get; }
}
