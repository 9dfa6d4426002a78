using Robustness.Core.Formats;
using System.Text.Json;
using Robustness.Data;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Cli.Tests;

/// <summary>Complete attack and eval runs on a small untrained model: the pipeline and its files, not the accuracy.</summary>
[Collection("cli")]
public sealed class HappyPathTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    [Fact]
    public void AttackWritesResultAdversarialsAndImages()
    {
        const double eps = 0.1;
        var outDir = _temp.Sub("attack");
        var r = Cli.Run("attack", "--model", Make.TinyCnn, "--data", "fashion-mnist", "--n", "32", "--attack", "pgd", "--steps", "2",
            "--eps", "0.1", "--threads", "1", "--seed", "5", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal("", r.Stderr);

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")));
        var root = json.RootElement;
        Assert.Equal(32, root.GetProperty("samples").GetInt32());
        var clean = root.GetProperty("clean_accuracy").GetDouble();
        var robust = root.GetProperty("robust_accuracy").GetDouble();
        Assert.InRange(clean, 0, 1);
        Assert.InRange(robust, 0, clean);
        Assert.InRange(root.GetProperty("max_perturbation").GetDouble(), 0, eps * (1 + 1e-6));
        Assert.Equal(5, root.GetProperty("seed").GetInt64());

        // The saved adversarials really are within ε of the first 32 test images and inside [0,1].
        using var state = SafeTensors.Read(Path.Combine(outDir, "adversarial.safetensors"));
        using var data = DatasetCatalog.Load("fashion-mnist");
        using var first = data.Take(32);
        var adv = state["adversarial"];
        Assert.Equal(new long[] { 32, 1, 28, 28 }, adv.shape);
        Assert.True((adv - first.Images).abs().max().item<float>() <= eps * (1 + 1e-6));
        Assert.True(adv.min().item<float>() >= 0 && adv.max().item<float>() <= 1);
        Assert.Equal(first.Labels.data<long>().ToArray(), state["labels"].data<long>().ToArray());

        var images = Directory.GetFiles(Path.Combine(outDir, "images"), "*.png");
        Assert.NotEmpty(images);
        Assert.All(images, f => Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(f)[..4]));
        Expect.NoTempFiles(outDir);
    }

    [Fact]
    public void EvalWithFgsmAndPgdListAndStepsWritesTheReports()
    {
        // --steps applies to the attacks that take steps; fgsm in the same list keeps its single step.
        var outDir = _temp.Sub("eval");
        var r = Cli.Run("eval", "--model", Make.TinyCnn, "--data", "fashion-mnist", "--n", "32", "--attacks", "fgsm,pgd", "--steps", "2",
            "--eps-sweep", "0,0.1", "--threads", "1", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.ToString());

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "report.json")));
        var root = json.RootElement;
        Assert.Equal(32, root.GetProperty("total").GetInt32());
        var clean = root.GetProperty("clean_accuracy").GetDouble();
        Assert.InRange(root.GetProperty("robust_accuracy").GetDouble(), 0, clean);
        var sweep = root.GetProperty("eps_sweep").EnumerateArray().ToArray();
        Assert.Equal(2, sweep.Length);
        var stages = root.GetProperty("per_attack").EnumerateArray().Select(s => s.GetProperty("name").GetString()).ToArray();
        Assert.Contains("fgsm", stages);
        Assert.Contains(stages, s => s!.StartsWith("pgd", StringComparison.Ordinal));
        Assert.True(new FileInfo(Path.Combine(outDir, "report.md")).Length > 0);
        Assert.Contains("<html", File.ReadAllText(Path.Combine(outDir, "report.html")), StringComparison.OrdinalIgnoreCase);
        Expect.NoTempFiles(outDir);
    }

    [Fact]
    public void SingleFgsmWithManyStepsIsStillAnError()
    {
        // Asked of fgsm alone, --steps 2 is a contradiction the user should hear about.
        var outDir = _temp.Sub("fgsm");
        Expect.BadInput(Cli.Run("attack", "--model", Make.TinyCnn, "--n", "4", "--attack", "fgsm", "--steps", "2", "--eps", "0.1", "--threads", "1", "--out", outDir),
            "--steps", "fgsm");
        Expect.NoPartialOutput(outDir);
    }

    [Fact]
    public void AttackListWithStepsRunsEveryAttack()
    {
        var outDir = _temp.Sub("list");
        var r = Cli.Run("attack", "--model", Make.TinyCnn, "--n", "8", "--attack", "fgsm,pgd", "--steps", "2", "--eps", "0.05", "--images", "0", "--threads", "1", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")));
        var parameters = json.RootElement.GetProperty("parameters").EnumerateArray().ToArray();
        Assert.Equal(2, parameters.Length);
        Assert.Contains("\"steps\"", parameters[1].GetRawText().ToLowerInvariant());
        Assert.Contains("2", parameters[1].GetProperty("parameters").GetRawText());
    }

    [Fact]
    public void ReportsEscapeHostileClassNames()
    {
        var data = _temp.Dir("hostile-classes");
        string[] classes = ["<script>alert(1)", "a|b", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"];
        for (int c = 0; c < classes.Length; c++)
            for (int i = 0; i < 3; i++)
                _temp.File(Path.Combine("hostile-classes", classes[c], $"{i}.png"), Make.Png(28, 28, (byte)(c * 20 + i)));
        var outDir = _temp.Sub("report");
        var r = Cli.Run("eval", "--model", Make.TinyCnn, "--data", data, "--attacks", "fgsm", "--eps", "0.1", "--threads", "1", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.ToString());

        var html = File.ReadAllText(Path.Combine(outDir, "report.html"));
        Assert.DoesNotContain("<script>alert", html, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("&lt;script&gt;alert(1)", html);
        var md = File.ReadAllText(Path.Combine(outDir, "report.md"));
        Assert.Contains(@"a\|b", md);
        Assert.DoesNotContain("a|b", md);
    }
}
