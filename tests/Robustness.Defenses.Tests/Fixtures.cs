using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Defenses.Tests;

/// <summary>The shipped Fashion-MNIST test images as a toy train/held-out set, and small models built here.</summary>
internal static class Fixtures
{
    private static readonly Lazy<ImageDataset> All = new(() =>
    {
        var dir = FindDataDir();
        return Shared(IdxReader.Load(Path.Combine(dir, "t10k-images-idx3-ubyte.gz"), Path.Combine(dir, "t10k-labels-idx1-ubyte.gz"), "fashion-mnist"));
    });

    /// <summary>The first 2,000 shipped test images: the toy training set.</summary>
    public static readonly Lazy<ImageDataset> Train = new(() => Shared(All.Value.Take(2000)));

    /// <summary>Images 5,000–5,499: held out from everything trained here.</summary>
    public static readonly Lazy<ImageDataset> HeldOut = new(() => Shared(All.Value.Subset(Enumerable.Range(5000, 500).Select(i => (long)i).ToArray(), "held-out")));

    /// <summary>Images 6,000–6,299: the per-epoch validation split of the shared trained models.</summary>
    public static readonly Lazy<ImageDataset> Validation = new(() => Shared(All.Value.Subset(Enumerable.Range(6000, 300).Select(i => (long)i).ToArray(), "validation")));

    /// <summary>
    /// A dataset that lives for the whole test run: its tensors leave whatever dispose scope is open on the thread
    /// that happens to create it first (a test with <c>using var scope = NewDisposeScope()</c> would otherwise free them
    /// at its end, and every later test would find empty handles).
    /// </summary>
    public static ImageDataset Shared(ImageDataset data)
    {
        data.Images.DetachFromDisposeScope();
        data.Labels.DetachFromDisposeScope();
        return data;
    }

    public static ImageDataset TrainSubset(int n) => Train.Value.Take(n);

    private static string FindDataDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "data", "fashion-mnist");
            if (File.Exists(Path.Combine(candidate, "t10k-images-idx3-ubyte.gz"))) return candidate;
        }
        throw new FileNotFoundException("data/fashion-mnist not found above the test directory");
    }

    public static ModelSpec Spec => new()
    {
        Arch = "test-cnn",
        InputShape = [1, 28, 28],
        NumClasses = 10,
        Labels = Enumerable.Range(0, 10).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList(),
        Bounds = Bounds.Unit,
    };

    /// <summary>A small strided CNN, initialised from <paramref name="seed"/>.</summary>
    public static TorchClassifier SmallCnn(long seed)
    {
        random.manual_seed(seed);
        var net = nn.Sequential(
            ("conv1", nn.Conv2d(1, 16, 5, stride: 2, padding: 2)),
            ("relu1", nn.ReLU()),
            ("conv2", nn.Conv2d(16, 32, 5, stride: 2, padding: 2)),
            ("relu2", nn.ReLU()),
            ("flatten", nn.Flatten()),
            ("fc", nn.Linear(32 * 7 * 7, 10)));
        return new TorchClassifier(net, Spec);
    }

    /// <summary>An even smaller MLP for tests about the loop's mechanics.</summary>
    public static TorchClassifier TinyMlp(long seed, int hidden = 32)
    {
        random.manual_seed(seed);
        var net = nn.Sequential(("flatten", nn.Flatten()), ("fc1", nn.Linear(784, hidden)), ("relu", nn.ReLU()), ("fc2", nn.Linear(hidden, 10)));
        return new TorchClassifier(net, Spec);
    }

    /// <summary>Accuracy on clean inputs and under PGD-10 (α = ε/4, random start).</summary>
    public static (double Clean, double Robust) Evaluate(IGradientClassifier model, ImageDataset data, double eps)
    {
        var v = new RobustValidator(ThreatModel.Linf(eps), pgdSteps: 10, batchSize: 250, seed: 99);
        var m = v.Validate(model, data, epoch: 0);
        return (m.CleanAccuracy, m.RobustAccuracy!.Value);
    }

    /// <summary>CPU copies of the model's tensors by name.</summary>
    public static Dictionary<string, Tensor> Weights(nn.Module module)
    {
        using var scope = NewDisposeScope();
        return module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu().clone().DetachFromDisposeScope());
    }

    /// <summary>Trains a <see cref="TinyMlp"/>(<paramref name="seed"/>) with <paramref name="options"/> into a fresh
    /// directory, crashing at (<paramref name="epoch"/>, <paramref name="batch"/>), then resumes that directory into
    /// <paramref name="resumed"/> (initialised otherwise: everything must come from the checkpoint). Returns the directory.</summary>
    public static string CrashThenResume(ITrainingObjective objective, TrainingOptions options, ImageDataset data, long seed, int epoch, int batch, TorchClassifier resumed)
    {
        var crashDir = TempDir();
        using (var crashing = TinyMlp(seed))
            Assert.Throws<SimulatedCrash>(() => new Trainer(crashing, objective, options with { OutputDirectory = crashDir }, [new CrashHook(epoch, batch)]) { ModelWriter = Robustness.Models.ModelFileWriter.Instance }.Fit(data));
        new Trainer(resumed, objective, options) { ModelWriter = Robustness.Models.ModelFileWriter.Instance }.Resume(crashDir, data);
        return crashDir;
    }

    public static double MaxDifference(IReadOnlyDictionary<string, Tensor> a, IReadOnlyDictionary<string, Tensor> b)
    {
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        using var scope = NewDisposeScope();
        return a.Keys.Max(k => (a[k].to(ScalarType.Float64) - b[k].to(ScalarType.Float64)).abs().max().ToDouble());
    }

    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "robustness-defenses-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}

/// <summary>A validator returning a constructed sequence of metrics, one per epoch.</summary>
internal sealed class ScriptedValidator(params ValidationMetrics[] perEpoch) : IValidator
{
    public ValidationMetrics Validate(IGradientClassifier model, ImageDataset data, int epoch) => perEpoch[epoch - 1];
}

/// <summary>Records the weights at every epoch end.</summary>
internal sealed class WeightRecorder(nn.Module module) : ITrainingHook
{
    public Dictionary<int, Dictionary<string, Tensor>> ByEpoch { get; } = [];
    public void OnEpochEnd(EpochMetrics metrics, TrainingState state) => ByEpoch[metrics.Epoch] = Fixtures.Weights(module);
}

/// <summary>Simulates a kill: throws at a given batch of a given epoch.</summary>
internal sealed class CrashHook(int epoch, int batch) : ITrainingHook
{
    public void OnBatchEnd(BatchProgress progress, TrainingState state)
    {
        if (progress.Epoch == epoch && progress.Batch == batch) throw new SimulatedCrash();
    }
}

internal sealed class SimulatedCrash : Exception;
