using Robustness.Attacks;
using Robustness.Core;
using Robustness.Evaluation;

namespace Robustness.Evaluation.Tests;

/// <summary>
/// The report's query section on a label-only model attacked by a transfer and a decision-based attack: its numbers
/// agree with the per-sample outcomes and with the model's own count, robust accuracy falls with the budget to the
/// report's robust accuracy, shards merge to the unsharded section, and the writers show it.
/// </summary>
public sealed class QueryReportTests
{
    private const int Budget = 200;

    /// <summary>An untrained linear surrogate: its adversarials transfer to some points only.</summary>
    private static readonly Lazy<Surrogate> Untrained = new(() =>
    {
        // Seeded for a fixed surrogate, without disturbing the global generator the other tests draw from.
        var state = TorchSharp.torch.random.get_rng_state();
        TorchSharp.torch.random.manual_seed(3);
        var net = TorchSharp.torch.nn.Sequential(("flatten", TorchSharp.torch.nn.Flatten()), ("fc", TorchSharp.torch.nn.Linear(Fixtures.Side * Fixtures.Side, Fixtures.Classes)));
        TorchSharp.torch.random.set_rng_state(state);
        return new Surrogate(new TorchClassifier(net, Fixtures.Spec("untrained-linear")), "untrained-linear");
    });

    private static EvaluationOptions Options() => Fixtures.Options(
        new RegistryAttackSuite("transfer:fgsm,hopskipjump", new AttackOptions { Queries = Budget, Surrogate = Untrained.Value }), 1.5)
        with { Norm = Norm.L2, SampleCount = 80, SanityChecks = false, BatchSize = 32 };

    [Fact]
    public void Query_section_matches_the_samples_the_budget_and_the_model_count()
    {
        var model = QueryOnlyClassifier.LabelOnly(Fixtures.Healthy());
        var r = new Evaluator().Evaluate(model, Fixtures.Data, Options()).Report;
        var q = Assert.IsType<QueryReport>(r.Queries);
        Assert.Equal(["transfer:fgsm", "hopskipjump"], q.PerAttack.Select(a => a.Name));
        Assert.Equal([1L, Budget], q.PerAttack.Select(a => a.Budget ?? -1));
        Assert.Equal("labels", r.Provenance.Attacks[1].Needs);
        var outcomes = r.Samples.Select(s => s.PerEpsilon[0]).ToArray();
        for (int a = 0; a < 2; a++)
        {
            var spent = outcomes.Select(o => o.Queries![a] ?? 0).ToArray();
            Assert.Equal(q.PerAttack[a].Total, spent.Sum());
            Assert.All(spent, s => Assert.InRange(s, 0, q.PerAttack[a].Budget!.Value));
            Assert.Equal(r.PerAttack[a].Broken, q.PerAttack[a].Successes);
        }
        // Transfer ran on every clean-correct point (one query each); HopSkipJump on the ones transfer left.
        Assert.Equal(r.Samples.Count(s => s.CleanCorrect), q.PerAttack[0].Samples);
        Assert.Equal(r.PerAttack[0].RobustAfter, q.PerAttack[1].Samples);
        foreach (var (s, o) in r.Samples.Zip(outcomes))
            if (s.CleanCorrect && o.Broken) Assert.InRange(o.QueriesToSuccess!.Value, 1, o.Queries![o.BrokenBy]!.Value);
            else Assert.Null(o.QueriesToSuccess);
        Assert.True(q.PerAttack[1].Successes > 0, $"HopSkipJump broke nothing: clean {r.CleanAccuracy}, after {string.Join(", ", r.PerAttack.Select(a => $"{a.Name} {a.RobustAfter}"))}, min norms {string.Join(" ", outcomes.Take(20).Select(o => o.MinimumNorm?.ToString("F2") ?? "-"))}");
        var t = q.PerAttack[1].QueriesToSuccess!;
        Assert.True(t.Q25 <= t.Median && t.Median <= t.Q75 && t.Q75 <= t.Q90 && t.Q90 <= t.Max && t.Max <= Budget);

        var curve = q.RobustAccuracyByBudget;
        Assert.Equal(Budget, curve[^1].Queries);
        Assert.Equal(r.RobustAccuracy, curve[^1].RobustAccuracy, 12);
        for (int i = 1; i < curve.Count; i++)
        {
            Assert.True(curve[i].Queries > curve[i - 1].Queries);
            Assert.True(curve[i].RobustAccuracy <= curve[i - 1].RobustAccuracy + 1e-12);
        }
        // At one query only the transfer attack's breaks count.
        Assert.Equal(r.PerAttack[0].RobustAccuracyAfter, curve[0].RobustAccuracy, 12);

        // The model's own count: both attacks' queries plus every pass the evaluator makes (clean, verdicts).
        Assert.Equal(model.QueriesAnswered, q.ModelQueries);
        Assert.True(q.ModelQueries >= q.PerAttack.Sum(a => a.Total) + r.Total);

        Assert.Contains("## Queries", MarkdownReportWriter.Render(r));
        Assert.Contains("<h2>Queries</h2>", HtmlReportWriter.Render(r));
        Assert.NotNull(Plots.RobustVersusQueriesPng(r, 320, 200));
        Assert.Null(EvaluatorTests.HealthyRun.Value.Report.Queries);
        Assert.Null(Plots.RobustVersusQueriesPng(EvaluatorTests.HealthyRun.Value.Report, 320, 200));
    }

    [Fact]
    public void Shards_merge_to_the_unsharded_query_section()
    {
        var model = QueryOnlyClassifier.LabelOnly(Fixtures.Healthy());
        var full = new Evaluator().Evaluate(model, Fixtures.Data, Options()).Report;
        var shards = Enumerable.Range(0, 2).Select(i => new Evaluator().Evaluate(model, Fixtures.Data, Options() with { Shard = new ShardSpec(i, 2) }).Report).ToArray();
        var merged = ReportMerger.Merge(shards);
        Assert.Equal(JsonReportWriter.Serialize(full with { Provenance = null!, PerAttack = [], EpsSweep = [] }),
            JsonReportWriter.Serialize(merged with { Provenance = null!, PerAttack = [], EpsSweep = [] }));
        var back = JsonReportWriter.Parse(JsonReportWriter.Serialize(merged));
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(merged.Queries, JsonReportWriter.Options), System.Text.Json.JsonSerializer.Serialize(back.Queries, JsonReportWriter.Options));
    }

    [Fact]
    public void Black_box_check_counts_decision_based_and_transfer_attacks_as_black_box()
    {
        var descriptions = new[]
        {
            new AttackDescription("pgd", true, new Dictionary<string, string>()) { Needs = "gradients" },
            new AttackDescription("hopskipjump", false, new Dictionary<string, string>()) { Needs = "labels" },
            new AttackDescription("transfer:pgd", false, new Dictionary<string, string>()) { Needs = "labels" },
        };
        Assert.Equal([false, true, true], descriptions.Select(d => d.BlackBox));
        // An older report without "needs": score-based attacks were the black-box ones.
        Assert.True(new AttackDescription("square", false, new Dictionary<string, string>()).BlackBox);
    }
}
