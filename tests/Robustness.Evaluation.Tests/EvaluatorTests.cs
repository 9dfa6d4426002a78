using System.Text.Json;
using Robustness.Core;
using Robustness.Evaluation;

namespace Robustness.Evaluation.Tests;

public class EvaluatorTests
{
    private static readonly double[] Sweep = [0, 0.03, 0.06, 0.1, 0.2];

    internal static EvaluationOptions HealthyOptions() => Fixtures.Options(Fixtures.FgsmPgd(), 0.1, Sweep) with { ModelPath = "models/test|mlp.safetensors", ModelSha256 = "abc123" };

    /// <summary>One unsharded evaluation of the healthy model, shared by the tests that only read it.</summary>
    internal static readonly Lazy<EvaluationResult> HealthyRun = new(() =>
    {
        var model = Fixtures.Healthy(); // shares the fixture network: not disposed
        return new Evaluator().Evaluate(model, Fixtures.Data, HealthyOptions());
    });

    [Fact]
    public void Report_numbers_are_consistent_with_the_samples()
    {
        var r = HealthyRun.Value.Report;
        Assert.Equal(Fixtures.Data.Count, r.Total);
        Assert.Equal(r.Total, r.Samples.Count);
        Assert.True(r.CleanAccuracy > 0.9, $"the fixture model should be accurate, got {r.CleanAccuracy}");
        Assert.True(r.RobustAccuracy <= r.CleanAccuracy);
        Assert.Equal(r.Samples.Count(s => s.CleanCorrect) / (double)r.Total, r.CleanAccuracy, 12);
        Assert.Equal(r.Samples.Count(s => ReportAggregator.IsRobust(s, r.EpsSweep.ToList().FindIndex(e => e.Epsilon == r.Epsilon))) / (double)r.Total, r.RobustAccuracy, 12);

        // Per-class counts add up to the totals.
        Assert.Equal(r.Total, r.PerClass.Sum(c => c.Count));
        Assert.Equal(r.Samples.Count(s => s.CleanCorrect), r.PerClass.Sum(c => c.CleanCorrect));
        Assert.Equal((int)Math.Round(r.RobustAccuracy * r.Total), r.PerClass.Sum(c => c.RobustCorrect));

        // Stages: cumulative, non-increasing, ending at the worst case.
        Assert.Equal(["fgsm", "pgd"], r.PerAttack.Select(a => a.Name));
        Assert.True(r.PerAttack[1].RobustAccuracyAfter <= r.PerAttack[0].RobustAccuracyAfter);
        Assert.Equal(r.RobustAccuracy, r.PerAttack[^1].RobustAccuracyAfter, 12);

        // The sweep holds every ε in order, is monotone for a healthy model, and ε = 0 equals clean accuracy.
        Assert.Equal(Sweep, r.EpsSweep.Select(e => e.Epsilon));
        for (int i = 1; i < r.EpsSweep.Count; i++)
            Assert.True(r.EpsSweep[i].RobustAccuracy <= r.EpsSweep[i - 1].RobustAccuracy, $"sweep rises at ε = {r.EpsSweep[i].Epsilon}");
        Assert.Equal(r.CleanAccuracy, r.EpsSweep[0].RobustAccuracy, 12);
        Assert.True(r.EpsSweep[^1].RobustAccuracy < r.CleanAccuracy, "ε = 0.2 should break some points");

        // Perturbations of successful adversarials stay within ε.
        Assert.True(r.Perturbation.Successful > 0);
        Assert.True(r.Perturbation.MaxNorm <= r.Epsilon * (1 + 1e-6));
        Assert.True(r.Perturbation.MeanNorm <= r.Perturbation.MaxNorm);
        foreach (var s in r.Samples)
            foreach (var e in s.PerEpsilon)
                Assert.True(e.Distance <= e.Epsilon * (1 + 1e-6) + 1e-9);

        // Provenance.
        Assert.Equal(11, r.Provenance.Seed);
        Assert.Equal("abc123", r.Provenance.ModelSha256);
        Assert.Equal(2, r.Provenance.Attacks.Count);
        Assert.Contains("eps", r.Provenance.Attacks[1].Parameters.Keys);
        Assert.Equal(Enumerable.Range(0, r.Total).Select(i => (long)i), r.Provenance.SampleIndices);
        Assert.StartsWith("libtorch", r.Provenance.Libtorch);
    }

    [Fact]
    public void Healthy_model_fires_no_sanity_check()
    {
        var r = HealthyRun.Value.Report;
        Assert.Empty(r.Warnings);
        // Every check ran (model checks included) and measured something.
        foreach (var code in new[] { ProbabilityOutputCheck.Code, DeterminismCheck.Code, GradientCheck.ZeroCode, GradientCheck.NonFiniteCode,
                     EpsilonZeroCheck.Code, FgsmVersusPgdCheck.Code, MoreIterationsCheck.NotConvergedCode, MoreIterationsCheck.StrongerWeakerCode,
                     LargeEpsilonCheck.Code, MonotoneSweepCheck.Code, BlackBoxCheck.Code })
            Assert.Contains(r.SanityChecks, c => c.Code == code);
        Assert.True(r.SanityChecks.Single(c => c.Code == LargeEpsilonCheck.Code).Measured <= 0.1 + 1e-9);
    }

