using System.Text.Json;
using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Evaluation;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Evaluation.Tests;

/// <summary>
/// The evaluator on multi-label models: a one-vs-rest logistic model (zoo 'logistic') without box constraints has an
/// exact worst case per label (margin &gt; ε‖w_ℓ‖₁ for L∞), so the report's robust subset and Hamming accuracies can
/// be checked against it; plus the invariants every multi-label report must satisfy.
/// </summary>
public class MultiLabelEvaluatorTests
{
    private const int Labels = 6, N = 200;
    private static readonly Bounds Huge = new(-1e6f, 1e6f);
    private static readonly string[] Names = ["a", "b", "c", "d", "e", "f"];

    private static (TorchClassifier Model, ImageDataset Data, double[,] W, double[] B) Make(long seed, double threshold = 0.5)
    {
        using var scope = NewDisposeScope();
        var spec = new ModelSpec { Arch = "logistic", InputShape = [1, 4, 5], NumClasses = Labels, Labels = Names, Bounds = Huge, MultiLabel = true, DecisionThreshold = threshold };
        var network = ModelZoo.Create("logistic", ModelZoo.OptionsFor(spec));
        var g = new Generator((ulong)seed);
        var w = randn([Labels, 20], generator: g);
        var b = randn([Labels], generator: g);
        using (no_grad())
        {
            var sd = network.state_dict();
            sd["fc.weight"].copy_(w);
            sd["fc.bias"].copy_(b);
        }
        var model = ModelZoo.Wrap(network, spec);
        var x = randn([N, 20], generator: g);
        var y = (x.matmul(w.t()) + b + randn([N, Labels], generator: g) * Keep(0.8)).gt(Keep(0)).to(ScalarType.Float32);
        var data = new ImageDataset("linear-multi", x.reshape(N, 1, 4, 5).MoveToOuterDisposeScope(), y.MoveToOuterDisposeScope(), Names, Huge, "generated");
        return (model, data, ToArray(w), b.to(ScalarType.Float64).data<double>().ToArray());
    }

    private static double[,] ToArray(Tensor t)
    {
        var flat = t.to(ScalarType.Float64).contiguous().data<double>().ToArray();
        var a = new double[t.shape[0], t.shape[1]];
        for (int i = 0; i < t.shape[0]; i++) for (int j = 0; j < t.shape[1]; j++) a[i, j] = flat[i * t.shape[1] + j];
        return a;
    }

    /// <summary>Exact robust subset and Hamming accuracy for L∞ (decision logit z − logit τ, margin vs ε‖w‖₁).</summary>
    private static (double Subset, double Hamming) Exact(ImageDataset data, double[,] w, double[] b, double eps, double threshold = 0.5)
    {
        var x = data.Images.reshape(N, 20).to(ScalarType.Float64).data<double>().ToArray();
        var y = data.Labels.data<float>().ToArray();
        double offset = Math.Log(threshold / (1 - threshold));
        int samples = 0, decisions = 0;
        for (int i = 0; i < N; i++)
        {
            bool all = true;
            for (int l = 0; l < Labels; l++)
            {
                double z = b[l] - offset, dual = 0;
                for (int f = 0; f < 20; f++) { z += w[l, f] * x[i * 20 + f]; dual += Math.Abs(w[l, f]); }
                bool robust = (y[i * Labels + l] > 0.5f ? z : -z) > eps * dual;
                if (robust) decisions++; else all = false;
            }
            if (all) samples++;
        }
        return ((double)samples / N, (double)decisions / (N * Labels));
    }

    private static EvaluationOptions Options(IAttackSuite suite, IAttackSuite? labels = null, double eps = 0.1, params double[] sweep) => new()
    {
        Norm = Norm.Linf, Epsilon = eps, SweepEpsilons = sweep, Attacks = suite, LabelAttacks = labels,
        BatchSize = 64, Seed = 3, ImageCount = 4, SanitySubset = 40,
    };

    private static IAttackSuite Pgd(int steps = 20) => new DelegateAttackSuite(t => [Presets.Pgd(t, steps)], "pgd", steps);

