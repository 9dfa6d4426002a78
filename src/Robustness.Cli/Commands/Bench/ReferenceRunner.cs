using System.Diagnostics;
using System.Globalization;
using Robustness.Core;

namespace Robustness.Cli.Commands.Bench;

/// <summary>
/// Runs another implementation of the benchmark (e.g. `python3 tests/bench/pytorch_reference.py`) for one workload
/// group at a time, so its runs interleave with ours, and reads the JSON lines it prints. The command gets
/// `--threads T --only GROUP` (and `--quick`) appended; it is run through /bin/sh so it may carry its own arguments.
/// </summary>
public sealed class ReferenceRunner(string command, int threads, bool quick)
{
    public IReadOnlyList<BenchMeasurement> Run(string group)
    {
        var args = string.Create(CultureInfo.InvariantCulture, $"{command} --threads {threads} --only {group}{(quick ? " --quick" : "")}");
        var info = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(args);
        Process process;
        try { process = Process.Start(info) ?? throw new InputException($"--compare: could not start '{command}'"); }
        catch (System.ComponentModel.Win32Exception e) { throw new InputException($"--compare: could not start '{command}': {e.Message}"); }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            var lines = new List<string>();
            while (process.StandardOutput.ReadLine() is { } line) lines.Add(line);
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                var last = stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "";
                throw new InputException($"--compare: '{args}' exited with code {process.ExitCode}: {last}");
            }
            return lines.Select(BenchMeasurement.Parse).OfType<BenchMeasurement>().ToList();
        }
    }
}
