using System.Globalization;

namespace Robustness.Evaluation;

/// <summary>Which results a leaderboard shows; null fields match everything.</summary>
public sealed record LeaderboardQuery
{
    public string? Dataset { get; init; }
    public string? Norm { get; init; }
    public double? Epsilon { get; init; }
    /// <summary>One row per run (per result key) instead of one row per model.</summary>
    public bool AllRuns { get; init; }

    public ResultQuery ToResultQuery() => new() { Dataset = Dataset, Norm = Norm, Epsilon = Epsilon };
}

/// <summary>Ranked tables, one per dataset and threat model.</summary>
public sealed record Leaderboard(IReadOnlyList<LeaderboardTable> Tables, LeaderboardQuery Query, string Source, DateTimeOffset Generated);

/// <param name="SampleSetsDiffer">The rows were evaluated on different sample sets: their numbers are not strictly comparable.</param>
/// <param name="AttackSetsDiffer">The rows were attacked with different attack sets.</param>
public sealed record LeaderboardTable(string Dataset, string Norm, double Epsilon, IReadOnlyList<LeaderboardRow> Rows, bool SampleSetsDiffer, bool AttackSetsDiffer)
{
    public string Title => $"{Dataset} · {NormText(Norm)} ε = {Epsilon.ToString("0.#####", CultureInfo.InvariantCulture)}";

    public static string NormText(string norm) => norm.ToLowerInvariant() switch
    {
        "linf" => "L∞",
        "l2" => "L2",
        "l1" => "L1",
        _ => norm,
    };
}

/// <summary>One model (or one run with <see cref="LeaderboardQuery.AllRuns"/>) in a table.</summary>
public sealed record LeaderboardRow
{
    /// <summary>1-based; equal robust and certified accuracy share a rank.</summary>
    public required int Rank { get; init; }
    public required string ModelName { get; init; }
    public required string ModelSha256 { get; init; }
    public string ShortSha => ModelSha256.Length > 8 ? ModelSha256[..8] : ModelSha256;
    public required double CleanAccuracy { get; init; }
    /// <summary>Worst case over the attack set; null when the model was only certified at this threat model.</summary>
    public double? RobustAccuracy { get; init; }
    /// <summary>The best certified accuracy recorded for the model at this threat model (null: never certified).</summary>
    public double? CertifiedAccuracy { get; init; }
    public string? CertificationMethod { get; init; }
    /// <summary>Certified above empirical robust accuracy on the same samples: impossible for a sound proof, so a bug.</summary>
    public bool CertifiedAboveRobust { get; init; }
    public required string AttackSet { get; init; }
    public required int SampleCount { get; init; }
    public required string SamplesSha256 { get; init; }
    public required long Seed { get; init; }
    public required DateTimeOffset Date { get; init; }
    public string? ReportPath { get; init; }
    public IReadOnlyList<string>? WarningCodes { get; init; }
    /// <summary>Distinct evaluations of this model at this threat model (the row shows the one with the lowest robust accuracy).</summary>
    public required int Runs { get; init; }
    public required long RecordId { get; init; }
    public required string ToolVersion { get; init; }
}

/// <summary>
/// Builds RobustBench-style tables from the results store. Each run key counts once (its newest record); by default a
/// model's row is its <b>lowest</b> robust accuracy over its evaluations at the threat model — the strongest attack
/// found so far, never the most flattering one; ties go to more samples, then to the newer run. The certified column
/// is the best certified accuracy recorded for the model at the same dataset and threat model.
/// </summary>
public static class LeaderboardBuilder
{
    public static Leaderboard Build(IEnumerable<ResultRecord> records, LeaderboardQuery query, string source, DateTimeOffset? generated = null)
    {
        var latest = records
            .Where(r => Matches(r, query))
            .GroupBy(r => r.Key)
            .Select(g => g.MaxBy(r => r.Id)!)
            .ToArray();
        var tables = latest
            .GroupBy(r => (Dataset: r.Dataset.ToLowerInvariant(), Norm: r.Norm.ToLowerInvariant(), r.Epsilon))
            .OrderBy(g => g.Key.Dataset, StringComparer.Ordinal).ThenBy(g => g.Key.Norm, StringComparer.Ordinal).ThenBy(g => g.Key.Epsilon)
            .Select(g => Table(g.First().Dataset, g.First().Norm, g.Key.Epsilon, g.ToArray(), query.AllRuns))
            .Where(t => t.Rows.Count > 0)
            .ToArray();
        return new Leaderboard(tables, query, source, generated ?? DateTimeOffset.UtcNow);
    }

