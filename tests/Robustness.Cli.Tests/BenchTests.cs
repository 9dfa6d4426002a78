using System.Text.Json.Nodes;

namespace Robustness.Cli.Tests;

/// <summary>`robust bench --quick --json`: every workload runs through the real code paths, the JSON lines carry the
/// fields that join them with tests/bench/pytorch_reference.py, and the run leaves no tensor alive. No timing asserts.</summary>
[Collection("cli")]
public sealed class BenchTests
{
    [Fact]
    public void QuickBenchEmitsJoinableJsonLinesAndLeavesNoTensorsAlive()
    {
        var r = Cli.Run("bench", "--quick", "--json", "--threads", "2");
        Assert.True(r.ExitCode == 0, r.ToString());

        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith('{')).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.NotEmpty(lines);
        foreach (var line in lines)
        {
            foreach (var field in new[] { "workload", "model", "batch", "threads" })
                Assert.True(line[field] is not null, $"line without '{field}': {line.ToJsonString()}");
            Assert.Equal(2, line["threads"]!.GetValue<int>());
        }

        var figures = lines.Where(l => l["workload"]!.GetValue<string>() != "memory").ToList();
        foreach (var line in figures)
        {
            var figure = line.Select(kv => kv.Key).FirstOrDefault(k => k.EndsWith("_per_s", StringComparison.Ordinal) || k.EndsWith("_s", StringComparison.Ordinal));
            Assert.True(figure is not null, $"line without a _per_s or _s figure: {line.ToJsonString()}");
            var value = line[figure!]!.GetValue<double>();
            Assert.True(double.IsFinite(value) && value > 0, $"{figure} = {value}");
        }

        string[] expected = ["matmul-peak", "attack-pgd-linf", "train-standard", "train-fgsm-rs", "train-pgd7", "eval-fast", "certify-smoothing", "certify-ibp", "train-ibp"];
        foreach (var w in expected)
            Assert.Contains(figures, l => l["workload"]!.GetValue<string>() == w);
        var attacks = figures.Where(l => l["workload"]!.GetValue<string>() == "attack-pgd-linf")
            .Select(l => (l["model"]!.GetValue<string>(), l["batch"]!.GetValue<int>())).ToHashSet();
        Assert.True(attacks.SetEquals([("tiny-cnn", 256), ("tiny-cnn", 32), ("fmnist-cnn", 256), ("fmnist-cnn", 32)]), string.Join(", ", attacks));
        var peakLine = figures.Single(l => l["workload"]!.GetValue<string>() == "attack-pgd-linf" && l["model"]!.GetValue<string>() == "fmnist-cnn" && l["batch"]!.GetValue<int>() == 256);
        Assert.True(peakLine["peak_fraction"]!.GetValue<double>() > 0);

        var memory = Assert.Single(lines, l => l["workload"]!.GetValue<string>() == "memory");
        Assert.Equal(0, memory["live_tensor_delta"]!.GetValue<long>());
        Assert.Equal(0, memory["live_tensor_drift_in_workloads"]!.GetValue<long>());
        Assert.True(memory["peak_rss_bytes"]!.GetValue<long>() > 0);
    }
}

/// <summary>`robust bench --only presets --quick`: the three presets on the shipped PGD-trained model in one run.</summary>
[Collection("cli")]
public sealed class PresetBenchTests
{
    [Fact]
    public void PresetsRunOnTheSameImagesAndTheLargerEnsemblesNeverLeaveMoreRobust()
    {
        var r = Cli.Run("bench", "--only", "presets", "--quick", "--json", "--threads", "2");
        Assert.True(r.ExitCode == 0, r.ToString());
        var lines = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith('{')).Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(l => l["workload"]!.GetValue<string>().StartsWith("eval-", StringComparison.Ordinal))
            .ToDictionary(l => l["workload"]!.GetValue<string>());
        Assert.Equal(["eval-autoattack", "eval-fast", "eval-standard"], lines.Keys.Order());
        double Robust(string w) => lines[w]["robust_accuracy"]!.GetValue<double>();
        // Same seeds: standard and autoattack start with fast's two attacks, so they can only break more.
        Assert.True(Robust("eval-standard") <= Robust("eval-fast") && Robust("eval-autoattack") <= Robust("eval-fast"),
            $"fast {Robust("eval-fast")}, standard {Robust("eval-standard")}, autoattack {Robust("eval-autoattack")}");
        Assert.All(lines.Values, l => Assert.Equal(lines["eval-fast"]["clean_accuracy"]!.GetValue<double>(), l["clean_accuracy"]!.GetValue<double>()));
        Assert.Equal(1.0, lines["eval-autoattack"]["time_vs_autoattack"]!.GetValue<double>(), 6);
    }
}
