using Robustness.Core;

namespace Robustness.Evaluation;

/// <summary>Everything a report is computed from: per-sample outcomes, timings, model-check results, provenance.</summary>
/// <param name="Seconds">[ε index, attack index] wall time.</param>
/// <param name="MultiLabel">Set for multi-label models: what the samples alone do not say.</param>
internal sealed record ReportInputs(
    string Norm, double Epsilon, IReadOnlyList<double> Epsilons, IReadOnlyList<string> AttackNames,
    double[,] Seconds, IReadOnlyList<SampleOutcome> Samples, IReadOnlyList<SanityCheckResult> ModelChecks,
    Provenance Provenance, ShardInfo? Shard, MultiLabelInputs? MultiLabel = null, long? ModelQueries = null);

/// <summary>The multi-label facts a report keeps beside its samples (a merge takes them from the first shard).</summary>
internal sealed record MultiLabelInputs(double DecisionThreshold, IReadOnlyList<string> LabelStages, string? Goal, string Objectives)
{
    public static MultiLabelInputs? Of(RobustnessReport r) =>
        r.MultiLabel is { } m ? new MultiLabelInputs(m.DecisionThreshold, m.LabelStages, m.Goal, m.Objectives) : null;
}

/// <summary>
/// Derives every number of a <see cref="RobustnessReport"/> from per-sample outcomes. The evaluator and
/// <see cref="ReportMerger"/> both go through here, which is what makes a merged report equal an unsharded one.
/// </summary>
internal static class ReportAggregator
{
    public static RobustnessReport Build(ReportInputs inputs)
    {
        var samples = inputs.Samples.OrderBy(s => s.Position).ToArray();
        int total = samples.Length;
        int mainEps = inputs.Epsilons.ToList().IndexOf(inputs.Epsilon);
        if (mainEps < 0) throw new ArgumentException("the main ε is not in the ε list");
        int cleanCorrect = samples.Count(s => s.CleanCorrect);

        var sweep = new List<EpsilonResult>();
        for (int e = 0; e < inputs.Epsilons.Count; e++)
        {
            var stages = new List<AttackStageReport>();
            int robust = cleanCorrect;
            // Multi-label: decisions still correct and unflipped after each stage (from the first stage that flipped each).
            long heldDecisions = inputs.MultiLabel is null ? 0 : samples.Sum(s => (long)s.CorrectLabels(inputs.Provenance.ClassNames.Count).Count());
            long decisions = (long)total * inputs.Provenance.ClassNames.Count;
            for (int a = 0; a < inputs.AttackNames.Count; a++)
            {
                int broken = samples.Count(s => s.CleanCorrect && s.PerEpsilon[e].BrokenBy == a);
                robust -= broken;
                var stage = new AttackStageReport(inputs.AttackNames[a], Fraction(robust, total), robust, broken, inputs.Seconds[e, a]);
                if (inputs.MultiLabel is not null)
                {
                    int flipped = samples.Sum(s => s.PerEpsilon[e].FlippedBy?.Count(f => f == a) ?? 0);
                    heldDecisions -= flipped;
                    stage = stage with { LabelsFlipped = flipped, RobustHammingAfter = decisions == 0 ? 0 : (double)heldDecisions / decisions };
                }
                stages.Add(stage);
            }
            int? verified = samples.Any(s => s.PerEpsilon[e].Verified is not null) ? samples.Count(s => s.PerEpsilon[e].Verified == true) : null;
            sweep.Add(new EpsilonResult(inputs.Epsilons[e], Fraction(robust, total), robust, stages)
            {
                Verified = verified,
                VerifiedAccuracy = verified is { } v ? Fraction(v, total) : null,
            });
        }

        var classNames = inputs.Provenance.ClassNames;
        MultiLabelAggregate? multi = inputs.MultiLabel is { } ml ? MultiLabelAggregate.Build(samples, classNames, ml, inputs.Epsilons, mainEps) : null;
        int classCount = Math.Max(classNames.Count, samples.Length == 0 || multi is not null ? 0 : samples.Max(s => Math.Max(s.Label, s.CleanPrediction)) + 1);
        var perClass = multi?.PerClass ?? Enumerable.Range(0, classCount)
            .Select(c =>
            {
                var of = samples.Where(s => s.Label == c).ToArray();
                int clean = of.Count(s => s.CleanCorrect);
                int rob = of.Count(s => IsRobust(s, mainEps));
                return new ClassAccuracy(c, c < classNames.Count ? classNames[c] : c.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    of.Length, clean, rob, Fraction(clean, of.Length), Fraction(rob, of.Length))
                {
                    Verified = sweep[mainEps].Verified is null ? null : of.Count(s => s.PerEpsilon[mainEps].Verified == true),
                };
            })
            .Where(c => c.Count > 0 || c.Class < classNames.Count)
            .ToArray();

        var brokenMain = samples.Where(s => s.CleanCorrect && s.PerEpsilon[mainEps].Broken).Select(s => s.PerEpsilon[mainEps].Distance).ToArray();
        var minNorms = samples.Select(s => s.PerEpsilon[mainEps].MinimumNorm).Where(m => m is { } v && double.IsFinite(v)).Select(m => m!.Value).Order().ToArray();
        var perturbation = new PerturbationStatistics(
            brokenMain.Length,
            brokenMain.Length > 0 ? brokenMain.Max() : 0,
            brokenMain.Length > 0 ? brokenMain.Average() : 0,
            minNorms.Length > 0 ? Median(minNorms) : null,
            minNorms.Length);

        var dataChecks = SanityChecks.RunDataChecks(sweep, samples, inputs.Provenance.Attacks, mainEps, multi?.Report.EpsSweep);
        var allChecks = inputs.ModelChecks.Concat(dataChecks).ToArray();
        var warnings = allChecks.Where(c => c.Fired).Select(SanityChecks.WarningFor).ToArray();

        return new RobustnessReport
        {
            Norm = inputs.Norm,
            Epsilon = inputs.Epsilon,
            Total = total,
            CleanAccuracy = Fraction(cleanCorrect, total),
            RobustAccuracy = sweep[mainEps].RobustAccuracy,
            VerifiedAccuracy = sweep[mainEps].VerifiedAccuracy,
            PerAttack = sweep[mainEps].PerAttack,
            EpsSweep = sweep,
            PerClass = perClass,
            Perturbation = perturbation,
            Warnings = warnings,
            SanityChecks = allChecks,
            Provenance = inputs.Provenance,
            Samples = samples,
            Shard = inputs.Shard,
            SubsetAccuracy = multi is null ? null : Fraction(cleanCorrect, total),
            HammingAccuracy = multi?.CleanHamming,
            RobustSubsetAccuracy = multi is null ? null : sweep[mainEps].RobustAccuracy,
            RobustHammingAccuracy = multi?.Report.EpsSweep[mainEps].RobustHammingAccuracy,
            MultiLabel = multi?.Report,
            Queries = QueryStatistics.Build(samples, inputs.Provenance.Attacks, mainEps, inputs.ModelQueries),
        };
    }