    private static bool Matches(ResultRecord r, LeaderboardQuery q) =>
        (q.Dataset is null || string.Equals(r.Dataset, q.Dataset, StringComparison.OrdinalIgnoreCase))
        && (q.Norm is null || string.Equals(r.Norm, q.Norm, StringComparison.OrdinalIgnoreCase))
        && (q.Epsilon is not { } e || Math.Abs(r.Epsilon - e) <= 1e-12 + 1e-9 * Math.Abs(e));

    private static LeaderboardTable Table(string dataset, string norm, double epsilon, ResultRecord[] records, bool allRuns)
    {
        var evals = records.Where(r => r.Kind == ResultRecord.EvalKind && r.RobustAccuracy is not null).ToArray();
        var certified = records.Where(r => r.CertifiedAccuracy is not null).ToArray();
        var rows = new List<LeaderboardRow>();
        // A smoothed classifier is another classifier than its base model: its certificates get rows of their own.
        static string Classifier(ResultRecord r) => r.CertificationMethod is { } m && m.StartsWith("smoothing", StringComparison.Ordinal) && r.RobustAccuracy is null
            ? r.ModelSha256 + "|" + m : r.ModelSha256;
        foreach (var model in records.GroupBy(Classifier))
        {
            var modelEvals = evals.Where(r => Classifier(r) == model.Key).ToArray();
            var bestCert = certified.Where(r => Classifier(r) == model.Key).MaxBy(r => r.CertifiedAccuracy);
            IEnumerable<ResultRecord> shown = modelEvals.Length == 0
                ? bestCert is null ? [] : [bestCert]
                : allRuns ? modelEvals : [modelEvals.OrderBy(r => r.RobustAccuracy).ThenByDescending(r => r.SampleCount).ThenByDescending(r => r.Id).First()];
            foreach (var r in shown)
            {
                var cert = r.CertifiedAccuracy is not null ? r : bestCert;
                bool aboveRobust = r.RobustAccuracy is { } robust && certified
                    .Where(c => Classifier(c) == model.Key && c.SamplesSha256 == r.SamplesSha256)
                    .Any(c => c.CertifiedAccuracy > robust + 1e-12);
                rows.Add(new LeaderboardRow
                {
                    Rank = 0,
                    ModelName = model.Key.Contains('|') ? $"{r.ModelName} ({r.CertificationMethod})" : r.ModelName,
                    ModelSha256 = r.ModelSha256,
                    CleanAccuracy = r.CleanAccuracy,
                    RobustAccuracy = r.RobustAccuracy,
                    CertifiedAccuracy = cert?.CertifiedAccuracy,
                    CertificationMethod = cert?.CertificationMethod,
                    CertifiedAboveRobust = aboveRobust,
                    AttackSet = r.Kind == ResultRecord.CertifyKind ? $"certified only ({r.CertificationMethod ?? r.AttackSet})" : r.AttackSet,
                    SampleCount = r.SampleCount,
                    SamplesSha256 = r.SamplesSha256,
                    Seed = r.Seed,
                    Date = r.Date,
                    ReportPath = r.ReportPath,
                    WarningCodes = r.WarningCodes,
                    Runs = Math.Max(1, modelEvals.Length),
                    RecordId = r.Id,
                    ToolVersion = r.ToolVersion,
                });
            }
        }
        var ordered = rows
            .OrderByDescending(r => r.RobustAccuracy ?? double.NegativeInfinity)
            .ThenByDescending(r => r.CertifiedAccuracy ?? double.NegativeInfinity)
            .ThenByDescending(r => r.CleanAccuracy)
            .ThenBy(r => r.ModelName, StringComparer.Ordinal)
            .ToArray();
        for (int i = 0; i < ordered.Length; i++)
        {
            bool tie = i > 0 && ordered[i].RobustAccuracy == ordered[i - 1].RobustAccuracy && ordered[i].CertifiedAccuracy == ordered[i - 1].CertifiedAccuracy;
            ordered[i] = ordered[i] with { Rank = tie ? ordered[i - 1].Rank : i + 1 };
        }
        var measured = ordered.Where(r => r.RobustAccuracy is not null).ToArray();
        return new LeaderboardTable(dataset, norm, epsilon, ordered,
            SampleSetsDiffer: measured.Select(r => r.SamplesSha256).Distinct().Count() > 1,
            AttackSetsDiffer: measured.Select(r => r.AttackSet).Distinct().Count() > 1);
    }
}
