using Robustness.Certification;
using Robustness.Core;
using Robustness.Core.Graphs;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Evaluation.Tests;

/// <summary>An ibp-describable MLP (the zoo's) trained on the prototype data, for the certificate tests.</summary>
internal static class CertifiableModel
{
    private static readonly Lazy<TorchClassifier> Model = new(() =>
    {
        random.manual_seed(8);
        var spec = ModelZoo.DefaultSpec("mlp", new ZooOptions { InputShape = [1, Fixtures.Side, Fixtures.Side], Hidden = [32], NumClasses = Fixtures.Classes })
            with { Labels = Fixtures.ClassNames };
        var model = ModelZoo.CreateClassifier("mlp", CPU, spec);
        var train = Fixtures.MakeData(1000, 1);
        using var opt = optim.Adam(model.Module.parameters(), 0.01);
        for (int step = 0; step < 200; step++)
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            nn.functional.cross_entropy(model.Logits(train.Images), train.Labels).backward();
            opt.step();
        }
        train.Dispose();
        model.Module.eval();
        return model;
    });

    public static TorchClassifier Get() => Model.Value;
}

public class CertifierTests
{
    private static IReadOnlyList<long> First(int n) => Enumerable.Range(0, n).Select(i => (long)i).ToArray();

    [Fact]
    public void Ibp_certificate_orders_verified_below_empirical_below_clean()
    {
        var model = CertifiableModel.Get();
        var data = Fixtures.Data;
        var report = new Certifier().Ibp(model, data, new IbpCertificationOptions
        {
            Epsilon = 0.02, SweepEpsilons = [0, 0.01, 0.05], Seed = 3, SampleIndices = First(160), BatchSize = 64,
        });
        var check = report.EmpiricalCheck!;
        Assert.True(check.Passed, "an attack broke a verified point");
        Assert.Equal(0, check.Violations);
        double verified = report.VerifiedAccuracy!.Value, empirical = check.Radii[0].EmpiricalRobust;
        Assert.True(verified > 0.2, $"IBP verified only {verified:P1}: the check would be vacuous");
        Assert.True(verified <= empirical && empirical <= report.CleanAccuracy, $"verified {verified}, empirical {empirical}, clean {report.CleanAccuracy}");
        // The curve is non-increasing in ε and starts at (almost exactly) the clean accuracy: at ε = 0 the ball is the point.
        var curve = report.CertifiedAccuracyByRadius;
        Assert.Equal([0, 0.01, 0.02, 0.05], curve.Select(c => c.Radius));
        for (int i = 1; i < curve.Count; i++) Assert.True(curve[i].Accuracy <= curve[i - 1].Accuracy);
        Assert.InRange(curve[0].Accuracy, report.CleanAccuracy - 0.01, report.CleanAccuracy);
        Assert.Equal(report.Total, report.PerClass.Sum(c => c.Count));
        Assert.Equal(report.Samples.Count(s => s.Certified), report.PerClass.Sum(c => c.Certified));
        Assert.Empty(report.Warnings);
        Assert.Equal(3, report.Provenance.Seed);
    }

    [Fact]
    public void Ibp_check_catches_a_description_that_does_not_match_the_network()
    {
        // The description claims constant logits favouring class 0; the real network is the trained MLP. IBP "verifies"
        // every label-0 point at any ε, and APGD at ε = 0.3 breaks them: the check must call that a bug.
        var honest = CertifiableModel.Get();
        var graph = NetworkDescriptions.Of(honest);
        var last = (LinearOp)graph.Output.Op;
        using var bias = tensor(Enumerable.Range(0, Fixtures.Classes).Select(c => c == 0 ? 10f : 0f).ToArray());
        using var zero = zeros_like(last.Weight);
        var lie = new NetworkGraph([.. graph.Nodes.Take(graph.Nodes.Count - 1), graph.Output with { Op = new LinearOp(zero, bias) }]);
        using var liar = new TorchClassifier(new Described(honest.Module, lie), honest.Spec);
        var report = new Certifier().Ibp(liar, Fixtures.Data, new IbpCertificationOptions { Epsilon = 0.3, Seed = 1, SampleIndices = First(100) });
        Assert.False(report.EmpiricalCheck!.Passed);
        Assert.True(report.EmpiricalCheck.Violations > 0);
        Assert.Contains(report.Warnings, w => w.Code == "certified-but-broken" && w.Message.StartsWith("CERTIFICATE VIOLATED", StringComparison.Ordinal));
    }

