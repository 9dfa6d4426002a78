using System.Globalization;
using System.Text.RegularExpressions;

namespace Robustness.Cli.Commands.Bench;

/// <summary>What a benchmark line needs to say about the machine it ran on (read from /proc on Linux).</summary>
public sealed record MachineInfo(string CpuModel, int PhysicalCores, int LogicalCores, string Libtorch, string TorchSharp, string Flags)
{
    public static MachineInfo Detect()
    {
        var logical = Environment.ProcessorCount;
        string model = System.Runtime.InteropServices.RuntimeInformation.OSArchitecture.ToString();
        int physical = logical;
        string flags = "";
        try
        {
            if (File.Exists("/proc/cpuinfo"))
            {
                var text = File.ReadAllText("/proc/cpuinfo");
                var name = Regex.Match(text, @"^model name\s*:\s*(.+)$", RegexOptions.Multiline);
                if (name.Success) model = name.Groups[1].Value.Trim();
                // Physical cores = distinct (physical id, core id) pairs; SMT siblings share a pair.
                var pairs = new HashSet<string>(StringComparer.Ordinal);
                foreach (var block in text.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
                {
                    var phys = Regex.Match(block, @"^physical id\s*:\s*(\d+)", RegexOptions.Multiline);
                    var core = Regex.Match(block, @"^core id\s*:\s*(\d+)", RegexOptions.Multiline);
                    if (core.Success) pairs.Add($"{(phys.Success ? phys.Groups[1].Value : "0")}:{core.Groups[1].Value}");
                }
                if (pairs.Count > 0) physical = Math.Min(pairs.Count, logical);
                var f = Regex.Match(text, @"^flags\s*:\s*(.+)$", RegexOptions.Multiline);
                if (f.Success)
                {
                    var interesting = new[] { "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16" };
                    var present = f.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
                    flags = string.Join(" ", interesting.Where(present.Contains));
                }
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return new MachineInfo(model, physical, logical, LibtorchVersion(), typeof(global::TorchSharp.torch).Assembly.GetName().Version?.ToString(3) ?? "?", flags);
    }

    public bool HasAvx512Bf16 => Flags.Split(' ').Contains("avx512_bf16");

    /// <summary>The libtorch version TorchSharp was built against (its native package carries the same number).</summary>
    private static string LibtorchVersion()
    {
        // TorchSharp's assembly metadata names the libtorch it binds; fall back to the runtime's answer.
        var attr = typeof(global::TorchSharp.torch).Assembly
            .GetCustomAttributes(typeof(System.Reflection.AssemblyFileVersionAttribute), false)
            .OfType<System.Reflection.AssemblyFileVersionAttribute>().FirstOrDefault();
        try
        {
            var v = global::TorchSharp.torch.__version__;
            if (!string.IsNullOrWhiteSpace(v)) return v;
        }
        catch (Exception) when (attr is not null) { }
        return attr?.Version ?? "?";
    }

    /// <summary>Peak resident set size of this process in bytes (VmHWM), or null where /proc is not there.</summary>
    public static long? PeakResidentBytes()
    {
        try
        {
            if (!File.Exists("/proc/self/status")) return null;
            var m = Regex.Match(File.ReadAllText("/proc/self/status"), @"^VmHWM:\s*(\d+)\s*kB", RegexOptions.Multiline);
            return m.Success ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) * 1024 : null;
        }
        catch (IOException) { return null; }
    }

    /// <summary>1-minute load average (other work on the machine skews timings), or null.</summary>
    public static double? LoadAverage()
    {
        try
        {
            if (!File.Exists("/proc/loadavg")) return null;
            var first = File.ReadAllText("/proc/loadavg").Split(' ')[0];
            return double.Parse(first, CultureInfo.InvariantCulture);
        }
        catch (IOException) { return null; }
    }
}
