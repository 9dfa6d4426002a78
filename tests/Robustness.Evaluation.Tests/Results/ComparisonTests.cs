using System.Numerics;
using Robustness.Evaluation;

namespace Robustness.Evaluation.Tests.Results;

public sealed class ComparisonTests : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    private static readonly string[] Attacks = ["apgd-ce", "apgd-t"];
    private static readonly double[] Sweep = [0, 0.05, 0.1];

    /// <summary>
    /// A report computed by the real aggregator from per-sample outcomes: sample i (label i % 4) is clean-correct when
    /// <paramref name="correct"/>(i), and broken at ε index e ≥ 1 by attack <paramref name="brokenBy"/>(i, e) (−1: robust).
    /// </summary>
    internal static RobustnessReport Report(int n, Func<int, bool> correct, Func<int, int, int> brokenBy, double eps = 0.1, string norm = "linf",
        long[]? indices = null, string[]? attacks = null, string model = "m", IReadOnlyList<SanityCheckResult>? checks = null, string dataset = "fashion-mnist")
    {
        indices ??= Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        attacks ??= Attacks;
        var sweep = Sweep.Select(e => e == 0.1 ? eps : e).ToArray();
        var samples = Enumerable.Range(0, n).Select(i => new SampleOutcome
        {
            Position = i,
            Index = indices[i],
            Label = i % 4,
            CleanPrediction = correct(i) ? i % 4 : (i + 1) % 4,
            CleanConfidence = 0.9,
            PerEpsilon = sweep.Select((e, k) =>
            {
                int by = k == 0 || !correct(i) ? -1 : brokenBy(i, k);
                return new SampleEpsilonOutcome(e, by, by >= 0 ? e : 0, by >= 0 ? (i + 2) % 4 : -1, 0.6);
            }).ToArray(),
        }).ToArray();
        var provenance = new Provenance
        {
            ToolVersion = "test", TorchSharpVersion = "0", Libtorch = "cpu", Device = "cpu", Seed = 0, BatchSize = 64,
            Attacks = attacks.Select(a => new AttackDescription(a, true, new Dictionary<string, string> { ["steps"] = "100" })).ToArray(),
            DatasetName = dataset, DatasetSource = "generated", ClassNames = ["a", "b", "c", "d"], SampleIndices = indices,
            ModelPath = $"/models/{model}.safetensors", ModelSha256 = ResultRecord.Sha256Hex(model), ModelArch = "mlp", WallSeconds = 1, Date = DateTimeOffset.UnixEpoch,
        };
        return ReportAggregator.Build(new ReportInputs(norm, eps, sweep, attacks, new double[sweep.Length, attacks.Length], samples, checks ?? [], provenance, null));
    }

    /// <summary>Baseline: 100 samples, 90 correct, robust at the main ε when i % 10 &lt; 3. Hardened: robust when i % 10 &lt; 6, also correct on 90.</summary>
    internal static (RobustnessReport Baseline, RobustnessReport Hardened) Pair()
    {
        var baseline = Report(100, i => i % 10 != 9, (i, e) => e == 1 ? (i % 10 < 5 ? -1 : 0) : (i % 10 < 3 ? -1 : i % 2));
        var hardened = Report(100, i => i % 10 != 8, (i, e) => i % 10 < 6 ? -1 : 1, model: "hardened");
        return (baseline, hardened);
    }

    [Fact]
    public void Differences_and_paired_counts_come_from_the_samples()
    {
        var (a, b) = Pair();
        var c = ReportComparison.Compare([new("base", "a.json", a), new("hard", "b.json", b)]);
        Assert.Empty(c.Incompatibilities);
        Assert.Equal(b.RobustAccuracy - a.RobustAccuracy, c.Headline[1].Delta(1)!.Value, 12);
        Assert.Equal(0.0, c.Headline[0].Delta(1)!.Value, 12);
        Assert.Equal(["ε = 0", "ε = 0.05", "ε = 0.1"], c.Sweep.Select(r => r.Label));
        Assert.Equal(["after apgd-ce", "after apgd-t"], c.Stages.Select(r => r.Label));
        Assert.Equal(4, c.PerClass.Count);

        // Paired at the main ε, counted here independently of the comparison code.
        var main = c.Paired!.Single(p => p.Epsilon == 0.1);
        bool RobA(int i) => i % 10 < 3;               // correct (i % 10 != 9) and never broken at ε index 2
        bool RobB(int i) => i % 10 < 6;
        var idx = Enumerable.Range(0, 100).ToArray();
        Assert.Equal(idx.Count(i => RobA(i) && RobB(i)), main.Both);
        Assert.Equal(idx.Count(i => RobA(i) && !RobB(i)), main.OnlyBaseline);
        Assert.Equal(idx.Count(i => !RobA(i) && RobB(i)), main.OnlyOther);
        Assert.Equal(100, main.Both + main.OnlyBaseline + main.OnlyOther + main.Neither);
        Assert.Equal(Exact(main.OnlyBaseline, main.OnlyOther), main.PValue, 12);
        Assert.True(main.Significant);
        var clean = c.Paired!.Single(p => p.What == "clean");
        Assert.Equal((80, 10, 10, 0), (clean.Both, clean.OnlyBaseline, clean.OnlyOther, clean.Neither));
        Assert.Equal(1.0, clean.PValue);
        Assert.DoesNotContain(c.Paired!, p => p.Epsilon == 0); // the clean row already says it

        var verdict = Assert.Single(ComparisonWriter.Verdicts(c));
        Assert.Equal(1, verdict.Direction);
        Assert.Contains("+30.00 points", verdict.Text);
        Assert.Contains("unlikely to be noise", verdict.Text);
    }

    /// <summary>Two-sided exact binomial p-value with exact integers.</summary>
    private static double Exact(int b, int c)
    {
        int n = b + c, k = Math.Min(b, c);
        BigInteger sum = 0, choose = 1;
        for (int j = 0; j <= k; j++)
        {
            if (j > 0) choose = choose * (n - j + 1) / j;
            sum += choose;
        }
        return Math.Min(1, (double)(2 * sum) / Math.Pow(2, n));
    }

    [Theory]
    [InlineData(0, 10)]
    [InlineData(3, 12)]
    [InlineData(12, 3)]
    [InlineData(5, 5)]
    [InlineData(0, 0)]
    [InlineData(40, 61)]
    [InlineData(1, 200)]
    public void McNemar_exact_matches_integer_arithmetic(int b, int c)
    {
        Assert.Equal(Exact(b, c), ReportComparison.McNemarExact(b, c), 12);
        Assert.Equal(ReportComparison.McNemarExact(b, c), ReportComparison.McNemarExact(c, b), 15);
        Assert.InRange(ReportComparison.McNemarExact(b, c), 0, 1);
    }

    [Fact]
    public void McNemar_known_values()
    {
        Assert.Equal(2.0 / 1024, ReportComparison.McNemarExact(0, 10), 15);
        Assert.Equal(2.0 * 576 / 32768, ReportComparison.McNemarExact(3, 12), 15);
        Assert.Equal(1.0, ReportComparison.McNemarExact(5, 5));
        // Large counts neither overflow nor underflow to nonsense.
        Assert.InRange(ReportComparison.McNemarExact(4000, 6000), 0, 1e-30);
        Assert.Equal(1.0, ReportComparison.McNemarExact(5000, 5000), 12);
    }

    [Fact]
    public void Different_threat_models_datasets_and_samples_are_named_as_incompatible()
    {
        var (a, _) = Pair();
        Assert.Contains("threat models differ: base is L∞ ε = 0.1, other is L∞ ε = 0.2",
            Assert.Single(ReportComparison.Compare([new("base", "", a), new("other", "", Report(100, _ => true, (_, _) => -1, eps: 0.2))]).Incompatibilities));
        Assert.Contains("threat models differ",
            Assert.Single(ReportComparison.Compare([new("base", "", a), new("other", "", Report(100, _ => true, (_, _) => -1, norm: "l2"))]).Incompatibilities));
        var shifted = Report(100, _ => true, (_, _) => -1, indices: Enumerable.Range(100, 100).Select(i => (long)i).ToArray());
        var c = ReportComparison.Compare([new("base", "", a), new("other", "", shifted)]);
        Assert.Contains("sample sets differ: base has 100 samples", Assert.Single(c.Incompatibilities));
        Assert.Null(c.Paired);
        Assert.Contains("different samples: no paired test", ComparisonWriter.Verdicts(c)[0].Text);
        Assert.Contains("datasets differ",
            Assert.Single(ReportComparison.Compare([new("base", "", a), new("other", "", Report(100, _ => true, (_, _) => -1, dataset: "mnist"))]).Incompatibilities));
        // The same samples in another order are the same sample set, and pair by index.
        var reversed = Report(100, _ => true, (_, _) => -1, indices: Enumerable.Range(0, 100).Reverse().Select(i => (long)i).ToArray());
        Assert.Empty(ReportComparison.Compare([new("base", "", a), new("other", "", reversed)]).Incompatibilities);
        // Attack sets may differ, but the comparison says so.
        var otherAttacks = Report(100, _ => true, (_, _) => -1, attacks: ["fgsm"]);
        var n = ReportComparison.Compare([new("base", "", a), new("other", "", otherAttacks)]);
        Assert.Empty(n.Incompatibilities);
        Assert.Contains(n.Notes, x => x.StartsWith("attack sets differ"));
        Assert.Equal(["after apgd-ce", "after apgd-t", "after fgsm"], n.Stages.Select(s => s.Label));
        Assert.Null(n.Stages[2].Values[0]);
    }

    [Fact]
    public void Writers_show_differences_escape_labels_and_warnings_per_report()
    {
        var (a, b) = Pair();
        var fired = new SanityCheckResult("zero-gradients", SanityChecks.ModelScope, true, 1, 0.5, 10, "all gradients were zero");
        var warned = Report(100, i => i % 10 != 8, (i, e) => i % 10 < 6 ? -1 : 1, model: "hardened", checks: [fired]);
        Assert.Contains(warned.Warnings, w => w.Code == "zero-gradients");
        var c = ReportComparison.Compare([new("<b>base</b>", Path.Combine(_temp.Path, "a", "report.json"), a), new("hard|ened", "b.json", warned)]);
        Assert.Equal([false, true], Assert.Single(c.Warnings).PresentIn);

        var files = ComparisonWriter.WriteAll(c, _temp.Sub("cmp"));
        var html = File.ReadAllText(files.Html);
        Assert.DoesNotContain("<b>base</b>", html);
        Assert.Contains("&lt;b&gt;base&lt;/b&gt;", html);
        Assert.Contains("<span class=\"delta up\">+30.00</span>", html);
        Assert.Contains("⚠ raised", html);
        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        var md = File.ReadAllText(files.Markdown);
        Assert.Contains(@"hard\|ened", md);
        Assert.Contains("▲ +30.00", md);
        Assert.Contains("| `zero-gradients` | — | ⚠ yes |", md);
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(files.Json));
        Assert.Equal(0.3, json.RootElement.GetProperty("headline")[1].GetProperty("delta_vs_baseline")[1].GetDouble(), 12);
        Assert.Equal(3, json.RootElement.GetProperty("paired").GetArrayLength());
        Assert.Empty(Directory.GetFiles(_temp.Sub("cmp"), "*.tmp"));
    }
}
