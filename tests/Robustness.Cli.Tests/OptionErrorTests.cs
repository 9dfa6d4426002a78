using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Models;
using static TorchSharp.torch;

namespace Robustness.Cli.Tests;

/// <summary>Out-of-range and unknown option values: exit 2, one line naming the option, nothing written.</summary>
[Collection("cli")]
public sealed class OptionErrorTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    private string Attack(string[] options, params string[] fragments)
    {
        var outDir = _temp.Sub("out-" + Guid.NewGuid().ToString("N"));
        string[] args = ["attack", "--model", Make.TinyCnn, "--threads", "1", "--out", outDir, .. options];
        if (!options.Contains("--n")) args = [.. args, "--n", "8"];
        if (!options.Contains("--attack")) args = [.. args, "--attack", "pgd", "--steps", "1"];
        if (!options.Any(o => o.StartsWith("--eps", StringComparison.Ordinal))) args = [.. args, "--eps", "0.1"];
        var line = Expect.BadInput(Cli.Run(args), fragments);
        Expect.NoPartialOutput(outDir);
        return line;
    }

    private string Eval(string[] options, params string[] fragments)
    {
        var outDir = _temp.Sub("out-" + Guid.NewGuid().ToString("N"));
        string[] args = ["eval", "--model", Make.TinyCnn, "--n", "8", "--threads", "1", "--out", outDir, .. options];
        var line = Expect.BadInput(Cli.Run(args), fragments);
        Expect.NoPartialOutput(outDir);
        return line;
    }

    [Theory]
    [InlineData("--eps=-0.1", "-0.1")]
    [InlineData("--eps=NaN", "NaN")]
    [InlineData("--eps=1.5", "1.5")]
    [InlineData("--eps=Infinity", "--eps")]
    [InlineData("--eps=abc", "abc")]
    public void EpsilonOutOfRange(string option, string shown)
        => Attack([option], "--eps", shown);

    [Theory]
    [InlineData("0")]
    [InlineData("-3")]
    public void StepsMustBePositive(string steps) => Attack(["--attack", "pgd", "--steps", steps], "--steps", steps);

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    public void BatchSizeMustBePositive(string size)
    {
        Attack(["--batch-size", size], "--batch-size", size);
        Eval(["--attacks", "fgsm", "--eps", "0.1", "--batch-size", size], "--batch-size", size);
    }

    [Fact]
    public void TrainBatchSizeMustBePositive()
    {
        var data = _temp.Sub("data");
        Make.FashionSubset(data, "train", 0, 64);
        var outDir = _temp.Sub("train-out");
        Expect.BadInput(Cli.Run("train", "--data", data, "--epochs", "1", "--batch-size", "0", "--val-size", "8", "--threads", "1", "--out", outDir), "--batch-size");
        Expect.NoPartialOutput(outDir);
    }

    [Fact]
    public void NLargerThanTheDatasetSaysTheDatasetSize()
    {
        var line = Attack(["--n", "20000"], "--n", "20000");
        Assert.Matches("10,?000", line);
    }

    [Fact]
    public void UnknownAttackListsTheValidOnes()
    {
        Attack(["--attack", "deepfoo"], "--attack", "deepfoo", "pgd", "fgsm", "apgd-ce", "square");
        Eval(["--attacks", "fgsm,zoo", "--eps", "0.1"], "zoo", "pgd", "fgsm");
    }

    [Fact]
    public void UnknownNormListsTheValidOnes() => Attack(["--norm", "l3"], "--norm", "l3", "linf", "l2", "l1");

    [Fact]
    public void UnknownDefenseListsTheValidOnes()
    {
        var outDir = _temp.Sub("train-out");
        Expect.BadInput(Cli.Run("train", "--defense", "magic", "--epochs", "1", "--out", outDir), "--defense", "magic", "pgd", "trades", "fgsm-rs");
        Expect.NoPartialOutput(outDir);
    }

    [Fact]
    public void UnknownArchitectureListsTheValidOnes()
    {
        var data = _temp.Sub("data");
        Make.FashionSubset(data, "train", 0, 32);
        var outDir = _temp.Sub("train-out");
        Expect.BadInput(Cli.Run("train", "--arch", "resnet9000", "--data", data, "--epochs", "1", "--val-size", "8", "--threads", "1", "--out", outDir),
            "resnet9000", "mlp", "tiny-cnn", "lenet5");
        Expect.NoPartialOutput(outDir);
    }

    [Fact]
    public void UnknownSampleModeAndBadSweep()
    {
        Attack(["--sample", "sideways"], "--sample", "sideways", "first", "random");
        Eval(["--attacks", "fgsm", "--eps-sweep", "0,NaN"], "--eps");
        Eval(["--attacks", "fgsm", "--eps-sweep", "0,x"], "--eps-sweep", "x");
        // An empty entry is not dropped silently.
        Eval(["--attacks", "fgsm", "--eps-sweep", "0.1,,0.2"], "--eps-sweep", "0.1,,0.2", "empty entry");
        Eval(["--attacks", "fgsm,,pgd", "--eps", "0.1"], "--attacks", "empty entry");
    }

    [Fact]
    public void OutputDirectoryUnderProcIsNotWritable()
    {
        var line = Expect.BadInput(Cli.Run("attack", "--model", Make.TinyCnn, "--n", "4", "--attack", "fgsm", "--eps", "0.1", "--threads", "1", "--out", "/proc/forbidden"),
            "--out", "/proc/forbidden");
        Assert.False(Directory.Exists("/proc/forbidden"));
    }

    [Fact]
    public void OutputDirectoryUnderARegularFileIsNotWritable()
    {
        var file = _temp.File("plain.txt", "x"u8.ToArray());
        var outDir = Path.Combine(file, "run");
        Expect.BadInput(Cli.Run("eval", "--model", Make.TinyCnn, "--n", "4", "--attacks", "fgsm", "--eps", "0.1", "--threads", "1", "--out", outDir),
            "--out", outDir);
        Assert.Equal("x", File.ReadAllText(file));
    }

    [Fact]
    public void ParseErrorsAreOneLineExitTwo()
    {
        Expect.BadInput(Cli.Run("attack", "--model", Make.TinyCnn, "--n", "many", "--attack", "fgsm", "--eps", "0.1", "--out", _temp.Sub("o")), "many");
        Expect.BadInput(Cli.Run("attack", "--eps", "0.1"), "--model");
        Expect.BadInput(Cli.Run("frobnicate"), "frobnicate");
    }

    /// <summary>
    /// No dataset reader can produce NaN or Inf (IDX, CIFAR and PNG hold bytes), so the CLI's check is reached only
    /// from code: it is tested here on an in-memory dataset.
    /// </summary>
    [Fact]
    public void NonFiniteInputsAreRefusedByTheRunCheck()
    {
        using var model = ModelZoo.CreateClassifier("tiny-cnn", CPU);
        foreach (var bad in new[] { float.NaN, float.PositiveInfinity })
        {
            var images = rand(4, 1, 28, 28);
            images[2, 0, 5, 5] = tensor(bad);
            using var dataset = new ImageDataset("poisoned", images, zeros(4, dtype: ScalarType.Int64), Enumerable.Range(0, 10).Select(i => i.ToString()).ToArray());
            var e = Assert.ThrowsAny<InputException>(() => LoadedRun.CheckCompatible(dataset, model.Spec, "poisoned"));
            Assert.Contains("--data", e.Message);
            Assert.Contains("NaN or Inf", e.Message);
        }
    }

    [Fact]
    public void ShapeAndClassMismatchesAreRefusedByTheRunCheck()
    {
        using var model = ModelZoo.CreateClassifier("tiny-cnn", CPU);
        using var rgb = new ImageDataset("rgb", rand(2, 3, 28, 28), zeros(2, dtype: ScalarType.Int64), ["a", "b"]);
        Assert.Contains("[3,28,28]", Assert.ThrowsAny<InputException>(() => LoadedRun.CheckCompatible(rgb, model.Spec, "rgb")).Message);
        using var many = new ImageDataset("many", rand(2, 1, 28, 28), zeros(2, dtype: ScalarType.Int64), Enumerable.Range(0, 12).Select(i => $"c{i}").ToArray());
        Assert.Contains("12 classes", Assert.ThrowsAny<InputException>(() => LoadedRun.CheckCompatible(many, model.Spec, "many")).Message);
    }

    [Fact]
    public void RgbImageFolderAgainstAGrayModelIsAShapeError()
    {
        var dir = _temp.Dir("rgb");
        Directory.CreateDirectory(_temp.Sub("rgb/red"));
        using (var img = new SixLabors.ImageSharp.Image<SixLabors.ImageSharp.PixelFormats.Rgb24>(28, 28, new SixLabors.ImageSharp.PixelFormats.Rgb24(200, 10, 10)))
            SixLabors.ImageSharp.ImageExtensions.SaveAsPng(img, _temp.Sub("rgb/red/a.png"));
        Attack(["--data", dir, "--n", "1"], "--data", "[3,28,28]", "[1,28,28]");
    }
}

[Collection("cli")]
public sealed class VerboseTests
{
    [Fact]
    public void VerboseAddsTheStackTraceAfterTheSameFirstLine()
    {
        using var temp = new TempDir();
        var missing = temp.Sub("missing.safetensors");
        var quiet = Cli.Run("info", missing);
        var line = Expect.BadInput(quiet, missing, "not found");
        var verbose = Cli.Run("info", missing, "--verbose");
        Assert.Equal(2, verbose.ExitCode);
        Assert.Equal(line, verbose.StderrLines[0]);
        Assert.Contains("   at ", verbose.Stderr);
    }

    [Fact]
    public void ParseErrorsUseFriendlyTypeNames()
    {
        var line = Expect.BadInput(Cli.Run("attack", "--model", "m", "--eps", "0.1", "--attack", "fgsm", "--out", "o", "--n", "many"), "many", "--n");
        Assert.DoesNotContain("System.", line);
    }
}
