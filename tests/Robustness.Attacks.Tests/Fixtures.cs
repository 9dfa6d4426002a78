using System.IO.Compression;
using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Robustness.Attacks.Tests;

/// <summary>Process-wide settings for this test assembly.</summary>
internal static class TestSetup
{
    /// <summary>
    /// The tests use tiny models, and the test projects of the solution run side by side on two cores: one intra-op
    /// thread avoids OpenMP threads of several test hosts spinning against each other.
    /// </summary>
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void SingleThreaded() => torch.set_num_threads(1);
}

/// <summary>Small models and data shared by the attack tests.</summary>
internal static class Fixtures
{
    public static ModelSpec Spec(int[] shape, int classes, Bounds? bounds = null) =>
        new() { Arch = "test", InputShape = shape, NumClasses = classes, Bounds = bounds ?? Bounds.Unit };

    /// <summary>A random two-layer MLP on 1×8×8 inputs in [0,1] with 10 classes.</summary>
    public static TorchClassifier RandomMlp(long seed, int classes = 10)
    {
        random.manual_seed(seed);
        var net = nn.Sequential(
            ("flatten", nn.Flatten()),
            ("fc1", nn.Linear(64, 32)),
            ("relu", nn.ReLU()),
            ("fc2", nn.Linear(32, classes)));
        return new TorchClassifier(net, Spec([1, 8, 8], classes));
    }

    /// <summary>Random inputs in [0,1] for <see cref="RandomMlp"/>, labelled with the model's own predictions (clean accuracy 100%).</summary>
    public static (Tensor X, Tensor Y) RandomData(IClassifier model, int n, long seed)
    {
        var gen = new Generator((ulong)seed);
        var x = rand([n, 1, 8, 8], generator: gen);
        using var _ = no_grad();
        var y = model.Logits(x).argmax(1);
        return (x, y);
    }

    private static readonly Lazy<(Tensor X, Tensor Y)> FashionTest = new(() =>
    {
        var root = FindRepoRoot();
        var images = ReadIdxImages(Path.Combine(root, "data/fashion-mnist/t10k-images-idx3-ubyte.gz"));
        var labels = ReadIdxLabels(Path.Combine(root, "data/fashion-mnist/t10k-labels-idx1-ubyte.gz"));
        // Shared for the whole run: never owned by the dispose scope of the test that happens to load it first.
        return (images.DetachFromDisposeScope(), labels.DetachFromDisposeScope());
    });

    /// <summary>The shipped Fashion-MNIST test set: images [10000,1,28,28] in [0,1], labels [10000].</summary>
    public static (Tensor X, Tensor Y) Fashion => FashionTest.Value;

    /// <summary>Held-out Fashion-MNIST points (the last 1,000 of the file; training uses the first 8,000).</summary>
    public static (Tensor X, Tensor Y) FashionHeldOut(int n)
    {
        var (x, y) = Fashion;
        return (x.narrow(0, 9000, n), y.narrow(0, 9000, n));
    }

    private static readonly Lazy<TorchClassifier> TrainedCnnLazy = new(TrainCnn);

    /// <summary>A small CNN trained for 300 SGD steps on 8,000 Fashion-MNIST images (≈80% held-out accuracy).</summary>
    public static TorchClassifier TrainedCnn => TrainedCnnLazy.Value;

    private static TorchClassifier TrainCnn()
    {
        // Built in its own scope so that no test's scope owns (and later disposes) the shared model's state.
        using var outer = NewDisposeScope();
        random.manual_seed(1234);
        var net = nn.Sequential(
            ("conv1", nn.Conv2d(1, 8, 3, padding: 1)),
            ("relu1", nn.ReLU()),
            ("pool1", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(8, 16, 3, padding: 1)),
            ("relu2", nn.ReLU()),
            ("pool2", nn.MaxPool2d(2)),
            ("flatten", nn.Flatten()),
            ("fc", nn.Linear(16 * 7 * 7, 10)));
        var model = new TorchClassifier(net, Spec([1, 28, 28], 10));
        var (x, y) = Fashion;
        using var optimizer = optim.SGD(net.parameters(), 0.05, momentum: 0.9);
        var order = new Random(5);
        net.train();
        for (int step = 0; step < 300; step++)
        {
            using var scope = NewDisposeScope();
            var idx = tensor(Enumerable.Range(0, 64).Select(_ => (long)order.Next(8000)).ToArray());
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(net.call(x.index_select(0, idx)), y.index_select(0, idx));
            loss.backward();
            optimizer.step();
        }
        net.eval();
        return model;
    }

    public static double Accuracy(IClassifier model, Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return model.Logits(x).argmax(1).eq(y).to(ScalarType.Float64).mean().ToDouble();
    }

    public static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Robustness.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new DirectoryNotFoundException("repository root (Robustness.sln) not found above " + AppContext.BaseDirectory);
    }

    /// <summary>IDX3 images (gz): 16-byte big-endian header, then unsigned bytes scaled to [0,1].</summary>
    public static Tensor ReadIdxImages(string path)
    {
        var bytes = ReadGz(path);
        int n = BigEndian(bytes, 4), rows = BigEndian(bytes, 8), cols = BigEndian(bytes, 12);
        var pixels = new float[n * rows * cols];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = bytes[16 + i] / 255f;
        return tensor(pixels).reshape(n, 1, rows, cols);
    }

    /// <summary>IDX1 labels (gz): 8-byte header, then one byte per label.</summary>
    public static Tensor ReadIdxLabels(string path)
    {
        var bytes = ReadGz(path);
        int n = BigEndian(bytes, 4);
        return tensor(bytes.Skip(8).Take(n).Select(b => (long)b).ToArray());
    }

    private static byte[] ReadGz(string path)
    {
        using var file = File.OpenRead(path);
        using var gz = new GZipStream(file, CompressionMode.Decompress);
        using var memory = new MemoryStream();
        gz.CopyTo(memory);
        return memory.ToArray();
    }

    private static int BigEndian(byte[] b, int offset) => (b[offset] << 24) | (b[offset + 1] << 16) | (b[offset + 2] << 8) | b[offset + 3];
}

/// <summary>A classifier that only answers with scores (no module, no gradients), like a remote API.</summary>
internal sealed class ScoreOnlyClassifier(TorchClassifier inner) : IClassifier
{
    public ModelSpec Spec => inner.Spec;
    public Device Device => inner.Device;
    public Tensor Logits(Tensor inputs)
    {
        using var _ = no_grad();
        return inner.Logits(inputs.detach());
    }
}

/// <summary>Pairwise margin z_t − z_y: for a linear model its gradient is constant, so one FGSM/FGM step is optimal.</summary>
internal sealed class PairwiseMarginObjective : IAttackObjective
{
    public string Name => "pairwise-margin";
    public Tensor Loss(Tensor logits, AttackTargets t) =>
        Objectives.Pick(logits, t.TargetClasses!) - Objectives.Pick(logits, t.Labels);
}