    [Fact]
    public void Smoothing_certificates_stay_below_the_attack_on_the_smoothed_classifier()
    {
        var model = CertifiableModel.Get();
        var report = new Certifier().Smoothing(model, Fixtures.Data, new SmoothingCertificationOptions
        {
            Smoothing = new RandomizedSmoothing(0.25) { N = 2000, BatchSize = 500 },
            Seed = 4, SampleIndices = First(16), CheckPoints = 8, CheckSamples = 1000,
        });
        var check = report.EmpiricalCheck!;
        Assert.True(check.Passed, string.Join("; ", check.Radii.Select(r => $"r={r.Radius}: {r.Certified} vs {r.EmpiricalRobust}, {r.Violations}")));
        Assert.NotEmpty(check.Radii);
        Assert.True(report.CertifiedAccuracy > 0.3, $"certified only {report.CertifiedAccuracy:P0}");
        Assert.True(report.CertifiedAccuracy + report.AbstentionRate <= 1 + 1e-12);
        var radii = report.CertifiedAccuracyByRadius;
        for (int i = 1; i < radii.Count; i++) Assert.True(radii[i].Accuracy <= radii[i - 1].Accuracy);
        Assert.Equal(report.CertifiedAccuracy!.Value, radii[0].Accuracy, 12);
        // Nothing can be certified beyond σ·Φ⁻¹(α^(1/n)).
        Assert.All(report.Samples, s => Assert.True(s.Radius <= report.SampleSize!.MaxRadius + 1e-12));
        Assert.Contains(report.Warnings, w => w.Code == "reduced-samples");
    }

    [Fact]
    public void Smoothing_check_catches_certificates_that_do_not_hold()
    {
        // A model whose answer depends on the batch size (think batch norm left in train mode): CERTIFY's 500-copy
        // batches all say class 0, PREDICT's 100-copy batches say class 1. The certificates are worthless and the
        // cross-check must say so.
        using var model = new TorchClassifier(new BatchDependent(), Fixtures.Spec("batch-dependent"));
        using var images = rand(6, 1, Fixtures.Side, Fixtures.Side);
        using var labels = zeros(6, dtype: ScalarType.Int64);
        using var data = new ImageDataset("zeros", images.clone(), labels.clone(), Fixtures.ClassNames);
        var report = new Certifier().Smoothing(model, data, new SmoothingCertificationOptions
        {
            Smoothing = new RandomizedSmoothing(0.25) { N0 = 500, N = 1000, BatchSize = 500 },
            Seed = 5, CheckPoints = 4, CheckSamples = 100, CheckSteps = 2, CheckNoiseSamples = 4,
        });
        Assert.Equal(1.0, report.CertifiedAccuracy);
        Assert.False(report.EmpiricalCheck!.Passed);
        Assert.Contains(report.Warnings, w => w.Code == "certified-above-empirical");
    }

    [Fact]
    public void Certificate_files_round_trip_and_say_what_they_are()
    {
        var model = CertifiableModel.Get();
        var report = new Certifier().Ibp(model, Fixtures.Data, new IbpCertificationOptions { Epsilon = 0.02, SampleIndices = First(40), CheckAttacks = "" });
        var dir = Path.Combine(Path.GetTempPath(), "robustness-cert-" + Guid.NewGuid().ToString("N"));
        try
        {
            var files = CertificateBundle.WriteAll(report, dir);
            var back = JsonCertificateWriter.Read(files.Json);
            Assert.Equal(report.VerifiedAccuracy, back.VerifiedAccuracy);
            Assert.Equal(report.Samples.Count, back.Samples.Count);
            var json = File.ReadAllText(files.Json);
            foreach (var key in new[] { "\"clean_accuracy\"", "\"verified_accuracy\"", "\"certified_accuracy_by_radius\"", "\"abstention_rate\"", "\"per_class\"", "\"provenance\"", "\"seed\"" })
                Assert.Contains(key, json);
            Assert.Contains("IBP verification", File.ReadAllText(files.Markdown));
            var html = File.ReadAllText(files.Html);
            Assert.Contains("data:image/png;base64,", html);
            // Self-contained: one inline script (sortable tables), nothing fetched.
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(html, "<script"));
            Assert.DoesNotContain("src=\"http", html);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>Forward of one module, description of another graph.</summary>
    private sealed class Described(nn.Module<Tensor, Tensor> inner, NetworkGraph graph) : nn.Module<Tensor, Tensor>("described"), IDescribedNetwork
    {
        private readonly nn.Module<Tensor, Tensor> _inner = inner;
        public override Tensor forward(Tensor x) => _inner.call(x);
        public NetworkGraph Describe() => graph;
    }

    private sealed class BatchDependent() : nn.Module<Tensor, Tensor>("batch-dependent")
    {
        public override Tensor forward(Tensor x)
        {
            var favoured = x.shape[0] >= 500 ? 0 : 1;
            var logits = zeros(x.shape[0], Fixtures.Classes, device: x.device) + x.flatten(1).sum(1, true) * Keep(0);
            return logits.index_fill(1, tensor(new long[] { favoured }, device: x.device), Keep(5f));
        }
    }
}

/// <summary>`robust eval --certify`: verified numbers beside the empirical ones, certified ≤ empirical per sample.</summary>
public class EvalCertifyTests
{
    private static EvaluationOptions Options(double eps, params double[] sweep) => Fixtures.Options(new RegistryAttackSuite("apgd-ce"), eps, sweep) with
    {
        CertifyIbp = true, SampleIndices = Enumerable.Range(0, 96).Select(i => (long)i).ToArray(), SanityChecks = false, ImageCount = 0,
    };

