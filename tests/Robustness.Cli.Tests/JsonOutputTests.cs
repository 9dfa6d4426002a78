using System.Text.Json;
using Robustness.Cli;
using Robustness.Models;

namespace Robustness.Cli.Tests;

/// <summary>
/// `--json` on every verb: stdout is exactly one JSON document with the verb's top-level keys (the tables and messages
/// go to stderr), and on bad input the document is the error. Small runs (untrained tiny-cnn, a few samples).
/// </summary>
[Collection("cli")]
public sealed class JsonOutputTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    /// <summary>Exit 0, stdout one JSON object (a second document or stray text fails to parse) with these keys.</summary>
    private static JsonElement Document(CliResult r, params string[] keys)
    {
        Assert.True(r.ExitCode == 0, r.ToString());
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(r.Stdout);
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new Xunit.Sdk.XunitException($"stdout is not one JSON document ({e.Message})\n{r}");
        }
        Assert.Equal(JsonValueKind.Object, root.ValueKind);
        foreach (var k in keys) Assert.True(root.TryGetProperty(k, out _), $"no '{k}' in the document\n{r.Stdout}");
        return root;
    }

    [Fact]
    public void Every_verb_has_json()
    {
        var verbs = RobustCli.BuildRoot().Subcommands;
        Assert.True(verbs.Count >= 13);
        foreach (var verb in verbs)
            Assert.True(verb.Options.Any(o => o.Name == "--json"), $"robust {verb.Name} has no --json");
    }

    [Fact]
    public void Info()
    {
        var d = Document(Cli.Run("info", Make.TinyCnn, "--json"), "file", "sha256", "format", "arch", "input_shape", "labels", "parameters", "facts", "metadata", "notes", "check");
        Assert.Equal(ModelFile.Sha256(Make.TinyCnn), d.GetProperty("sha256").GetString());
        Assert.Equal("tiny-cnn", d.GetProperty("arch").GetString());
        Assert.Equal([1, 28, 28], d.GetProperty("input_shape").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(JsonValueKind.Null, d.GetProperty("check").ValueKind);
    }

    [Fact]
    public void Data_describes_both_splits_found_or_not()
    {
        var dir = Make.IdxFolder(_temp, "idx", Make.IdxImages(12, 28, 28), Make.IdxLabels(Make.Labels(12)));
        var r = Cli.Run("data", dir, "--json");
        var d = Document(r, "dataset", "splits");
        var splits = d.GetProperty("splits").EnumerateArray().ToArray();
        Assert.Equal(["train", "test"], splits.Select(s => s.GetProperty("split").GetString()));
        Assert.False(splits[0].GetProperty("found").GetBoolean());
        Assert.False(string.IsNullOrEmpty(splits[0].GetProperty("error").GetString()));
        Assert.True(splits[1].GetProperty("found").GetBoolean());
        Assert.Equal(12, splits[1].GetProperty("count").GetInt32());
        Assert.Equal(10, splits[1].GetProperty("classes").GetArrayLength());
        // The human description went to stderr.
        Assert.Contains("12 images", r.Stderr);
    }

    [Fact]
    public void Attacks()
    {
        var d = Document(Cli.Run("attacks", "--json"), "attacks", "presets");
        var pgd = d.GetProperty("attacks").EnumerateArray().Single(a => a.GetProperty("name").GetString() == "pgd");
        Assert.Equal("gradients", pgd.GetProperty("needs").GetString());
        Assert.Contains(pgd.GetProperty("defaults").EnumerateArray(), x => x.GetProperty("flag").GetString() == "--steps");
        var standard = d.GetProperty("presets").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "standard");
        Assert.Contains("apgd-ce", standard.GetProperty("attacks").EnumerateArray().Select(a => a.GetString()));
    }

    [Fact]
    public void Attack_prints_result_json()
    {
        var outDir = _temp.Sub("attack");
        var r = Cli.Run("attack", "--model", Make.TinyCnn, "--n", "8", "--attack", "fgsm", "--eps", "0.1", "--images", "2", "--threads", "1", "--out", outDir, "--json");
        var d = Document(r, "attack", "norm", "eps", "samples", "clean_accuracy", "robust_accuracy", "per_attack", "seed", "provenance", "images", "examples", "output");
        Assert.Equal(8, d.GetProperty("samples").GetInt32());
        Assert.True(d.GetProperty("robust_accuracy").GetDouble() <= d.GetProperty("clean_accuracy").GetDouble());
        using var onDisk = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")));
        Assert.Equal(onDisk.RootElement.GetProperty("robust_accuracy").GetDouble(), d.GetProperty("robust_accuracy").GetDouble());
        Assert.Contains("robust accuracy", r.Stderr);
    }

    [Fact]
    public void Eval_prints_the_report_numbers_files_and_record()
    {
        var outDir = _temp.Sub("eval");
        var db = _temp.Sub("results.db");
        var r = Cli.Run("eval", "--model", Make.TinyCnn, "--n", "8", "--attacks", "fgsm", "--eps", "0.05", "--no-sanity", "--images", "2", "--threads", "1",
            "--results-db", db, "--out", outDir, "--json");
        var d = Document(r, "norm", "epsilon", "samples", "clean_accuracy", "robust_accuracy", "per_attack", "eps_sweep", "per_class", "warnings", "files", "recorded");
        Assert.True(d.GetProperty("robust_accuracy").GetDouble() <= d.GetProperty("clean_accuracy").GetDouble());
        Assert.True(File.Exists(d.GetProperty("files").GetProperty("html").GetString()));
        Assert.True(d.GetProperty("recorded").GetProperty("id").GetInt64() > 0);
        Assert.Equal("fgsm", d.GetProperty("per_attack")[0].GetProperty("name").GetString());
        Assert.Contains("robust accuracy", r.Stderr);
    }

    [Fact]
    public void Merge_prints_the_merged_report()
    {
        foreach (var s in new[] { "0/2", "1/2" })
        {
            var shard = Cli.Run("eval", "--model", Make.TinyCnn, "--n", "8", "--attacks", "fgsm", "--eps", "0.05", "--no-sanity", "--images", "0", "--threads", "1",
                "--shard", s, "--no-record", "--out", _temp.Sub($"shard{s[0]}"), "--json");
            Assert.Equal(JsonValueKind.Null, Document(shard, "shard", "recorded").GetProperty("recorded").ValueKind);
        }
        var d = Document(Cli.Run("merge", _temp.Sub("shard0"), _temp.Sub("shard1"), "--no-record", "--out", _temp.Sub("merged"), "--json"),
            "shards", "samples", "clean_accuracy", "robust_accuracy", "files", "recorded");
        Assert.Equal(2, d.GetProperty("shards").GetInt32());
        Assert.Equal(8, d.GetProperty("samples").GetInt32());
    }

    [Fact]
    public void Certify()
    {
        var d = Document(Cli.Run("certify", "--model", Make.TinyCnn, "--method", "ibp", "--eps", "0.01", "--n", "4", "--check-attacks", "none", "--threads", "1",
            "--no-record", "--out", _temp.Sub("cert"), "--json"),
            "method", "samples", "clean_accuracy", "verified_accuracy", "certified_accuracy_by_radius", "per_class", "warnings", "files", "recorded");
        Assert.Equal("ibp", d.GetProperty("method").GetString());
        Assert.True(d.GetProperty("verified_accuracy").GetDouble() <= d.GetProperty("clean_accuracy").GetDouble());
        Assert.Equal(0, d.GetProperty("recorded").GetArrayLength());
    }

    [Fact]
    public void Train()
    {
        var data = _temp.Sub("fashion");
        Make.FashionSubset(data, "train", 0, 48);
        Make.FashionSubset(data, "t10k", 0, 16);
        var r = Cli.Run("train", "--data", data, "--epochs", "1", "--val-size", "16", "--batch-size", "16", "--threads", "1", "--out", _temp.Sub("train"), "--json");
        var d = Document(r, "output", "best_model", "last_model", "defense", "seed", "epochs_run", "best_epoch", "history", "events", "test_accuracy", "time_to_robust");
        Assert.Equal(1, d.GetProperty("epochs_run").GetInt32());
        Assert.Equal(1, d.GetProperty("history").GetArrayLength());
        Assert.True(File.Exists(d.GetProperty("last_model").GetString()));
        Assert.InRange(d.GetProperty("test_accuracy").GetDouble(), 0, 1);
    }

    [Fact]
    public void Demo()
    {
        // The demo's two model names, untrained: nothing is classified right, so the attacks have nothing to do.
        var models = _temp.Dir("models");
        foreach (var name in new[] { "tiny-cnn-standard", "tiny-cnn-pgd" }) File.Copy(Make.TinyCnn, Path.Combine(models, name + ".safetensors"));
        var d = Document(Cli.Run("demo", "--n", "4", "--models", models, "--threads", "1", "--out", _temp.Sub("demo"), "--json"),
            "epsilon", "sweep", "preset", "samples", "seed", "output", "models");
        var rows = d.GetProperty("models").EnumerateArray().ToArray();
        Assert.Equal(["tiny-cnn-standard", "tiny-cnn-pgd"], rows.Select(m => m.GetProperty("name").GetString()));
        foreach (var m in rows) Assert.True(File.Exists(m.GetProperty("files").GetProperty("html").GetString()));
    }

    [Fact]
    public void Playground_render()
    {
        var png = _temp.Sub("view.png");
        var d = Document(Cli.Run("playground", "--render", "--dataset", "circle", "--epochs", "2", "--hidden", "4", "--out", png, "--width", "800", "--json"),
            "out", "epochs", "seed", "setup", "networks");
        Assert.True(File.Exists(png));
        Assert.True(d.GetProperty("networks").GetArrayLength() >= 1);
    }

    [Fact]
    public void Bad_input_is_the_error_document_and_one_line_on_stderr()
    {
        var outDir = _temp.Sub("bad");
        var missing = _temp.Sub("missing.safetensors");
        var r = Cli.Run("eval", "--model", missing, "--eps", "0.1", "--out", outDir, "--json");
        Expect.BadInput(r, "missing.safetensors");
        using var doc = JsonDocument.Parse(r.Stdout);
        var error = doc.RootElement.GetProperty("error");
        Assert.Equal("bad-input", error.GetProperty("kind").GetString());
        Assert.Equal(2, error.GetProperty("exit_code").GetInt32());
        Assert.Contains("missing.safetensors", error.GetProperty("message").GetString());
        Expect.NoPartialOutput(outDir);
    }

    [Fact]
    public void A_parse_error_is_the_error_document_too()
    {
        var r = Cli.Run("attacks", "--json", "--no-such-option");
        Expect.BadInput(r, "--no-such-option");
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal("bad-input", doc.RootElement.GetProperty("error").GetProperty("kind").GetString());
    }
}
