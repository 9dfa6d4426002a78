using System.Globalization;

namespace Robustness.Evaluation;

/// <summary>A report to compare and what to call it.</summary>
/// <param name="Label">Short name shown in columns (e.g. the report's folder name).</param>
/// <param name="Source">Where it was read from.</param>
public sealed record ComparedReport(string Label, string Source, RobustnessReport Report);

/// <summary>One measured quantity across the reports; <see cref="Values"/>[i] is report i's (null where it has none).</summary>
public sealed record ComparisonRow(string Label, IReadOnlyList<double?> Values)
{
    /// <summary>Report i minus the baseline (report 0); null when either is missing.</summary>
    public double? Delta(int i) => Values[i] is { } v && Values[0] is { } b ? v - b : null;
}

public sealed record ClassComparison(int Class, string Label, ComparisonRow Clean, ComparisonRow Robust);

/// <param name="PresentIn">Whether each report raised the warning.</param>
public sealed record WarningComparison(string Code, IReadOnlyList<bool> PresentIn, string Message);

/// <summary>
/// Paired outcome of report <see cref="Other"/> against the baseline on the same samples at one ε (or clean):
/// points robust in both, only in the baseline, only in the other, in neither; and McNemar's exact two-sided p-value
/// for the discordant pairs (how likely a split at least this uneven is if neither model is better).
/// </summary>
public sealed record PairedComparison(int Other, string What, double? Epsilon, int Both, int OnlyBaseline, int OnlyOther, int Neither, double PValue)
{
    public bool Significant => PValue < 0.05;
}

/// <summary>
/// Two or more robustness reports side by side, against the first (the baseline): headline numbers, the ε sweep,
/// the attack stages at the main ε, per class, warnings and — when all reports cover the same samples — paired
/// per-sample differences with McNemar's test, which is what tells "my defense helped" from sampling noise.
/// <see cref="Incompatibilities"/> lists why the numbers are not comparable (different threat model, dataset or
/// samples); callers decide whether to refuse.
/// </summary>
public sealed record ReportComparison
{
    public required IReadOnlyList<ComparedReport> Reports { get; init; }
    public required IReadOnlyList<string> Incompatibilities { get; init; }
    /// <summary>Differences that do not make the comparison meaningless but matter when reading it.</summary>
    public required IReadOnlyList<string> Notes { get; init; }
    public required IReadOnlyList<ComparisonRow> Headline { get; init; }
    /// <summary>Worst-case robust accuracy at each ε any report evaluated, increasing.</summary>
    public required IReadOnlyList<ComparisonRow> Sweep { get; init; }
    /// <summary>Cumulative robust accuracy after each attack at each report's main ε (attacks in order of first appearance).</summary>
    public required IReadOnlyList<ComparisonRow> Stages { get; init; }
    public required IReadOnlyList<ClassComparison> PerClass { get; init; }
    public required IReadOnlyList<WarningComparison> Warnings { get; init; }
    /// <summary>Null when the reports do not cover the same samples.</summary>
    public IReadOnlyList<PairedComparison>? Paired { get; init; }

    public const string MinimumNormLabel = "median minimum norm";