    [Fact]
    public void PgdWithLabelStagesReachesTheExactWorstCaseAndNoAttackBeatsIt()
    {
        var (model, data, w, b) = Make(5);
        using (data)
        using (model)
        {
            var (subset, hamming) = Exact(data, w, b, 0.1);
            Assert.InRange(subset, 0.05, 0.8);
            var report = new Evaluator().Evaluate(model, data, Options(Pgd()) with { SanityChecks = false }).Report;
            Assert.InRange(report.RobustHammingAccuracy!.Value, hamming - 0.001, hamming + 0.001);
            Assert.InRange(report.RobustSubsetAccuracy!.Value, subset - 0.004, subset + 0.004);
            Assert.Equal(report.RobustAccuracy, report.RobustSubsetAccuracy);

            foreach (var name in new[] { "fgsm", "apgd-ce", "apgd-t", "square" })
            {
                var suite = new RegistryAttackSuite(name, new AttackOptions { Queries = 100, Steps = name is "fgsm" or "square" ? null : 10 });
                var r = new Evaluator().Evaluate(model, data, Options(suite) with { SanityChecks = false }).Report;
                Assert.True(r.RobustHammingAccuracy >= hamming - 0.001, $"{name}: robust Hamming {r.RobustHammingAccuracy} below the exact {hamming}");
                Assert.True(r.RobustSubsetAccuracy >= subset - 0.004, $"{name}: robust subset {r.RobustSubsetAccuracy} below the exact {subset}");
            }
        }
    }

    [Fact]
    public void WithoutLabelStagesPerLabelRobustnessIsOnlyAnUpperBound()
    {
        var (model, data, w, b) = Make(6);
        using (data)
        using (model)
        {
            var with = new Evaluator().Evaluate(model, data, Options(Pgd()) with { SanityChecks = false }).Report;
            var without = new Evaluator().Evaluate(model, data, Options(Pgd(), NoAttackSuite.Instance) with { SanityChecks = false }).Report;
            Assert.True(without.RobustHammingAccuracy >= with.RobustHammingAccuracy);
            Assert.Empty(without.MultiLabel!.LabelStages);
            Assert.Equal(["pgd", "label:pgd"], with.PerAttack.Select(a => a.Name));
            Assert.True(with.RobustHammingAccuracy >= Exact(data, w, b, 0.1).Hamming - 0.001);
        }
    }

    [Fact]
    public void ReportInvariantsHoldAndTheThresholdIsApplied()
    {
        var (model, data, _, _) = Make(7, threshold: 0.35);
        using (data)
        using (model)
        {
            var report = new Evaluator().Evaluate(model, data, Options(Pgd(10), eps: 0.15, sweep: [0, 0.05, 0.1])).Report;
            var counts = MultiLabelAccuracy.Counts(model, data);
            Assert.Equal(counts.SubsetAccuracy, report.SubsetAccuracy!.Value, 12);
            Assert.Equal(counts.HammingAccuracy, report.HammingAccuracy!.Value, 12);
            Assert.Equal(0.35, report.MultiLabel!.DecisionThreshold);
            var ml = report.MultiLabel;
            // ε = 0 leaves everything as it is; accuracy never rises with ε; robust ≤ clean; subset ≤ Hamming.
            Assert.Equal(report.HammingAccuracy!.Value, ml.EpsSweep[0].RobustHammingAccuracy, 12);
            for (int e = 1; e < ml.EpsSweep.Count; e++)
            {
                Assert.True(ml.EpsSweep[e].RobustHammingAccuracy <= ml.EpsSweep[e - 1].RobustHammingAccuracy + 1e-12);
                Assert.True(ml.EpsSweep[e].RobustSubsetAccuracy <= ml.EpsSweep[e - 1].RobustSubsetAccuracy + 1e-12);
            }
            Assert.True(report.RobustHammingAccuracy <= report.HammingAccuracy);
            Assert.True(report.RobustSubsetAccuracy <= report.SubsetAccuracy);
            Assert.True(report.RobustSubsetAccuracy <= report.RobustHammingAccuracy);
            // The attack stages account for every flipped decision: after the last one, the robust Hamming accuracy.
            Assert.Equal(report.RobustHammingAccuracy!.Value, report.PerAttack[^1].RobustHammingAfter!.Value, 12);
            Assert.Equal(report.Samples.Sum(s => s.PerEpsilon.Last().FlippedLabels!.Count), report.PerAttack.Sum(a => a.LabelsFlipped!.Value));
            // Labels flipped: mean over samples from the histogram, and only correct decisions can flip.
            var main = ml.EpsSweep.First(e => e.Epsilon == 0.15);
            Assert.Equal(N, main.FlippedHistogram.Sum());
            Assert.Equal(main.MeanLabelsFlipped, main.FlippedHistogram.Select((c, k) => (double)c * k).Sum() / N, 9);
            foreach (var s in report.Samples)
            {
                var correct = s.CorrectLabels(Labels).ToHashSet();
                Assert.All(s.PerEpsilon.Last().FlippedLabels!, l => Assert.Contains(l, correct));
                if (s.CleanCorrect && s.PerEpsilon.Last().FlippedLabels!.Count > 0) Assert.True(s.PerEpsilon.Last().Broken);
            }
            // Per-label metrics under attack never exceed their clean values for accuracy.
            Assert.All(ml.PerLabel, l => Assert.True(l.RobustAccuracy <= l.CleanAccuracy + 1e-12));
            Assert.Contains(report.SanityChecks, c => c.Code == "non-monotone-hamming-sweep" && !c.Fired);
            Assert.Contains(report.SanityChecks, c => c.Code == "eps-zero-differs" && !c.Fired);
            Assert.Contains(report.SanityChecks, c => c.Code == "large-eps-not-broken" && !c.Fired);
            // The logistic model's exact worst case (closed form, box included) is what PGD with label stages reached.
            var exact = Assert.Single(report.SanityChecks, c => c.Code == "linear-exact-gap");
            Assert.False(exact.Fired, exact.Detail);
        }
    }

