using System.Diagnostics;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Data;
using Robustness.Models;
using static TorchSharp.torch;

namespace Robustness.Cli.Commands.Bench;

/// <summary>
/// `robust bench --only onnx`: the attack throughput of a network executed from its ONNX graph against the same
/// network (same weights, from a PyTorch state dict) built by the zoo, and a ResNet-18-sized ONNX model attacked on
/// CPU. tests/bench/export_onnx.py (Debian's python3-torch) writes both files of each network.
/// </summary>
public sealed class OnnxWorkloads(BenchBudget budget, int threads, ImageDataset data)
{
    public const string Python = "/usr/bin/python3";
    public static readonly string[] Archs = ["tiny-cnn", "fmnist-cnn", "preact-resnet18"];

    public IEnumerable<BenchMeasurement> Run()
    {
        var script = Path.Combine(RepoRoot(), "tests", "bench", "export_onnx.py");
        var dir = Path.Combine(Path.GetTempPath(), $"robustness-bench-onnx-{Guid.NewGuid():N}");
        try
        {
            Export(script, dir);
            foreach (var arch in Archs)
                foreach (var batch in arch == "preact-resnet18" ? new[] { 32 } : [256, 32])
                {
                    var zoo = Measure(ModelFile.Load(Path.Combine(dir, arch + ".pt"), CPU, arch), arch, batch);
                    var onnx = Measure(ModelLoader.Load(Path.Combine(dir, arch + ".onnx"), CPU).Classifier, arch + " (onnx)", batch);
                    yield return zoo;
                    yield return onnx with { Extra = new Dictionary<string, double> { ["onnx_time_vs_zoo"] = zoo.Value / onnx.Value } };
                }
            yield return EndToEnd(Path.Combine(dir, "preact-resnet18.onnx"));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>PGD-10 throughput (image·steps/s) through IAttack.Run, as <see cref="BenchWorkloads.Attack"/>.</summary>
    private BenchMeasurement Measure(TorchClassifier model, string name, int batch)
    {
        using (model)
        {
            TensorLedger.Constructed(model.Module);
            var (x, y) = Inputs(model, batch);
            using (x)
            using (y)
            {
                var attack = BenchWorkloads.Pgd(model.Spec.Bounds);
                using var generator = new Generator(0);
                var context = new AttackContext(generator);
                var targets = new AttackTargets(y);
                var (t, samples) = BenchWorkloads.Time(() => { using var r = attack.Run(model, x, targets, context); }, budget.Warmup, budget.Repetitions);
                return new BenchMeasurement("attack-pgd-linf", name, batch, "img_steps_per_s", batch * BenchWorkloads.AttackSteps / t) { Threads = threads, Samples = samples };
            }
        }
    }

    /// <summary>Seconds to load the ResNet-18-sized ONNX model and run PGD-10 on 256 images (random 3×32×32 inputs,
    /// labelled with the model's own predictions), batch 64.</summary>
    private BenchMeasurement EndToEnd(string path)
    {
        int n = budget.Repetitions == 1 ? 64 : 256;
        var watch = Stopwatch.StartNew();
        using var loaded = ModelLoader.Load(path, CPU);
        var model = loaded.Classifier;
        TensorLedger.Constructed(model.Module);
        var attack = BenchWorkloads.Pgd(model.Spec.Bounds);
        using var generator = new Generator(0);
        var context = new AttackContext(generator);
        for (int start = 0; start < n; start += 64)
        {
            using var scope = NewDisposeScope();
            var (x, y) = Inputs(model, 64, start);
            using var r = attack.Run(model, x, new AttackTargets(y), context);
        }
        var seconds = watch.Elapsed.TotalSeconds;
        return new BenchMeasurement("attack-end-to-end", "preact-resnet18 (onnx)", 64, "seconds_s", seconds) { Threads = threads, Samples = [seconds], Note = $"load + PGD-10 on {n} images" };
    }

    /// <summary>Fashion-MNIST images for 1×28×28 models; random images labelled by the model for others.</summary>
    private (Tensor X, Tensor Y) Inputs(TorchClassifier model, int batch, int offset = 0)
    {
        if (model.Spec.InputShape.SequenceEqual(data.SampleShape))
            return (data.Images.narrow(0, offset, batch).contiguous(), data.Labels.narrow(0, offset, batch).contiguous());
        var x = rand([batch, .. model.Spec.InputShape.Select(d => (long)d)], generator: new Generator((ulong)offset + 1));
        using var _ = no_grad();
        using var logits = model.Logits(x);
        return (x, logits.argmax(1));
    }

    private static void Export(string script, string dir)
    {
        if (!File.Exists(Python) || !File.Exists(script))
            throw new InputException($"--only onnx: needs {Python} with Debian's python3-torch and {script} to export the networks");
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(dir);
        using var p = Process.Start(start)!;
        var stderr = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{script} failed: {stderr.Result.Trim().Split('\n')[^1]}");
    }

    private static string RepoRoot()
    {
        var data = DatasetCatalog.FindRepoData() ?? throw new InputException("--only onnx: run from a checkout of the repository (tests/bench/export_onnx.py)");
        return Path.GetDirectoryName(data)!;
    }
}
