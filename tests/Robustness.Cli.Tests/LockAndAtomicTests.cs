using System.Diagnostics;
using Robustness.Cli.Common;
using Robustness.Core;

namespace Robustness.Cli.Tests;

/// <summary>Two runs on one output directory, stale locks of killed runs, and writes interrupted half-way.</summary>
[Collection("cli")]
public sealed class LockAndAtomicTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    private CliResult Attack(string outDir) =>
        Cli.Run("attack", "--model", Make.TinyCnn, "--n", "4", "--attack", "fgsm", "--eps", "0.05", "--images", "1", "--threads", "1", "--out", outDir);

    [Fact]
    public void SecondRunOnALockedDirectoryIsRefused()
    {
        var outDir = _temp.Sub("shared");
        using (OutputLock.Acquire(outDir))
        {
            var line = Expect.BadInput(Attack(outDir), "--out", outDir, "in use by another robust run", $"pid {Environment.ProcessId}");
            Assert.False(File.Exists(Path.Combine(outDir, "result.json")));
            Assert.Empty(Directory.GetFiles(outDir, "*.tmp", SearchOption.AllDirectories));
            // The refused run must not have removed the holder's lock.
            Assert.True(File.Exists(Path.Combine(outDir, OutputLock.FileName)));
        }
        Assert.False(File.Exists(Path.Combine(outDir, OutputLock.FileName)));
        var ok = Attack(outDir);
        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.True(File.Exists(Path.Combine(outDir, "result.json")));
        Expect.NoTempFiles(outDir);
    }

    [Fact]
    public void EvalAndTrainHonourTheLockToo()
    {
        var outDir = _temp.Sub("shared");
        using var held = OutputLock.Acquire(outDir);
        Expect.BadInput(Cli.Run("eval", "--model", Make.TinyCnn, "--n", "4", "--attacks", "fgsm", "--eps", "0.05", "--threads", "1", "--out", outDir),
            "in use by another robust run");
        var data = _temp.Sub("data");
        Make.FashionSubset(data, "train", 0, 32);
        Expect.BadInput(Cli.Run("train", "--data", data, "--epochs", "1", "--val-size", "8", "--threads", "1", "--out", outDir),
            "in use by another robust run");
        Assert.Equal([OutputLock.FileName], Directory.GetFiles(outDir).Select(Path.GetFileName));
    }

    [Fact]
    public void StaleLockOfADeadProcessIsTakenOver()
    {
        int deadPid;
        using (var p = Process.Start(new ProcessStartInfo("/bin/true") { UseShellExecute = false })!)
        {
            p.WaitForExit();
            deadPid = p.Id;
        }
        var outDir = _temp.Dir("stale");
        File.WriteAllText(Path.Combine(outDir, OutputLock.FileName), deadPid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var r = Attack(outDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(File.Exists(Path.Combine(outDir, "result.json")));
        Assert.False(File.Exists(Path.Combine(outDir, OutputLock.FileName)));
    }

    [Fact]
    public void GarbageLockFileIsTakenOver()
    {
        var outDir = _temp.Dir("garbage");
        File.WriteAllText(Path.Combine(outDir, OutputLock.FileName), "not a pid");
        using var taken = OutputLock.Acquire(outDir);
        Assert.Equal(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            File.ReadAllText(Path.Combine(outDir, OutputLock.FileName)).Trim());
    }

    [Fact]
    public void WriterThrowingMidwayLeavesThePreviousFileAndNoTemp()
    {
        var path = _temp.Sub("result.json");
        AtomicFile.WriteAllText(path, "{\"complete\": true}");
        var e = Assert.Throws<IOException>(() => AtomicFile.Write(path, s =>
        {
            s.Write(new byte[100_000]);
            throw new IOException("disk full (simulated)");
        }));
        Assert.Contains("simulated", e.Message);
        Assert.Equal("{\"complete\": true}", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFiles(_temp.Path));
    }

    [Fact]
    public void WriterThrowingOnAFirstWriteLeavesNothing()
    {
        var path = _temp.Sub("new.bin");
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.WriteByte(1);
            throw new InvalidOperationException("bug (simulated)");
        }));
        Assert.Empty(Directory.GetFiles(_temp.Path));
    }

    [Fact]
    public void AtomicWriteIntoAnUnwritablePlaceIsBadInput()
    {
        var file = _temp.File("plain.txt", "x"u8.ToArray());
        var e = Assert.ThrowsAny<InputException>(() => AtomicFile.WriteAllText(Path.Combine(file, "sub", "r.json"), "{}"));
        Assert.Contains(file, e.Message);
    }
}