    [Fact]
    public void JsonCarriesTheMultiLabelHeadlineNumbersAndSingleLabelReportsDoNot()
    {
        var (model, data, _, _) = Make(8);
        using (data)
        using (model)
        {
            var report = new Evaluator().Evaluate(model, data, Options(Pgd(5)) with { SanityChecks = false }).Report;
            using var doc = JsonDocument.Parse(JsonReportWriter.Serialize(report));
            foreach (var key in new[] { "subset_accuracy", "hamming_accuracy", "robust_subset_accuracy", "robust_hamming_accuracy", "multi_label" })
                Assert.True(doc.RootElement.TryGetProperty(key, out _), key);
            var back = JsonReportWriter.Parse(JsonReportWriter.Serialize(report));
            Assert.Equal(report.RobustHammingAccuracy, back.RobustHammingAccuracy);
            Assert.Equal(report.Samples[0].LabelSet, back.Samples[0].LabelSet);
            Assert.Equal(report.Samples.Count(s => s.CleanCorrect), back.Samples.Count(s => s.CleanCorrect));
        }
        var single = new Evaluator().Evaluate(Fixtures.Healthy(), Fixtures.Data, Fixtures.Options(Fixtures.FgsmPgd()) with { SanityChecks = false, SampleCount = 40 }).Report;
        var json = JsonReportWriter.Serialize(single);
        Assert.DoesNotContain("hamming", json);
        Assert.DoesNotContain("label_set", json);
        Assert.DoesNotContain("multi_label", json);
        Assert.DoesNotContain("flipped_labels", json);
    }

    [Fact]
    public void ShardsMergeIntoTheUnshardedMultiLabelReport()
    {
        var (model, data, _, _) = Make(9);
        using (data)
        using (model)
        {
            var options = Options(Pgd(5), eps: 0.1, sweep: [0.05]) with { SanityChecks = false, BatchSize = 50 };
            var whole = new Evaluator().Evaluate(model, data, options).Report;
            var parts = Enumerable.Range(0, 3).Select(i => new Evaluator().Evaluate(model, data, options with { Shard = new ShardSpec(i, 3) }).Report).ToArray();
            var merged = ReportMerger.Merge(parts);
            Assert.Equal(whole.RobustHammingAccuracy, merged.RobustHammingAccuracy);
            Assert.Equal(whole.RobustSubsetAccuracy, merged.RobustSubsetAccuracy);
            Assert.Equal(whole.MultiLabel!.MeanLabelsFlipped, merged.MultiLabel!.MeanLabelsFlipped);
            Assert.Equal(whole.MultiLabel.PerLabel.Select(l => l.RobustF1), merged.MultiLabel.PerLabel.Select(l => l.RobustF1));
        }
    }