    public static bool IsRobust(SampleOutcome s, int epsIndex) => s.CleanCorrect && !s.PerEpsilon[epsIndex].Broken;

    private static double Fraction(int count, int total) => total == 0 ? 0 : (double)count / total;

    private static double Median(double[] sorted) =>
        sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : 0.5 * (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]);
}

/// <summary>Combines shard reports into the report an unsharded run with the same options and seed produces.</summary>
public static class ReportMerger
{
    public static RobustnessReport Merge(IEnumerable<RobustnessReport> reports)
    {
        var parts = reports.ToArray();
        if (parts.Length == 0) throw new InputException("merge: no reports given");
        var first = parts[0];
        foreach (var p in parts.Skip(1))
        {
            if (p.Norm != first.Norm || p.Epsilon != first.Epsilon)
                throw new InputException($"merge: reports disagree on the threat model ({first.Norm} ε={first.Epsilon} vs {p.Norm} ε={p.Epsilon})");
            if (!p.EpsSweep.Select(e => e.Epsilon).SequenceEqual(first.EpsSweep.Select(e => e.Epsilon)))
                throw new InputException("merge: reports were run with different ε sweeps");
            if (!p.PerAttack.Select(a => a.Name).SequenceEqual(first.PerAttack.Select(a => a.Name)))
                throw new InputException("merge: reports were run with different attacks");
            if (p.Provenance.Seed != first.Provenance.Seed || p.Provenance.BatchSize != first.Provenance.BatchSize)
                throw new InputException("merge: reports were run with different seeds or batch sizes (shards would not match an unsharded run)");
            if (p.Provenance.AttackPrecision != first.Provenance.AttackPrecision)
                throw new InputException($"merge: reports were run with different attack precisions ({first.Provenance.AttackPrecision} vs {p.Provenance.AttackPrecision})");
            if (!p.Provenance.SampleIndices.SequenceEqual(first.Provenance.SampleIndices))
                throw new InputException("merge: reports cover different sample selections");
            if (p.Provenance.ModelSha256 != first.Provenance.ModelSha256)
                throw new InputException($"merge: reports evaluate different model files (SHA-256 {Short(first.Provenance.ModelSha256)} vs {Short(p.Provenance.ModelSha256)})");
            if (p.Provenance.DatasetName != first.Provenance.DatasetName || p.Provenance.DatasetSplit != first.Provenance.DatasetSplit)
                throw new InputException($"merge: reports evaluate different datasets ({first.Provenance.DatasetName} {first.Provenance.DatasetSplit} vs {p.Provenance.DatasetName} {p.Provenance.DatasetSplit})");
            if (p.Shard?.Count != first.Shard?.Count)
                throw new InputException("merge: reports come from different shard counts");
        }
        var shardIds = parts.Select(p => p.Shard?.Index ?? -1).ToArray();
        if (shardIds.Distinct().Count() != shardIds.Length)
            throw new InputException("merge: the same shard is given twice");

        var samples = parts.SelectMany(p => p.Samples).OrderBy(s => s.Position).ToArray();
        int expected = first.Provenance.SampleIndices.Count;
        if (samples.Length != expected || samples.Select(s => s.Position).Distinct().Count() != samples.Length)
            throw new InputException($"merge: shards cover {samples.Length} samples but the evaluation selected {expected} (missing or overlapping shards)");

        var epsilons = first.EpsSweep.Select(e => e.Epsilon).ToArray();
        var names = first.PerAttack.Select(a => a.Name).ToArray();
        var seconds = new double[epsilons.Length, names.Length];
        foreach (var p in parts)
            for (int e = 0; e < epsilons.Length; e++)
                for (int a = 0; a < names.Length; a++)
                    seconds[e, a] += p.EpsSweep[e].PerAttack[a].Seconds;
        // Model checks ran on shard 0 only (on the global subset), so taking them from every part is a union.
        var modelChecks = parts.SelectMany(p => p.SanityChecks.Where(c => c.Scope == SanityChecks.ModelScope)).ToArray();
        var provenance = first.Provenance with { WallSeconds = parts.Sum(p => p.Provenance.WallSeconds) };
        if (parts.Any(p => (p.MultiLabel is null) != (first.MultiLabel is null)))
            throw new InputException("merge: some reports are of a multi-label model and some are not");
        var modelQueries = parts.All(p => p.Queries?.ModelQueries is null) ? (long?)null : parts.Sum(p => p.Queries?.ModelQueries ?? 0);
        return ReportAggregator.Build(new ReportInputs(first.Norm, first.Epsilon, epsilons, names, seconds, samples, modelChecks, provenance, null,
            MultiLabelInputs.Of(first), modelQueries));
    }

    private static string Short(string? sha) => sha is null ? "none" : sha[..Math.Min(8, sha.Length)];
}
