using System.Text.Json;
using Robustness.Core.Formats;
using Robustness.Data;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Cli.Tests;

/// <summary>Multi-label end to end through the CLI: a labels.csv folder, train --multi-label, eval, attack, the
/// targeted goals, and the bad-input cases (exit 2, one line naming the option).</summary>
[Collection("cli")]
public sealed class MultiLabelCliTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    /// <summary>A labelled folder with train/ and test/ splits cut from fashion-mnist-multi (generated from the shipped test set).</summary>
    private string LabelledFolder()
    {
        var root = _temp.Sub("ml-data");
        using var all = DatasetCatalog.Load(FashionMnistMulti.Name, "test");
        using var train = all.Take(120);
        using var test = all.Subset(Enumerable.Range(9000, 40).Select(i => (long)i).ToArray());
        LabelsCsvReader.Write(train, Path.Combine(root, "train"));
        LabelsCsvReader.Write(test, Path.Combine(root, "test"));
        return root;
    }

    /// <summary>An untrained multi-label tiny-cnn for 56×56 canvases.</summary>
    private string MultiLabelModel()
    {
        var path = _temp.Sub("multi.safetensors");
        manual_seed(2);
        var spec = ModelZoo.DefaultSpec("tiny-cnn", new ZooOptions { InputShape = [1, 56, 56] }) with
        {
            MultiLabel = true, Labels = DatasetCatalog.FashionMnistClassNames,
        };
        using var model = ModelZoo.CreateClassifier("tiny-cnn", CPU, spec);
        ModelFile.Save(model, path);
        return path;
    }

    [Fact]
    public void TrainEvalAndAttackAMultiLabelLogisticModel()
    {
        var data = LabelledFolder();
        var run = _temp.Sub("train");
        var r = Cli.Run("train", "--arch", "logistic", "--data", data, "--multi-label", "--epochs", "2", "--val-size", "20",
            "--tune-threshold", "hamming", "--threads", "1", "--seed", "1", "--out", run);
        Assert.True(r.ExitCode == 0, r.ToString());
        var best = Path.Combine(run, "best.safetensors");
        using (var state = SafeTensors.Read(best))
        {
            Assert.Equal("true", state.Metadata["multi_label"]);
            Assert.True(double.Parse(state.Metadata["decision_threshold"], System.Globalization.CultureInfo.InvariantCulture) is > 0 and < 1);
            Assert.Contains("Hamming accuracy on 20 held-out images", state.Metadata["training.threshold_tuning"]);
            Assert.Equal(new long[] { 10, 3136 }, state["fc.weight"].shape);
        }
        Assert.Contains("Hamming", r.Stdout);

        // Re-tuned after training for robust Hamming accuracy, on the same held-out split (seed and size from the metadata).
        var retuned = _temp.Sub("retuned.safetensors");
        r = Cli.Run("threshold", best, "--data", data, "--metric", "robust-hamming", "--eps", "0.05", "--steps", "3", "--threads", "1", "--json", "--out", retuned);
        Assert.True(r.ExitCode == 0, r.ToString());
        using (var json = JsonDocument.Parse(r.Stdout))
        {
            var root = json.RootElement;
            Assert.Equal(20, root.GetProperty("held_out_images").GetInt32());
            Assert.Equal(1, root.GetProperty("seed").GetInt64());
            Assert.True(root.GetProperty("score").GetDouble() >= root.GetProperty("score_at_half").GetDouble());
            using var state = SafeTensors.Read(retuned);
            Assert.Equal(root.GetProperty("threshold").GetDouble(), double.Parse(state.Metadata["decision_threshold"], System.Globalization.CultureInfo.InvariantCulture));
            Assert.Contains("robust Hamming accuracy (PGD-3 per label, linf ε = 0.05) on 20 held-out images", state.Metadata["training.threshold_tuning"]);
        }

        var eval = _temp.Sub("eval");
        r = Cli.Run("eval", "--model", best, "--data", data, "--attacks", "fgsm,pgd", "--steps", "2", "--label-attacks", "pgd",
            "--eps-sweep", "0,0.05,0.1", "--threads", "1", "--images", "3", "--out", eval);
        Assert.True(r.ExitCode == 0, r.ToString());
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(eval, "report.json"))))
        {
            var root = json.RootElement;
            foreach (var key in new[] { "subset_accuracy", "hamming_accuracy", "robust_subset_accuracy", "robust_hamming_accuracy" })
                Assert.InRange(root.GetProperty(key).GetDouble(), 0, 1);
            Assert.True(root.GetProperty("robust_hamming_accuracy").GetDouble() <= root.GetProperty("hamming_accuracy").GetDouble());
            Assert.Equal(10, root.GetProperty("multi_label").GetProperty("per_label").GetArrayLength());
            Assert.Equal(["fgsm", "pgd", "label:fgsm".Replace("fgsm", "pgd")], root.GetProperty("per_attack").EnumerateArray().Select(a => a.GetProperty("name").GetString()!).ToArray());
        }
        var md = File.ReadAllText(Path.Combine(eval, "report.md"));
        Assert.Contains("robust Hamming", md);
        Assert.Contains("Hamming accuracy", r.Stdout);

        var attack = _temp.Sub("attack");
        r = Cli.Run("attack", "--model", best, "--data", data, "--attack", "pgd", "--steps", "3", "--eps", "0.2", "--flip", "1", "--threads", "1", "--out", attack);
        Assert.True(r.ExitCode == 0, r.ToString());
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(attack, "result.json"))))
        {
            var root = json.RootElement;
            Assert.Contains("flip 1", root.GetProperty("target_labels").GetString());
            Assert.InRange(root.GetProperty("targeted_success_rate").GetDouble(), 0, 1);
        }
        using (var adv = SafeTensors.Read(Path.Combine(attack, "adversarial.safetensors")))
        {
            Assert.Equal(new long[] { 40, 10 }, adv["labels"].shape);
            Assert.Equal(new long[] { 40, 10 }, adv["adversarial_predictions"].shape);
            Assert.True((adv["adversarial"] - DatasetCatalog.Load(data, "test").Images).abs().max().item<float>() <= 0.2f * (1 + 1e-6f));
        }
        Expect.NoTempFiles(_temp.Path);
    }

    [Fact]
    public void MultiLabelRunsAreRecordedRankedAndCompared()
    {
        var data = LabelledFolder();
        var model = MultiLabelModel();
        var db = _temp.Sub("results.db");
        string Eval(string name, string steps)
        {
            var dir = _temp.Sub(name);
            var r = Cli.Run("eval", "--model", model, "--data", data, "--eps", "0.05", "--attacks", "pgd", "--steps", steps, "--label-attacks", "none",
                "--no-sanity", "--images", "0", "--threads", "1", "--results-db", db, "--out", dir);
            Assert.True(r.ExitCode == 0, r.ToString());
            return dir;
        }
        var (a, b) = (Eval("ml-a", "2"), Eval("ml-b", "5"));
        double Robust(string dir)
        {
            using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "report.json")));
            var root = report.RootElement;
            Assert.Equal(root.GetProperty("robust_subset_accuracy").GetDouble(), root.GetProperty("robust_accuracy").GetDouble());
            return root.GetProperty("robust_accuracy").GetDouble();
        }

        // One row per model: the lowest robust (subset) accuracy of its runs.
        var board = Cli.Run("leaderboard", "--results-db", db, "--json");
        Assert.True(board.ExitCode == 0, board.ToString());
        using var doc = JsonDocument.Parse(board.Stdout);
        var table = Assert.Single(doc.RootElement.GetProperty("tables").EnumerateArray());
        var row = Assert.Single(table.GetProperty("rows").EnumerateArray());
        Assert.Equal(2, row.GetProperty("runs").GetInt32());
        Assert.Equal(Math.Min(Robust(a), Robust(b)), row.GetProperty("robust_accuracy").GetDouble());

        var compareDir = _temp.Sub("ml-compare");
        var compare = Cli.Run("compare", a, b, "--out", compareDir);
        Assert.True(compare.ExitCode == 0, compare.ToString());
        Assert.True(File.Exists(Path.Combine(compareDir, "compare.json")));
    }

    [Fact]
    public void ShippedMultiLabelDemoPairIsOrderedAsTrained()
    {
        // The README's `robust demo --multi-label` on the shipped pair (data/models), on fewer canvases: worst case never
        // above clean, and the PGD-trained model keeps more labels right under attack than the standard one.
        var r = Cli.Run("demo", "--multi-label", "--n", "40", "--threads", "2", "--out", _temp.Sub("ml-demo"), "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = JsonDocument.Parse(r.Stdout);
        var models = doc.RootElement.GetProperty("models").EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!);
        Assert.Equal(["tiny-cnn-multi-standard", "tiny-cnn-multi-pgd"], models.Keys);
        foreach (var m in models.Values)
        {
            Assert.Equal(40, m.GetProperty("samples").GetInt32());
            Assert.True(m.GetProperty("robust_hamming_accuracy").GetDouble() <= m.GetProperty("hamming_accuracy").GetDouble());
            Assert.True(m.GetProperty("robust_subset_accuracy").GetDouble() <= m.GetProperty("subset_accuracy").GetDouble());
            Assert.True(File.Exists(m.GetProperty("files").GetProperty("html").GetString()));
        }
        Assert.True(models["tiny-cnn-multi-pgd"].GetProperty("robust_hamming_accuracy").GetDouble()
            > models["tiny-cnn-multi-standard"].GetProperty("robust_hamming_accuracy").GetDouble(), r.Stdout);
    }

    [Fact]
    public void DataDescribesTheMultiLabelSet()
    {
        var r = Cli.Run("data", FashionMnistMulti.Name);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("label cardinality", r.Stdout);
        Assert.Contains("label frequencies", r.Stdout);
        Assert.Contains("784aec4ec1f1887a2b0af2bfe808b9c926f57e04c69d8af3ee47baadfce13c56", r.Stdout);
    }

    [Fact]
    public void BadMultiLabelInputIsOneLineAndExitTwo()
    {
        var data = LabelledFolder();
        var model = MultiLabelModel();
        var outDir = _temp.Sub("bad");
        Expect.BadInput(Cli.Run("train", "--arch", "logistic", "--data", data, "--epochs", "1", "--out", outDir), "--multi-label", "multi-label dataset");
        Expect.BadInput(Cli.Run("train", "--arch", "logistic", "--data", data, "--tune-threshold", "subset", "--out", outDir), "--tune-threshold");
        Expect.BadInput(Cli.Run("train", "--arch", "logistic", "--data", data, "--multi-label", "--defense", "pgd", "--label-focus", "strongest", "--out", outDir), "--label-focus", "strongest");
        Expect.BadInput(Cli.Run("train", "--arch", "logistic", "--data", data, "--multi-label", "--defense", "trades", "--label-focus", "weakest", "--out", outDir), "--label-focus", "--defense pgd");
        Expect.BadInput(Cli.Run("train", "--arch", "logistic", "--data", "fashion-mnist", "--defense", "pgd", "--label-focus", "weakest", "--out", outDir), "--label-focus", "--multi-label");
        Expect.BadInput(Cli.Run("train", "--arch", "logistic", "--data", data, "--multi-label", "--tune-threshold", "best", "--out", outDir), "--tune-threshold", "unknown metric");
        var tunedOut = Path.Combine(outDir, "m.safetensors");
        var recordsFolder = _temp.Sub("records-folder");
        Assert.Equal(0, Cli.Run("train", "--arch", "logistic", "--data", data, "--multi-label", "--epochs", "1", "--val-size", "20", "--threads", "1", "--out", recordsFolder).ExitCode);
        Expect.BadInput(Cli.Run("threshold", Path.Combine(recordsFolder, "best.safetensors"), "--metric", "hamming", "--out", tunedOut), "--data", "records its training data as 'ml-data'");
        Expect.BadInput(Cli.Run("threshold", model, "--metric", "hamming", "--out", tunedOut), "--data", "does not record");
        Expect.BadInput(Cli.Run("threshold", model, "--metric", "best", "--data", data, "--val-size", "20", "--seed", "1", "--out", tunedOut), "--metric", "unknown metric");
        Expect.BadInput(Cli.Run("threshold", model, "--metric", "hamming", "--eps", "0.1", "--data", data, "--val-size", "20", "--seed", "1", "--out", tunedOut), "--eps", "robust-hamming");
        Expect.BadInput(Cli.Run("threshold", model, "--metric", "robust-hamming", "--data", data, "--val-size", "20", "--seed", "1", "--out", tunedOut), "--eps", "does not record");
        Expect.BadInput(Cli.Run("threshold", model, "--metric", "hamming", "--data", data, "--val-size", "500", "--seed", "1", "--out", tunedOut), "--val-size");
        Expect.BadInput(Cli.Run("threshold", Make.TinyCnn, "--metric", "hamming", "--data", data, "--val-size", "20", "--seed", "1", "--out", tunedOut), "not a multi-label model");
        Expect.BadInput(Cli.Run("eval", "--model", model, "--data", "fashion-mnist", "--n", "4", "--eps", "0.1", "--out", outDir), "--data", "multi-label");
        Expect.BadInput(Cli.Run("eval", "--model", Make.TinyCnn, "--data", "fashion-mnist", "--n", "4", "--eps", "0.1", "--flip", "1", "--out", outDir), "--flip");
        Expect.BadInput(Cli.Run("eval", "--model", model, "--data", data, "--eps", "0.1", "--target-labels", "+Nope", "--out", outDir), "--target-labels", "Nope");
        Expect.BadInput(Cli.Run("eval", "--model", model, "--data", data, "--eps", "0.1", "--flip", "11", "--out", outDir), "--flip");
        Expect.BadInput(Cli.Run("attack", "--model", model, "--data", data, "--attack", "pgd", "--loss", "dlr", "--eps", "0.1", "--out", outDir), "--loss", "dlr");
        Expect.BadInput(Cli.Run("data", "fashion-mnist", "--export", outDir), "--export");
        // Integration's features that have no multi-label meaning are refused before anything is written.
        Expect.BadInput(Cli.Run("eval", "--model", model, "--data", data, "--eps", "0.1", "--label-only", "--attacks", "hopskipjump", "--out", outDir), "--label-only", "multi-label");
        Expect.BadInput(Cli.Run("eval", "--model", model, "--data", data, "--eps", "0.1", "--attacks", "pgd", "--certify", "--out", outDir), "--certify", "multi-label");
        Expect.BadInput(Cli.Run("certify", "--model", model, "--data", data, "--method", "ibp", "--eps", "0.1", "--out", outDir), "--model", "multi-label");
        Expect.BadInput(Cli.Run("train", "--arch", "logistic", "--data", data, "--multi-label", "--defense", "ibp", "--epochs", "1", "--out", outDir), "--defense ibp", "multi-label");
        Expect.BadInput(Cli.Run("eval", "--model", model, "--data", data, "--eps", "0.1", "--attacks", "transfer:pgd", "--transfer-from", Make.TinyCnn, "--out", outDir), "--transfer-from");
        Expect.NoPartialOutput(outDir);
    }
}
