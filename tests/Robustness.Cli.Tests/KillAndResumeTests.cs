using Robustness.Core.Formats;
using System.Diagnostics;
using System.Text.Json;
using Robustness.Cli.Common;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Cli.Tests;

/// <summary>
/// `robust train` killed with SIGKILL after its first checkpoint, then resumed with --resume, ends with the same
/// weights as an uninterrupted run; the killed run's lock is taken over. Runs the real executable as a child process.
/// </summary>
[Collection("cli")]
public sealed class KillAndResumeTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    /// <summary>Starts `robust` with stdout and stderr collected into <paramref name="log"/>.</summary>
    private static Process Start(IEnumerable<string> args, System.Text.StringBuilder log)
    {
        var info = new ProcessStartInfo(Repo.RobustExecutable())
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        var p = Process.Start(info)!;
        p.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static (int Code, string Log) RunToEnd(IEnumerable<string> args)
    {
        var log = new System.Text.StringBuilder();
        using var p = Start(args, log);
        if (!p.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            p.Kill();
            Assert.Fail("robust train did not finish within 120 s");
        }
        p.WaitForExit(); // drains the output events
        lock (log) return (p.ExitCode, log.ToString());
    }

    private static int EpochsCompleted(string outDir)
    {
        var manifest = Path.Combine(outDir, "checkpoint", "manifest.json");
        if (!File.Exists(manifest)) return 0;
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllText(manifest));
            return json.RootElement.GetProperty("epochs_completed").GetInt32();
        }
        catch (Exception e) when (e is IOException or JsonException) { return 0; }
    }

    [Fact]
    public void KilledTrainingResumesToTheSameWeights()
    {
        var data = _temp.Sub("fmnist-600");
        Make.FashionSubset(data, "train", 0, 600);
        string[] common = ["train", "--arch", "tiny-cnn", "--data", data, "--epochs", "3", "--val-size", "100", "--batch-size", "64", "--threads", "1", "--seed", "3"];

        var reference = _temp.Sub("uninterrupted");
        var (code, log) = RunToEnd([.. common, "--out", reference]);
        Assert.True(code == 0, log);

        // Resumed with the run's options repeated, and with --resume alone (the options come from the run's saved arguments).
        foreach (var alone in new[] { false, true })
        {
            var killed = _temp.Sub(alone ? "killed-alone" : "killed");
            KillAfterFirstEpoch([.. common, "--out", killed], killed, out var done);
            string[] resume = alone ? ["train", "--resume", killed, "--threads", "1"] : [.. common, "--resume", killed];
            var (resumeCode, resumeLog) = RunToEnd(resume);
            Assert.True(resumeCode == 0, resumeLog);
            Assert.Equal(3, EpochsCompleted(killed));
            Assert.False(File.Exists(Path.Combine(killed, OutputLock.FileName)));
            Expect.NoTempFiles(killed);

            using var a = SafeTensors.Read(Path.Combine(reference, "last.safetensors"));
            using var b = SafeTensors.Read(Path.Combine(killed, "last.safetensors"));
            Assert.Equal(a.Names.Order(), b.Names.Order());
            foreach (var name in a.Names)
            {
                Assert.Equal(a[name].shape, b[name].shape);
                var diff = (a[name].to(ScalarType.Float64) - b[name].to(ScalarType.Float64)).abs().max().item<double>();
                Assert.True(diff <= 1e-5, $"{name} differs by {diff} after resume (killed after epoch {done}, resumed {(alone ? "alone" : "with options")})");
            }
        }

        // Options given again must agree with the run's; a mismatch names them and changes nothing.
        var (badCode, badLog) = RunToEnd(["train", "--resume", _temp.Sub("killed-alone"), "--epochs", "5", "--seed", "3"]);
        Assert.Equal(ExitCodes.BadInput, badCode);
        Assert.Contains("--epochs 5 (the run used 3)", badLog);
        Assert.DoesNotContain("--seed", badLog);
    }

    private static void KillAfterFirstEpoch(IEnumerable<string> args, string outDir, out int done)
    {
        using (var p = Start(args, new System.Text.StringBuilder()))
        {
            var watch = Stopwatch.StartNew();
            while (EpochsCompleted(outDir) < 1 && !p.HasExited && watch.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(2);
            Assert.False(p.HasExited, "the run ended before it could be killed");
            p.Kill();
            p.WaitForExit();
        }
        done = EpochsCompleted(outDir);
        Assert.InRange(done, 1, 2); // killed mid-run: the resume below has real work to do
        Assert.True(File.Exists(Path.Combine(outDir, OutputLock.FileName)), "a SIGKILLed run leaves its lock behind");
    }

    [Fact]
    public void LockOfAZombieIsTakenOver()
    {
        // sh starts a child and exec's into sleep, which never reaps it: the child stays a zombie while sleep runs.
        using var parent = Process.Start(new ProcessStartInfo("/bin/sh") { ArgumentList = { "-c", "sleep 0 & echo $!; exec sleep 20" }, RedirectStandardOutput = true, UseShellExecute = false })!;
        try
        {
            var zombie = int.Parse(parent.StandardOutput.ReadLine()!, System.Globalization.CultureInfo.InvariantCulture);
            var watch = Stopwatch.StartNew();
            while (!IsZombie(zombie) && watch.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(10);
            Assert.True(IsZombie(zombie), "the helper child did not become a zombie");

            var outDir = _temp.Dir("zombie");
            File.WriteAllText(Path.Combine(outDir, OutputLock.FileName), zombie.ToString(System.Globalization.CultureInfo.InvariantCulture));
            using var taken = OutputLock.Acquire(outDir);
            Assert.Equal(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(outDir, OutputLock.FileName)).Trim());
        }
        finally
        {
            parent.Kill();
            parent.WaitForExit();
        }
    }

    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2] == 'Z';
        }
        catch (IOException) { return false; }
    }
}
