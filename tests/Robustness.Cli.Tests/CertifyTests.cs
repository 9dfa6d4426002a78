using System.Text.Json;

namespace Robustness.Cli.Tests;

/// <summary>`robust certify`: bad input exits 2 naming the option; complete runs write the certificate files.</summary>
[Collection("cli")]
public sealed class CertifyTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    private static string Shipped(string name) => Path.Combine(Repo.Root, "data", "models", name + ".safetensors");

    private void Bad(string[] options, params string[] fragments)
    {
        var outDir = _temp.Sub("out-" + Guid.NewGuid().ToString("N"));
        string[] args = ["certify", "--model", Make.TinyCnn, "--n", "4", "--threads", "1", "--out", outDir, .. options];
        Expect.BadInput(Cli.Run(args), fragments);
        Expect.NoPartialOutput(outDir);
        Assert.False(File.Exists(Path.Combine(outDir, "certificate.json")));
    }

    [Theory]
    [InlineData("0", "--sigma", "0")]
    [InlineData("-0.25", "--sigma", "-0.25")]
    [InlineData("NaN", "--sigma", "NaN")]
    public void SigmaMustBePositive(string sigma, params string[] fragments) =>
        Bad(["--method", "smoothing", "--sigma", sigma], fragments);

    [Fact]
    public void N0MustNotExceedN() =>
        Bad(["--method", "smoothing", "--sigma", "0.25", "--n0", "2000", "--noise-samples", "1000"], "--n0", "1000");

    [Theory]
    [InlineData("0")]
    [InlineData("1")]
    [InlineData("1.5")]
    [InlineData("-0.01")]
    public void AlphaMustBeInsideZeroOne(string alpha) =>
        Bad(["--method", "smoothing", "--sigma", "0.25", "--alpha", alpha], "--alpha", alpha);

    [Fact]
    public void SmoothingRefusesLinf() => Bad(["--method", "smoothing", "--sigma", "0.25", "--norm", "linf"], "--norm", "linf", "L2");

    [Fact]
    public void IbpRefusesL2() => Bad(["--method", "ibp", "--eps", "0.1", "--norm", "l2"], "--norm", "l2");

    [Fact]
    public void IbpNeedsEpsilonInRange()
    {
        Bad(["--method", "ibp"], "--eps");
        Bad(["--method", "ibp", "--eps", "-0.1"], "--eps", "-0.1");
        Bad(["--method", "ibp", "--eps", "0.1", "--eps-sweep", "0.05,2"], "--eps-sweep", "2");
    }

    [Fact]
    public void UnknownMethodListsTheValidOnes() => Bad(["--method", "crown-magic"], "--method", "crown-magic", "ibp", "crown-ibp", "smoothing");

    [Fact]
    public void MethodIsRequired() => Bad([], "--method");

    [Fact]
    public void OptionsOfTheOtherMethodAreRefused()
    {
        Bad(["--method", "ibp", "--eps", "0.1", "--sigma", "0.25"], "--sigma");
        Bad(["--method", "smoothing", "--sigma", "0.25", "--eps", "0.1"], "--eps");
    }

    [Fact]
    public void EvalCertifyNeedsLinf()
    {
        var outDir = _temp.Sub("eval-l2");
        Expect.BadInput(Cli.Run("eval", "--model", Make.TinyCnn, "--n", "4", "--norm", "l2", "--eps", "0.5", "--attacks", "fgsm", "--certify",
            "--threads", "1", "--out", outDir), "--certify", "l2");
        Expect.NoPartialOutput(outDir);
    }

    [Fact]
    public void IbpWritesTheCertificate()
    {
        var outDir = _temp.Sub("ibp");
        var r = Cli.Run("certify", "--model", Shipped("tiny-cnn-standard"), "--method", "ibp", "--eps", "0.002", "--eps-sweep", "0",
            "--n", "48", "--threads", "1", "--seed", "9", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "certificate.json")));
        var root = doc.RootElement;
        Assert.Equal("ibp", root.GetProperty("method").GetString());
        double clean = root.GetProperty("clean_accuracy").GetDouble(), verified = root.GetProperty("verified_accuracy").GetDouble();
        Assert.InRange(verified, 0, clean);
        Assert.Equal(0, root.GetProperty("abstention_rate").GetDouble());
        Assert.Equal(2, root.GetProperty("certified_accuracy_by_radius").GetArrayLength());
        Assert.Equal(10, root.GetProperty("per_class").GetArrayLength());
        Assert.True(root.GetProperty("empirical_check").GetProperty("passed").GetBoolean());
        var provenance = root.GetProperty("provenance");
        Assert.Equal(9, provenance.GetProperty("seed").GetInt64());
        Assert.Equal(64, provenance.GetProperty("model_sha256").GetString()!.Length);
        Assert.Equal("0.002", provenance.GetProperty("parameters").GetProperty("eps").GetString());
        foreach (var f in new[] { "certificate.md", "certificate.html", Path.Combine("plots", "certified-accuracy.png") })
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        Expect.NoTempFiles(outDir);
    }

    [Fact]
    public void CrownIbpVerifiesAtLeastWhatIbpVerifies()
    {
        // An MLP (no max-pooling, so CROWN applies): the better-of-both bound verifies every point IBP does.
        var model = _temp.Sub("mlp.safetensors");
        TorchSharp.torch.manual_seed(2);
        using (var mlp = Robustness.Models.ModelZoo.CreateClassifier("mlp", TorchSharp.torch.CPU))
            Robustness.Models.ModelFile.Save(mlp, model);
        double Verified(string method)
        {
            var outDir = _temp.Sub("cert-" + method);
            var r = Cli.Run("certify", "--model", model, "--method", method, "--eps", "0.002", "--n", "32", "--check-attacks", "none", "--threads", "1", "--out", outDir);
            Assert.True(r.ExitCode == 0, r.ToString());
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "certificate.json")));
            Assert.Equal(method, doc.RootElement.GetProperty("method").GetString());
            return doc.RootElement.GetProperty("verified_accuracy").GetDouble();
        }
        Assert.True(Verified("crown-ibp") >= Verified("ibp"));
    }

    [Fact]
    public void SmoothingWritesTheCertificateAndOverlaysAnotherSigma()
    {
        var first = _temp.Sub("sigma-012");
        var r1 = Cli.Run("certify", "--model", Shipped("tiny-cnn-standard"), "--method", "smoothing", "--sigma", "0.12", "--noise-samples", "400",
            "--n", "4", "--check-points", "2", "--check-samples", "200", "--threads", "1", "--out", first);
        Assert.True(r1.ExitCode == 0, r1.ToString());
        var second = _temp.Sub("sigma-025");
        var r2 = Cli.Run("certify", "--model", Shipped("tiny-cnn-standard"), "--method", "smoothing", "--sigma", "0.25", "--noise-samples", "400",
            "--n", "4", "--check-points", "0", "--batch-size", "128", "--overlay", first, "--threads", "1", "--out", second);
        Assert.True(r2.ExitCode == 0, r2.ToString());
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(second, "certificate.json")));
        var root = doc.RootElement;
        Assert.Equal("smoothing", root.GetProperty("method").GetString());
        var certified = root.GetProperty("certified_accuracy").GetDouble();
        Assert.InRange(certified, 0, 1);
        Assert.InRange(root.GetProperty("abstention_rate").GetDouble(), 0, 1 - certified + 1e-12);
        Assert.Equal(certified, root.GetProperty("certified_accuracy_by_radius")[0].GetProperty("accuracy").GetDouble(), 12);
        Assert.Equal("400", root.GetProperty("provenance").GetProperty("parameters").GetProperty("n").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("empirical_check").ValueKind);
        Assert.Contains("reduced-samples", File.ReadAllText(Path.Combine(second, "certificate.md")));
        Assert.True(File.Exists(Path.Combine(second, "plots", "certified-accuracy.png")));
    }
}