    [Fact]
    public void Verified_accuracy_sits_below_robust_accuracy_at_every_epsilon()
    {
        var result = new Evaluator().Evaluate(CertifiableModel.Get(), Fixtures.Data, Options(0.02, 0, 0.01, 0.05));
        var r = result.Report;
        Assert.NotNull(r.VerifiedAccuracy);
        Assert.Equal("ibp", r.Provenance.Certification);
        foreach (var e in r.EpsSweep)
        {
            Assert.NotNull(e.VerifiedAccuracy);
            Assert.True(e.VerifiedAccuracy <= e.RobustAccuracy, $"ε = {e.Epsilon}: verified {e.VerifiedAccuracy} > robust {e.RobustAccuracy}");
        }
        Assert.True(r.VerifiedAccuracy > 0.2, "nothing verified: the comparison would be vacuous");
        Assert.Contains(r.SanityChecks, c => c.Code == CertifiedButBrokenCheck.Code && !c.Fired);
        Assert.DoesNotContain(r.Warnings, w => w.Code == CertifiedButBrokenCheck.Code);
        Assert.Equal(r.Samples.Count(s => s.PerEpsilon[2].Verified == true), r.PerClass.Sum(c => c.Verified));
        var md = MarkdownReportWriter.Render(r);
        Assert.Contains("certificates prove", md);
        Assert.Contains("verified (IBP)", HtmlReportWriter.Render(r));
        // A merge of shards recomputes the same verified numbers from the samples.
        var shards = Enumerable.Range(0, 2).Select(i => new Evaluator().Evaluate(CertifiableModel.Get(), Fixtures.Data,
            Options(0.02, 0, 0.01, 0.05) with { Shard = new ShardSpec(i, 2), BatchSize = 32 }).Report).ToArray();
        var merged = ReportMerger.Merge(shards);
        var whole = new Evaluator().Evaluate(CertifiableModel.Get(), Fixtures.Data, Options(0.02, 0, 0.01, 0.05) with { BatchSize = 32 }).Report;
        Assert.Equal(whole.EpsSweep.Select(e => e.VerifiedAccuracy), merged.EpsSweep.Select(e => e.VerifiedAccuracy));
    }

    [Fact]
    public void A_verified_point_an_attack_breaks_raises_the_loud_warning()
    {
        var honest = CertifiableModel.Get();
        var graph = NetworkDescriptions.Of(honest);
        var last = (LinearOp)graph.Output.Op;
        using var bias = tensor(Enumerable.Range(0, Fixtures.Classes).Select(c => c == 0 ? 10f : 0f).ToArray());
        using var zero = zeros_like(last.Weight);
        var lie = new NetworkGraph([.. graph.Nodes.Take(graph.Nodes.Count - 1), graph.Output with { Op = new LinearOp(zero, bias) }]);
        using var liar = new TorchClassifier(new LyingDescription(honest.Module, lie), honest.Spec);
        var r = new Evaluator().Evaluate(liar, Fixtures.Data, Options(0.3)).Report;
        var warning = Assert.Single(r.Warnings, w => w.Code == CertifiedButBrokenCheck.Code);
        Assert.StartsWith("CERTIFICATE VIOLATED", warning.Message);
    }

    [Fact]
    public void Certify_needs_linf()
    {
        var e = Assert.Throws<ParameterException>(() => (Options(0.1) with { Norm = Norm.L2 }).Validate(Bounds.Unit));
        Assert.Equal("CertifyIbp", e.Parameter);
    }

    private sealed class LyingDescription(nn.Module<Tensor, Tensor> inner, NetworkGraph graph) : nn.Module<Tensor, Tensor>("lying"), IDescribedNetwork
    {
        private readonly nn.Module<Tensor, Tensor> _inner = inner;
        public override Tensor forward(Tensor x) => _inner.call(x);
        public NetworkGraph Describe() => graph;
    }
}