    public static ReportComparison Compare(IReadOnlyList<ComparedReport> reports)
    {
        ArgumentNullException.ThrowIfNull(reports);
        if (reports.Count < 2) throw new ArgumentException("at least two reports are needed", nameof(reports));
        var rs = reports.Select(r => r.Report).ToArray();
        var baseline = reports[0];

        var incompatible = new List<string>();
        for (int i = 1; i < reports.Count; i++)
        {
            var (a, b) = (baseline, reports[i]);
            if (!string.Equals(a.Report.Norm, b.Report.Norm, StringComparison.OrdinalIgnoreCase) || a.Report.Epsilon != b.Report.Epsilon)
                incompatible.Add($"threat models differ: {a.Label} is {Threat(a.Report)}, {b.Label} is {Threat(b.Report)}");
            if (!string.Equals(a.Report.Provenance.DatasetName, b.Report.Provenance.DatasetName, StringComparison.OrdinalIgnoreCase))
                incompatible.Add($"datasets differ: {a.Label} is {a.Report.Provenance.DatasetName}, {b.Label} is {b.Report.Provenance.DatasetName}");
            else if (!SameSamples(a.Report, b.Report))
                incompatible.Add($"sample sets differ: {a.Label} has {Describe(a.Report)}, {b.Label} has {Describe(b.Report)}");
        }

        var notes = new List<string>();
        var attackSets = rs.Select(r => string.Join(",", r.Provenance.Attacks.Select(a => a.Name))).Distinct().ToArray();
        if (attackSets.Length > 1)
            notes.Add($"attack sets differ ({string.Join(" vs ", attackSets)}): a weaker attack set overestimates robustness");
        else if (rs.Select(r => ResultRecord.HashAttacks(r.Provenance.Attacks)).Distinct().Count() > 1)
            notes.Add("the attacks have different parameters (steps, restarts, ...): see each report's provenance");
        if (rs.Select(r => r.Provenance.Seed).Distinct().Count() > 1)
            notes.Add($"seeds differ ({string.Join(", ", rs.Select(r => r.Provenance.Seed))})");
        if (rs.Select(r => r.Provenance.ModelSha256).Distinct().Count() < rs.Length)
            notes.Add("some reports evaluate the same model file (same SHA-256)");
        foreach (var r in reports.Where(r => r.Report.Shard is not null))
            notes.Add($"{r.Label} covers one shard only ({r.Report.Shard!.Index}/{r.Report.Shard.Count})");

        var headline = new List<ComparisonRow>
        {
            new("clean accuracy", rs.Select(r => (double?)r.CleanAccuracy).ToArray()),
            new("robust accuracy (worst case, main ε)", rs.Select(r => (double?)r.RobustAccuracy).ToArray()),
        };
        if (rs.Any(r => r.Perturbation.MedianMinimumNorm is not null))
            headline.Add(new(MinimumNormLabel, rs.Select(r => r.Perturbation.MedianMinimumNorm).ToArray()));

        var epsilons = rs.SelectMany(r => r.EpsSweep.Select(e => e.Epsilon)).Distinct().Order().ToArray();
        var sweep = epsilons.Select(eps => new ComparisonRow($"ε = {Num(eps)}",
            rs.Select(r => r.EpsSweep.FirstOrDefault(e => e.Epsilon == eps)?.RobustAccuracy).ToArray())).ToArray();

        var attackNames = rs.SelectMany(r => r.PerAttack.Select(a => a.Name)).Distinct().ToArray();
        var stages = attackNames.Select(name => new ComparisonRow($"after {name}",
            rs.Select(r => r.PerAttack.FirstOrDefault(a => a.Name == name)?.RobustAccuracyAfter).ToArray())).ToArray();

        var classes = rs.SelectMany(r => r.PerClass.Select(c => (c.Class, c.Label))).GroupBy(c => c.Class).OrderBy(g => g.Key)
            .Select(g => new ClassComparison(g.Key, g.First().Label,
                new ComparisonRow("clean", rs.Select(r => r.PerClass.FirstOrDefault(c => c.Class == g.Key) is { Count: > 0 } c ? (double?)c.CleanAccuracy : null).ToArray()),
                new ComparisonRow("robust", rs.Select(r => r.PerClass.FirstOrDefault(c => c.Class == g.Key) is { Count: > 0 } c ? (double?)c.RobustAccuracy : null).ToArray())))
            .ToArray();

        var warnings = rs.SelectMany(r => r.Warnings).GroupBy(w => w.Code).Select(g => new WarningComparison(g.Key,
            rs.Select(r => r.Warnings.Any(w => w.Code == g.Key)).ToArray(), g.First().Message)).ToArray();

        bool paired = rs.Skip(1).All(r => SameSamples(rs[0], r) && string.Equals(r.Provenance.DatasetName, rs[0].Provenance.DatasetName, StringComparison.OrdinalIgnoreCase))
            && rs.All(r => r.Samples.Count == r.Provenance.SampleIndices.Count && r.Samples.Select(s => s.Index).Distinct().Count() == r.Samples.Count);
        return new ReportComparison
        {
            Reports = reports,
            Incompatibilities = incompatible,
            Notes = notes,
            Headline = headline,
            Sweep = sweep,
            Stages = stages,
            PerClass = classes,
            Warnings = warnings,
            Paired = paired ? Pairs(rs, epsilons) : null,
        };
    }

