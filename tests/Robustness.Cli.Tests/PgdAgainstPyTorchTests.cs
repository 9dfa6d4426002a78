using System.Diagnostics;
using System.Text.Json;

namespace Robustness.Cli.Tests;

/// <summary>
/// Our PGD-20 on a model brought as ONNX and as TorchScript, against plain PyTorch PGD (tests/fixtures/byom/pytorch_pgd.py)
/// on the same network and the same samples. Needs Debian's python3-torch (CI installs it); skipped where it is absent.
/// </summary>
[Collection("cli")]
public sealed class PgdAgainstPyTorchTests : IDisposable
{
    private const string Python = "/usr/bin/python3";
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    public sealed class PythonTorchFactAttribute : FactAttribute
    {
        public PythonTorchFactAttribute()
        {
            if (!File.Exists(Python) || !File.Exists("/usr/lib/python3/dist-packages/torch/__init__.py"))
                Skip = $"needs {Python} with python3-torch";
        }
    }

    [PythonTorchFact]
    public void Robust_accuracy_matches_PyTorch_within_noise()
    {
        var byom = Path.Combine(Repo.Root, "tests", "fixtures", "byom");
        const int n = 300;
        const string eps = "0.05";
        var results = new Dictionary<string, double>();
        foreach (var model in new[] { "cnn-bn.onnx", "cnn-bn-script.pt" })
        {
            var outDir = _temp.Sub(model);
            var r = Cli.Run("attack", "--model", Path.Combine(byom, model), "--data", "fashion-mnist", "--n", n.ToString(), "--sample", "random", "--seed", "5",
                "--attack", "pgd", "--steps", "20", "--eps", eps, "--images", "0", "--out", outDir, "--threads", "2");
            Assert.True(r.ExitCode == 0, r.ToString());
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")));
            results[model] = json.RootElement.GetProperty("robust_accuracy").GetDouble();
            results[model + ".clean"] = json.RootElement.GetProperty("clean_accuracy").GetDouble();
        }

        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(byom, "pytorch_pgd.py"), Path.Combine(byom, "cnn-bn-script.pt"), Path.Combine(_temp.Sub("cnn-bn.onnx"), "result.json"), "--eps", eps, "--steps", "20" })
            start.ArgumentList.Add(a);
        start.Environment["OMP_NUM_THREADS"] = "1";
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stderr.Result);
        using var theirs = JsonDocument.Parse(stdout.Result.Trim().Split('\n')[^1]);
        double torchClean = theirs.RootElement.GetProperty("clean_accuracy").GetDouble();
        double torchRobust = theirs.RootElement.GetProperty("robust_accuracy").GetDouble();

        // Clean predictions are deterministic: identical. PGD differs only by its random start: within 3 points on 300
        // samples (the binomial standard error at 50 % is 2.9 points, and the samples are shared).
        Assert.Equal(torchClean, results["cnn-bn.onnx.clean"], 6);
        Assert.Equal(torchClean, results["cnn-bn-script.pt.clean"], 6);
        Assert.True(Math.Abs(results["cnn-bn.onnx"] - torchRobust) <= 0.03, $"ONNX PGD-20 {results["cnn-bn.onnx"]:P2} vs PyTorch {torchRobust:P2}");
        Assert.True(Math.Abs(results["cnn-bn-script.pt"] - torchRobust) <= 0.03, $"TorchScript PGD-20 {results["cnn-bn-script.pt"]:P2} vs PyTorch {torchRobust:P2}");
        Assert.True(torchRobust < torchClean - 0.05, "ε too small to tell attacks apart");
    }
}
