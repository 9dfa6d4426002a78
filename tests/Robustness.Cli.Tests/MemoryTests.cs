using Robustness.Core;

namespace Robustness.Cli.Tests;

/// <summary>A whole CLI run, success or failure, gives back every native tensor it made.</summary>
[Collection("cli")]
public sealed class MemoryTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    private static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    /// <summary>
    /// What loading and disposing the model file alone adds to the counter. TorchSharp counts the tensor handed to each
    /// <c>Parameter</c> constructor and never takes it off (its handle moves into the parameter), so every model built
    /// adds one per parameter (8 for tiny-cnn) although nothing stays alive. Runs are compared net of that.
    /// </summary>
    private static long PerModelLoad()
    {
        using (Robustness.Models.ModelFile.Load(Make.TinyCnn, TorchSharp.torch.CPU)) { }
        Settle();
        var before = LiveTensors.Count;
        using (Robustness.Models.ModelFile.Load(Make.TinyCnn, TorchSharp.torch.CPU)) { }
        Settle();
        return LiveTensors.Count - before;
    }

    /// <summary>Live tensors left by two runs after a warm-up run, net of the two model loads.</summary>
    private long Delta(Func<string, CliResult> run)
    {
        Assert.Equal(0, run(_temp.Sub("warm-" + Guid.NewGuid().ToString("N"))).ExitCode); // lazily created state first
        var perLoad = PerModelLoad();
        Settle();
        var before = LiveTensors.Count;
        for (int i = 0; i < 2; i++) Assert.Equal(0, run(_temp.Sub("run-" + Guid.NewGuid().ToString("N"))).ExitCode);
        Settle();
        return LiveTensors.Count - before - 2 * perLoad;
    }

    [Fact]
    public void AttackRunsLeaveNoLiveTensors() =>
        Assert.Equal(0, Delta(dir => Cli.Run("attack", "--model", Make.TinyCnn, "--n", "40", "--batch-size", "16", "--attack", "pgd", "--steps", "3",
            "--eps", "0.1", "--images", "2", "--threads", "1", "--out", dir)));

    [Fact]
    public void EvalRunsLeaveNoLiveTensors() =>
        Assert.Equal(0, Delta(dir => Cli.Run("eval", "--model", Make.TinyCnn, "--n", "24", "--batch-size", "16", "--attacks", "fgsm,pgd", "--steps", "2",
            "--eps-sweep", "0.05,0.1", "--images", "2", "--threads", "1", "--out", dir)));

    [Fact]
    public void CertifyRunsLeaveNoLiveTensors()
    {
        Assert.Equal(0, Delta(dir => Cli.Run("certify", "--model", Make.TinyCnn, "--method", "ibp", "--eps", "0.01", "--eps-sweep", "0.001",
            "--n", "24", "--batch-size", "16", "--threads", "1", "--out", dir)));
        Assert.Equal(0, Delta(dir => Cli.Run("certify", "--model", Make.TinyCnn, "--method", "smoothing", "--sigma", "0.25", "--noise-samples", "300",
            "--batch-size", "128", "--n", "3", "--check-points", "2", "--check-samples", "200", "--threads", "1", "--out", dir)));
    }

    [Fact]
    public void FailedRunsLeaveNoLiveTensors()
    {
        var perLoad = PerModelLoad();
        Settle();
        var before = LiveTensors.Count;
        // Fails after the model and the dataset are loaded (sample count check).
        Assert.Equal(2, Cli.Run("attack", "--model", Make.TinyCnn, "--n", "999999", "--attack", "fgsm", "--eps", "0.1", "--threads", "1", "--out", _temp.Sub("x")).ExitCode);
        Settle();
        Assert.Equal(before + perLoad, LiveTensors.Count);
    }
}
