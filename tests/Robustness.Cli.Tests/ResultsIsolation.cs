using System.Runtime.CompilerServices;

namespace Robustness.Cli.Tests;

/// <summary>
/// `robust eval` records into $XDG_DATA_HOME/robustness/results.db by default: point XDG_DATA_HOME at a folder of
/// this test process (inherited by the robust processes it starts), so no test writes into the user's own database.
/// </summary>
internal static class ResultsIsolation
{
    public static string DataHome { get; } = Path.Combine(Path.GetTempPath(), $"robustness-cli-tests-xdg-{Environment.ProcessId}");

    public static string DefaultDatabase => Path.Combine(DataHome, "robustness", "results.db");

#pragma warning disable CA2255 // a module initializer is the point: it must run before any test starts the CLI
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Isolate()
    {
        Environment.SetEnvironmentVariable("XDG_DATA_HOME", DataHome);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { if (Directory.Exists(DataHome)) Directory.Delete(DataHome, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        };
    }
}