    [Fact]
    public void Json_has_the_documented_names_and_round_trips()
    {
        var r = HealthyRun.Value.Report;
        var json = JsonReportWriter.Serialize(r);
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        foreach (var key in new[] { "schema_version", "clean_accuracy", "robust_accuracy", "per_attack", "eps_sweep", "per_class", "perturbation", "warnings", "provenance", "samples" })
            Assert.True(root.TryGetProperty(key, out _), $"missing {key}");
        Assert.Equal(RobustnessReport.CurrentSchemaVersion, root.GetProperty("schema_version").GetInt32());
        Assert.Equal(r.CleanAccuracy, root.GetProperty("clean_accuracy").GetDouble());
        Assert.Equal(r.PerClass.Sum(c => c.Count), root.GetProperty("per_class").EnumerateArray().Sum(c => c.GetProperty("count").GetInt32()));
        Assert.True(root.GetProperty("eps_sweep")[0].TryGetProperty("per_attack", out _));
        Assert.True(root.GetProperty("provenance").TryGetProperty("model_sha256", out _));

        var back = JsonReportWriter.Parse(json);
        Assert.Equal(r.RobustAccuracy, back.RobustAccuracy);
        Assert.Equal(r.Samples.Count, back.Samples.Count);
        Assert.Equal(r.Samples[5].PerEpsilon[3], back.Samples[5].PerEpsilon[3]);
        Assert.Equal(json, JsonReportWriter.Serialize(back));
    }

    [Fact]
    public void Sharded_runs_merge_into_the_unsharded_report()
    {
        var full = HealthyRun.Value.Report;
        var model = Fixtures.Healthy(); // shares the fixture network: not disposed
        var shards = Enumerable.Range(0, 3)
            .Select(i => new Evaluator().Evaluate(model, Fixtures.Data, HealthyOptions() with { Shard = new ShardSpec(i, 3) }).Report)
            .ToArray();
        Assert.All(shards, s => Assert.NotNull(s.Shard));
        Assert.Equal(full.Total, shards.Sum(s => s.Total));
        Assert.Contains(shards[1].SanityChecks, c => c.Scope == SanityChecks.DataScope);
        Assert.DoesNotContain(shards[1].SanityChecks, c => c.Scope == SanityChecks.ModelScope);

        var merged = ReportMerger.Merge(shards.Reverse());
        Assert.Null(merged.Shard);
        Assert.Equal(Normalise(full), Normalise(merged));
        Assert.ThrowsAny<InputException>(() => ReportMerger.Merge(shards.Take(2)));
        Assert.ThrowsAny<InputException>(() => ReportMerger.Merge([shards[0], shards[0], shards[1]]));
    }

    /// <summary>The report as JSON with timings and dates (which legitimately differ) zeroed.</summary>
    private static string Normalise(RobustnessReport r)
    {
        static IReadOnlyList<AttackStageReport> NoTime(IReadOnlyList<AttackStageReport> s) => s.Select(a => a with { Seconds = 0 }).ToArray();
        return JsonReportWriter.Serialize(r with
        {
            PerAttack = NoTime(r.PerAttack),
            EpsSweep = r.EpsSweep.Select(e => e with { PerAttack = NoTime(e.PerAttack) }).ToArray(),
            Provenance = r.Provenance with { WallSeconds = 0, Date = default },
        });
    }

    [Fact]
    public void Bad_options_are_input_errors()
    {
        var model = Fixtures.Healthy(); // shares the fixture network: not disposed
        var ok = Fixtures.Options(Fixtures.FgsmPgd());
        Assert.ThrowsAny<InputException>(() => new Evaluator().Evaluate(model, Fixtures.Data, ok with { Epsilon = -1 }));
        Assert.ThrowsAny<InputException>(() => new Evaluator().Evaluate(model, Fixtures.Data, ok with { BatchSize = 0 }));
        Assert.ThrowsAny<InputException>(() => new Evaluator().Evaluate(model, Fixtures.Data, ok with { SampleIndices = [0, 100000] }));
        Assert.ThrowsAny<InputException>(() => ShardSpec.Parse("3/3"));
        Assert.ThrowsAny<InputException>(() => ShardSpec.Parse("x"));
        Assert.Equal(new ShardSpec(1, 4), ShardSpec.Parse("1/4"));
    }

    /// <summary>Progress&lt;T&gt; posts to the thread pool; tests want the calls in order, synchronously.</summary>
    internal sealed class SyncProgress(List<EvaluationProgress> seen) : IProgress<EvaluationProgress>
    {
        public void Report(EvaluationProgress value) => seen.Add(value);
    }
}

/// <summary>Counts the process's live tensors, so it runs alone (other test classes allocate in parallel).</summary>
[Collection("tensor counts")]
public class EvaluatorMemoryTests
{
    [Fact]
    public void Same_seed_gives_the_same_samples_and_progress_reaches_the_end()
    {
        var model = Fixtures.Healthy(); // shares the fixture network: not disposed
        var options = Fixtures.Options(Fixtures.FgsmPgd(), 0.1) with { SampleCount = 50, SanityChecks = false };
        var seen = new List<EvaluationProgress>();
        var progress = new EvaluatorTests.SyncProgress(seen);
        long before = LiveTensors.Count;
        var a = new Evaluator().Evaluate(model, Fixtures.Data, options, progress).Report;
        long after = LiveTensors.Count;
        var b = new Evaluator().Evaluate(model, Fixtures.Data, options).Report;
        Assert.Equal(50, a.Total);
        Assert.Equal(a.Provenance.SampleIndices, a.Provenance.SampleIndices.Order());
        Assert.Equal(JsonSerializer.Serialize(a.Samples, JsonReportWriter.Options), JsonSerializer.Serialize(b.Samples, JsonReportWriter.Options));
        Assert.DoesNotContain(a.SanityChecks, c => c.Scope == SanityChecks.ModelScope);
        Assert.NotEmpty(seen);
        Assert.Equal(seen[^1].Total, seen[^1].Completed);
        Assert.True(after - before <= 2, $"evaluation leaked {after - before} tensors");
    }
}

[CollectionDefinition("tensor counts", DisableParallelization = true)]
public sealed class TensorCountCollection;
