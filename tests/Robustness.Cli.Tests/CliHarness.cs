using Robustness.Cli;
using Robustness.Cli.Common;
using Spectre.Console;

namespace Robustness.Cli.Tests;

/// <summary>What one in-process `robust` run printed and returned.</summary>
public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public string[] StderrLines => Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
    public override string ToString() => $"exit {ExitCode}\n--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>
/// Runs the CLI in this process through <see cref="RobustCli.Run"/> with stdout, stderr and the Spectre console
/// captured. Console redirection is process-wide, so every test class using it is in the "cli" collection.
/// </summary>
public static class Cli
{
    private static readonly object Gate = new();

    public static CliResult Run(params string[] args)
    {
        lock (Gate)
        {
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            var (oldOut, oldErr, oldAnsi) = (Console.Out, Console.Error, CommandRunner.Out);
            Console.SetOut(stdout);
            Console.SetError(stderr);
            CommandRunner.Out = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(stdout),
                Ansi = AnsiSupport.No,
                ColorSystem = ColorSystemSupport.NoColors,
                Interactive = InteractionSupport.No,
            });
            int code;
            try { code = RobustCli.Run(args); }
            finally
            {
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
                CommandRunner.Out = oldAnsi;
            }
            return new CliResult(code, stdout.ToString(), stderr.ToString());
        }
    }
}

[CollectionDefinition("cli", DisableParallelization = true)]
public sealed class CliCollection;

/// <summary>The checks every bad-input case shares.</summary>
public static class Expect
{
    /// <summary>Exit 2, exactly one "robust: error: …" line naming every fragment, no stack trace.</summary>
    public static string BadInput(CliResult r, params string[] fragments)
    {
        Assert.True(r.ExitCode == 2, $"expected exit 2\n{r}");
        var lines = r.StderrLines;
        Assert.True(lines.Length == 1, $"expected one stderr line\n{r}");
        var line = lines[0];
        Assert.StartsWith("robust: error: ", line);
        Assert.DoesNotContain(" at Robustness.", line);
        Assert.DoesNotContain("Exception", line);
        Assert.DoesNotContain("   at ", r.Stderr);
        foreach (var f in fragments)
            Assert.True(line.Contains(f, StringComparison.OrdinalIgnoreCase), $"stderr should mention '{f}'\n{r}");
        return line;
    }

    /// <summary>
    /// Nothing half-written in <paramref name="dir"/>: no temp files, no lock left behind, and none of the result files
    /// a run writes at its end (a failed run never got that far).
    /// </summary>
    public static void NoPartialOutput(string dir)
    {
        if (!Directory.Exists(dir)) return;
        var files = Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).ToArray();
        Assert.DoesNotContain(files, f => f.EndsWith(".tmp", StringComparison.Ordinal));
        Assert.DoesNotContain(files, f => Path.GetFileName(f) == OutputLock.FileName);
        foreach (var result in new[] { "result.json", "adversarial.safetensors", "report.json", "report.md", "report.html", "last.safetensors" })
            Assert.DoesNotContain(result, files);
    }

    /// <summary>No temp file anywhere under <paramref name="dir"/> and no lock left by a finished run.</summary>
    public static void NoTempFiles(string dir)
    {
        var files = Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Select(Path.GetFileName).ToArray();
        Assert.DoesNotContain(files, f => f!.EndsWith(".tmp", StringComparison.Ordinal));
        Assert.DoesNotContain(OutputLock.FileName, files);
    }
}