    private static List<PairedComparison> Pairs(RobustnessReport[] rs, double[] epsilons)
    {
        var result = new List<PairedComparison>();
        var baseline = rs[0].Samples.ToDictionary(s => s.Index);
        for (int i = 1; i < rs.Length; i++)
        {
            var other = rs[i].Samples.ToDictionary(s => s.Index);
            result.Add(Pair(i, "clean", null, baseline, other, s => s.CleanCorrect, s => s.CleanCorrect));
            foreach (var eps in epsilons.Where(e => e > 0)) // at ε = 0 robust is clean-correct: the row above
            {
                int a = IndexOf(rs[0], eps), b = IndexOf(rs[i], eps);
                if (a < 0 || b < 0) continue;
                result.Add(Pair(i, $"robust at ε = {Num(eps)}", eps, baseline, other, s => s.RobustAt(a), s => s.RobustAt(b)));
            }
        }
        return result;
    }

    private static PairedComparison Pair(int index, string what, double? eps, Dictionary<long, SampleOutcome> baseline, Dictionary<long, SampleOutcome> other,
        Func<SampleOutcome, bool> inBaseline, Func<SampleOutcome, bool> inOther)
    {
        int both = 0, onlyBase = 0, onlyOther = 0, neither = 0;
        foreach (var (key, s) in baseline)
        {
            bool x = inBaseline(s), y = inOther(other[key]);
            if (x && y) both++; else if (x) onlyBase++; else if (y) onlyOther++; else neither++;
        }
        return new PairedComparison(index, what, eps, both, onlyBase, onlyOther, neither, McNemarExact(onlyBase, onlyOther));
    }

    private static int IndexOf(RobustnessReport r, double eps)
    {
        for (int i = 0; i < r.EpsSweep.Count; i++) if (r.EpsSweep[i].Epsilon == eps) return i;
        return -1;
    }

    /// <summary>
    /// McNemar's exact test: two-sided binomial p-value of min(b, c) successes in b + c trials with p = ½,
    /// i.e. min(1, 2·Σ_{k ≤ min(b,c)} C(n, k)/2ⁿ), summed in log space so large n does not overflow.
    /// </summary>
    public static double McNemarExact(int b, int c)
    {
        if (b < 0 || c < 0) throw new ArgumentOutOfRangeException(nameof(b), "counts must be ≥ 0");
        int n = b + c, k = Math.Min(b, c);
        if (n == 0) return 1;
        double logHalfN = n * Math.Log(0.5), logC = 0, max = double.NegativeInfinity;
        var terms = new double[k + 1];
        for (int j = 0; j <= k; j++)
        {
            if (j > 0) logC += Math.Log(n - j + 1) - Math.Log(j);
            terms[j] = logC + logHalfN;
            max = Math.Max(max, terms[j]);
        }
        double sum = terms.Sum(t => Math.Exp(t - max));
        return Math.Min(1, 2 * Math.Exp(max + Math.Log(sum)));
    }

    /// <summary>Same samples: equal index sets (order may differ; pairing goes by index).</summary>
    public static bool SameSamples(RobustnessReport a, RobustnessReport b) =>
        a.Provenance.SampleIndices.Count == b.Provenance.SampleIndices.Count
        && a.Provenance.SampleIndices.Order().SequenceEqual(b.Provenance.SampleIndices.Order());

    public static string Threat(RobustnessReport r) => $"{LeaderboardTable.NormText(r.Norm)} ε = {Num(r.Epsilon)}";

    private static string Describe(RobustnessReport r) =>
        $"{r.Provenance.SampleIndices.Count} samples ({ResultRecord.HashIndices(r.Provenance.SampleIndices)[..8]})";

    internal static string Num(double v) => v.ToString("0.#####", CultureInfo.InvariantCulture);
}
