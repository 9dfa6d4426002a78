using System.Text.Json;
using Robustness.Core;
using Robustness.Core.Formats;
using Robustness.Models;
using static TorchSharp.torch;

namespace Robustness.Cli.Tests;

/// <summary>
/// Black-box models through the CLI: ONNX Runtime as a query-only backend, --label-only, decision-based and transfer
/// attacks, the query budget in result.json and report.json, refusals of attacks the model cannot answer, and the
/// reports' query sections.
/// </summary>
[Collection("cli")]
public sealed class BlackBoxCliTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    private static string Standard => Path.Combine(Repo.Root, "data", "models", "tiny-cnn-standard.safetensors");
    private static string Pgd => Path.Combine(Repo.Root, "data", "models", "tiny-cnn-pgd.safetensors");
    private static string StandardOnnx => Path.Combine(Repo.Root, "tests", "fixtures", "blackbox", "tiny-cnn-standard.onnx");

    private static JsonElement Json(string path) => JsonDocument.Parse(File.ReadAllText(path)).RootElement;

    [Fact]
    public void A_gradient_attack_on_a_label_only_model_is_one_line_naming_the_attacks_that_run()
    {
        var outDir = _temp.Sub("refused");
        var r = Cli.Run("attack", "--model", Standard, "--label-only", "--n", "4", "--attack", "pgd", "--eps", "0.1", "--out", outDir);
        var line = Expect.BadInput(r, "--attack", "pgd", "input gradients", "hopskipjump", "boundary", "transfer");
        Assert.DoesNotContain("square", line);
        Expect.NoPartialOutput(outDir);
        var eval = Cli.Run("eval", "--model", StandardOnnx, "--backend", "onnxruntime", "--n", "4", "--eps", "0.1", "--preset", "fast", "--out", _temp.Sub("refused-eval"));
        Expect.BadInput(eval, "--attacks", "apgd-ce", "square", "hopskipjump");
        Expect.NoPartialOutput(_temp.Sub("refused-eval"));
        Expect.BadInput(Cli.Run("attack", "--model", StandardOnnx, "--backend", "onnxruntime", "--precision", "bf16", "--n", "4", "--attack", "square", "--eps", "0.1",
            "--out", _temp.Sub("bf16")), "--precision", "gradients");
        Expect.BadInput(Cli.Run("attack", "--model", Standard, "--backend", "onnxruntime", "--n", "4", "--attack", "square", "--eps", "0.1",
            "--out", _temp.Sub("not-onnx")), "--backend", "onnx");
        Expect.BadInput(Cli.Run("attack", "--model", Standard, "--transfer-from", Pgd, "--n", "4", "--attack", "pgd", "--eps", "0.1",
            "--out", _temp.Sub("unused")), "--transfer-from", "transfer:");
    }

    [Fact]
    public void OnnxRuntime_backend_and_our_executor_give_the_same_predictions_and_square_result()
    {
        var ort = _temp.Sub("ort");
        var exe = _temp.Sub("exe");
        string[] common = ["--n", "64", "--attack", "square", "--queries", "60", "--eps", "0.05", "--seed", "3", "--threads", "1", "--images", "0"];
        var a = Cli.Run(["attack", "--model", StandardOnnx, "--backend", "onnxruntime", .. common, "--out", ort]);
        Assert.True(a.ExitCode == 0, a.ToString());
        var b = Cli.Run(["attack", "--model", StandardOnnx, .. common, "--out", exe]);
        Assert.True(b.ExitCode == 0, b.ToString());
        using var left = SafeTensors.Read(Path.Combine(ort, "adversarial.safetensors"));
        using var right = SafeTensors.Read(Path.Combine(exe, "adversarial.safetensors"));
        Assert.Equal(right.Tensors["clean_predictions"].data<long>().ToArray(), left.Tensors["clean_predictions"].data<long>().ToArray());
        var (ra, rb) = (Json(Path.Combine(ort, "result.json")), Json(Path.Combine(exe, "result.json")));
        Assert.Equal("scores", ra.GetProperty("model_access").GetString());
        Assert.Equal("gradients", rb.GetProperty("model_access").GetString());
        Assert.InRange(Math.Abs(ra.GetProperty("robust_accuracy").GetDouble() - rb.GetProperty("robust_accuracy").GetDouble()), 0, 3.0 / 64);
        var queries = ra.GetProperty("queries").GetProperty("per_attack")[0];
        Assert.Equal(60, queries.GetProperty("budget").GetInt64());
        Assert.InRange(queries.GetProperty("max").GetInt64(), 1, 60);
    }

    [Fact]
    public void HopSkipJump_on_a_label_only_model_stays_in_budget_and_reports_queries_and_minimum_norms()
    {
        var outDir = _temp.Sub("hsj");
        var r = Cli.Run("attack", "--model", Standard, "--label-only", "--n", "12", "--attack", "hopskipjump", "--norm", "l2", "--eps", "2",
            "--queries", "250", "--threads", "1", "--seed", "1", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        var result = Json(Path.Combine(outDir, "result.json"));
        Assert.Equal("labels", result.GetProperty("model_access").GetString());
        var perSample = result.GetProperty("queries").GetProperty("per_sample").EnumerateArray().ToArray();
        Assert.Equal(12, perSample.Length);
        foreach (var s in perSample)
            if (s.ValueKind == JsonValueKind.Array) Assert.InRange(s[0].GetInt64(), 0, 250);
        Assert.True(result.GetProperty("median_minimum_norm").GetDouble() > 0);
        Assert.True(result.GetProperty("robust_accuracy").GetDouble() < result.GetProperty("clean_accuracy").GetDouble(), "HopSkipJump broke nothing at L2 ε = 2");
        using var adv = SafeTensors.Read(Path.Combine(outDir, "adversarial.safetensors"));
        Assert.True(adv.Tensors["distance"].max().item<double>() <= 2 + 1e-6);
    }

    [Fact]
    public void Eval_worst_case_over_transfer_and_decision_based_attacks_writes_query_sections()
    {
        var outDir = _temp.Sub("eval");
        var r = Cli.Run("eval", "--model", Pgd, "--label-only", "--transfer-from", Standard, "--n", "16", "--norm", "l2", "--eps", "1.5",
            "--attacks", "pgd,hopskipjump", "--steps", "5", "--queries", "150", "--threads", "1", "--no-sanity", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        var report = Json(Path.Combine(outDir, "report.json"));
        var names = report.GetProperty("per_attack").EnumerateArray().Select(a => a.GetProperty("name").GetString()!).ToArray();
        Assert.Equal(new[] { "transfer:pgd", "hopskipjump" }, names);
        var queries = report.GetProperty("queries");
        var stats = queries.GetProperty("per_attack").EnumerateArray().ToArray();
        Assert.Equal(1, stats[0].GetProperty("max").GetInt64());
        Assert.InRange(stats[1].GetProperty("max").GetInt64(), 0, 150);
        var curve = queries.GetProperty("robust_accuracy_by_budget").EnumerateArray().Select(p => p.GetProperty("robust_accuracy").GetDouble()).ToArray();
        for (int i = 1; i < curve.Length; i++) Assert.True(curve[i] <= curve[i - 1] + 1e-12, "robust accuracy must not rise with the budget");
        Assert.Equal(report.GetProperty("robust_accuracy").GetDouble(), curve[^1], 12);
        Assert.True(queries.GetProperty("model_queries").GetInt64() > 0);
        Assert.True(File.Exists(Path.Combine(outDir, "plots", "robust-vs-queries.png")));
        Assert.Contains("## Queries", File.ReadAllText(Path.Combine(outDir, "report.md")));
        Assert.Contains("<h2>Queries</h2>", File.ReadAllText(Path.Combine(outDir, "report.html")));
    }

    [Fact]
    public void Train_fine_tunes_a_TorchScript_model_adversarially_and_writes_TorchScript_back()
    {
        var data = _temp.Dir("data");
        Make.FashionSubset(data, "train", 5000, 1200);
        Make.FashionSubset(data, "t10k", 9000, 300);
        var archive = Path.Combine(Repo.Root, "tests", "fixtures", "byom", "cnn-bn-script.pt");
        var outDir = _temp.Sub("fine-tuned");
        var r = Cli.Run("train", "--model", archive, "--data", data, "--defense", "pgd", "--eps", "0.1", "--steps", "3", "--epochs", "1",
            "--val-size", "200", "--batch-size", "64", "--lr", "0.01", "--threads", "1", "--seed", "2", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        foreach (var f in new[] { "best.pt", "last.pt", "best.pt.json", "metrics.jsonl" }) Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        var provenance = Json(Path.Combine(outDir, "last.pt.json"));
        Assert.Equal(ModelFile.Sha256(archive), provenance.GetProperty("fine_tuned_from_sha256").GetString());
        Expect.NoTempFiles(outDir);

        using var scope = NewDisposeScope();
        var contract = new InputContract { InputShape = [1, 28, 28] };
        using var before = ModelLoader.Load(archive, CPU, contract);
        using var after = ModelLoader.Load(Path.Combine(outDir, "last.pt"), CPU, contract);
        Assert.Equal(ModelFormat.TorchScript, after.Format);
        using var test = Robustness.Data.DatasetCatalog.Load(data, "test");
        var x = test.Images;
        var y = test.Labels;
        using (no_grad())
            Assert.True((before.Classifier.Logits(x) - after.Classifier.Logits(x)).abs().max().item<float>() > 1e-3, "the written archive has the original weights");
        // PGD-AT must make the archive more robust at the training ε on held-out images.
        var threat = ThreatModel.Linf(0.1);
        double Robust(TorchClassifier m)
        {
            using var s = NewDisposeScope();
            using var result = Robustness.Attacks.Presets.Pgd(threat, 10, 1).Run(m, x, new AttackTargets(y), Robustness.Core.Attacking.AttackContext.Seeded(1));
            Tensor clean;
            using (no_grad()) clean = m.Logits(x).argmax(1);
            return result.Success.logical_not().logical_and(clean.eq(y)).to(ScalarType.Float64).mean().item<double>();
        }
        double robustBefore = Robust(before.Classifier), robustAfter = Robust(after.Classifier);
        Assert.True(robustAfter > robustBefore + 0.1, $"PGD-10 robust accuracy {robustBefore:P1} before fine-tuning, {robustAfter:P1} after");
        Expect.BadInput(Cli.Run("train", "--model", Path.Combine(Repo.Root, "tests", "fixtures", "byom", "cnn-bn.onnx"), "--data", data, "--epochs", "1",
            "--out", _temp.Sub("onnx")), "--model", "TorchScript");
    }
}