    [Fact]
    public void TargetedEvaluationJudgesByTheGoalAndRunsNoLabelStages()
    {
        var (model, data, _, _) = Make(10);
        using (data)
        using (model)
        {
            var options = Options(Pgd(20), eps: 0.3) with { SanityChecks = false, TargetGoal = LabelGoal.Flip(1), KeepAdversarials = true };
            var result = new Evaluator().Evaluate(model, data, options);
            var report = result.Report;
            Assert.Empty(report.MultiLabel!.LabelStages);
            Assert.NotNull(report.MultiLabel.Goal);
            // A broken sample reached a goal that differs from its true set in exactly one label.
            var broken = report.Samples.Where(s => s.CleanCorrect && s.PerEpsilon[0].Broken).ToArray();
            Assert.NotEmpty(broken);
            Assert.All(broken, s => Assert.Equal(1, s.LabelSet!.Except(s.PerEpsilon[0].AdversarialSet!).Count() + s.PerEpsilon[0].AdversarialSet!.Except(s.LabelSet!).Count()));
        }
    }

    [Fact]
    public void SquareCountsItsQueriesPerSampleAndPerLabelStage()
    {
        var (model, data, _, _) = Make(12);
        using (data)
        using (model)
        {
            const int budget = 30;
            var suite = new RegistryAttackSuite("square", new AttackOptions { Queries = budget });
            var report = new Evaluator().Evaluate(model, data, Options(suite) with { SanityChecks = false }).Report;
            var q = Assert.IsType<QueryReport>(report.Queries);
            Assert.Equal(["square", "label:square"], q.PerAttack.Select(a => a.Name));
            var sampleStage = q.PerAttack[0];
            // The sample stage runs on every exact match, at most the budget each.
            Assert.Equal(report.Samples.Count(s => s.CleanCorrect), sampleStage.Samples);
            Assert.InRange(sampleStage.Max, 1, budget);
            // A label stage spends up to the budget on each (sample, label) pair still standing.
            var labelStage = q.PerAttack[1];
            Assert.True(labelStage.Samples > 0 && labelStage.Max <= budget * Labels, $"label stage: {labelStage.Samples} samples, max {labelStage.Max}");
            foreach (var s in report.Samples.Where(s => s.PerEpsilon[0].Broken))
            {
                var o = s.PerEpsilon[0];
                Assert.NotNull(o.QueriesToSuccess);
                // The breaking run's count (for a label stage, the pair that broke the sample): within its budget and its spend.
                Assert.InRange(o.QueriesToSuccess!.Value, 1, Math.Min(budget, o.Queries![o.BrokenBy]!.Value));
            }
            // With the whole budget the curve ends at the report's robust (subset) accuracy.
            Assert.Equal(report.RobustAccuracy, q.RobustAccuracyByBudget[^1].RobustAccuracy, 12);
        }
    }

    [Fact]
    public void CertificationIsRefusedForMultiLabelModels()
    {
        var (model, data, _, _) = Make(13);
        using (data)
        using (model)
        {
            var e = Assert.ThrowsAny<ParameterException>(() => new Evaluator().Evaluate(model, data, Options(Pgd(2)) with { CertifyIbp = true }));
            Assert.Equal(nameof(EvaluationOptions.CertifyIbp), e.Parameter);
            var c = Assert.ThrowsAny<InputException>(() => new Certifier().Ibp(model, data, new IbpCertificationOptions { Epsilon = 0.1 }));
            Assert.Contains("multi-label", c.Message);
        }
    }

    [Fact]
    public void MultiLabelModelOnSingleLabelDataIsRefused()
    {
        var (model, data, _, _) = Make(11);
        using (data)
        using (model)
        {
            var e = Assert.ThrowsAny<InputException>(() => new Evaluator().Evaluate(model, Fixtures.Data, Options(Pgd(2))));
            Assert.Contains("multi-label", e.Message);
            e = Assert.ThrowsAny<InputException>(() => new Evaluator().Evaluate(Fixtures.Healthy(), data, Fixtures.Options(Fixtures.FgsmPgd())));
            Assert.Contains("label sets", e.Message);
        }
    }
}
