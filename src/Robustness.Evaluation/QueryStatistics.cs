using System.Globalization;

namespace Robustness.Evaluation;

/// <summary>
/// The report's query section, derived from the per-sample outcomes at the main ε (so a merge of shards gives the
/// unsharded numbers): per query-based attack its queries and queries to success, and robust accuracy against the
/// query budget.
/// </summary>
internal static class QueryStatistics
{
    public static QueryReport? Build(IReadOnlyList<SampleOutcome> samples, IReadOnlyList<AttackDescription> attacks, int mainEps, long? modelQueries)
    {
        var counted = attacks.Select(a => a.BlackBox).ToArray();
        if (!counted.Any(c => c)) return null;
        var outcomes = samples.Select(s => (Sample: s, Outcome: s.PerEpsilon[mainEps])).ToArray();
        var perAttack = new List<AttackQueryStatistics>();
        for (int a = 0; a < attacks.Count; a++)
        {
            if (!counted[a]) continue;
            var spent = outcomes.Select(o => o.Outcome.Queries is { } q && a < q.Count ? q[a] ?? 0 : 0).Where(q => q > 0).ToArray();
            var toSuccess = outcomes.Where(o => o.Sample.CleanCorrect && o.Outcome.BrokenBy == a)
                .Select(o => (double)BrokenAt(o.Outcome, a, Budget(attacks[a]))).Order().ToArray();
            long total = spent.Sum();
            perAttack.Add(new AttackQueryStatistics(attacks[a].Name, Budget(attacks[a]), spent.Length, total,
                spent.Length == 0 ? 0 : (double)total / spent.Length, spent.Length == 0 ? 0 : spent.Max(), toSuccess.Length,
                toSuccess.Length == 0 ? null : new QueryQuantiles(Quantile(toSuccess, 0.5), Quantile(toSuccess, 0.25), Quantile(toSuccess, 0.75),
                    Quantile(toSuccess, 0.9), (long)toSuccess[^1])));
        }
        long maxBudget = Math.Max(1, perAttack.Select(p => p.Budget ?? p.Max).DefaultIfEmpty(1).Max());
        var curve = Budgets(maxBudget).Select(q => new QueryBudgetPoint(q, RobustAt(outcomes, counted, attacks, q))).ToArray();
        return new QueryReport(perAttack, curve, modelQueries);
    }

    /// <summary>Robust accuracy when every query-based attack stops after <paramref name="budget"/> queries per sample.</summary>
    public static double RobustAt(IReadOnlyList<(SampleOutcome Sample, SampleEpsilonOutcome Outcome)> outcomes, bool[] counted,
        IReadOnlyList<AttackDescription> attacks, long budget)
    {
        if (outcomes.Count == 0) return 0;
        int robust = outcomes.Count(o => o.Sample.CleanCorrect
            && !(o.Outcome.Broken && (!counted[o.Outcome.BrokenBy] || BrokenAt(o.Outcome, o.Outcome.BrokenBy, Budget(attacks[o.Outcome.BrokenBy])) <= budget)));
        return (double)robust / outcomes.Count;
    }

    /// <summary>Queries after which the breaking attack held the adversarial (its whole spend, else its budget, when
    /// the count to success is missing).</summary>
    private static long BrokenAt(SampleEpsilonOutcome o, int attack, long? budget) =>
        o.QueriesToSuccess ?? (o.Queries is { } q && attack < q.Count ? q[attack] : null) ?? budget ?? long.MaxValue;

    /// <summary>The attack's "queries" parameter (its budget per sample); transfer attacks record 1.</summary>
    public static long? Budget(AttackDescription a) =>
        a.Parameters.TryGetValue("queries", out var text) && long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : null;

    /// <summary>1, 2, 5, 10, 20, 50, … below <paramref name="max"/>, then <paramref name="max"/> itself.</summary>
    public static IEnumerable<long> Budgets(long max)
    {
        for (long decade = 1; decade <= max; decade *= 10)
            foreach (var m in new long[] { 1, 2, 5 })
                if (m * decade < max) yield return m * decade;
        yield return max;
    }

    /// <summary>Linear interpolation between order statistics (R's type 7) of sorted values.</summary>
    public static double Quantile(double[] sorted, double p)
    {
        if (sorted.Length == 1) return sorted[0];
        double h = (sorted.Length - 1) * p;
        int lo = (int)Math.Floor(h);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }
}
