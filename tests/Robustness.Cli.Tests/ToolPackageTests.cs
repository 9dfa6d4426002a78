using System.Diagnostics;

namespace Robustness.Cli.Tests;

/// <summary>
/// The `dotnet tool` path end to end: pack the tool package, install it into a temporary tool path, and run
/// `robust demo --n 50` from a folder outside the repository — the shipped data and models travel inside the package,
/// and the installed libtorch loads on this machine (the build's ELF fix applies to the packed copy).
/// </summary>
[Collection("cli")]
public sealed class ToolPackageTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    private static (int Code, string Output) Run(string file, string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(15)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{file} {string.Join(' ', args)} did not finish within 15 minutes");
        }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    [Fact]
    public void Packed_tool_installs_and_runs_the_demo_outside_the_repository()
    {
        var artifacts = _temp.Sub("artifacts");
        var tools = _temp.Sub("tools");
        var elsewhere = Directory.CreateDirectory(_temp.Sub("elsewhere")).FullName;
        var project = Path.Combine(Repo.Root, "src", "Robustness.Cli", "Robustness.Cli.csproj");

        var (packCode, packLog) = Run("dotnet", Repo.Root, "pack", project, "-c", "Release", "-o", artifacts, "-nologo");
        Assert.True(packCode == 0, packLog);
        var package = Directory.GetFiles(artifacts, "Robustness.Tool.*.nupkg").Select(Path.GetFileName).ToArray();
        Assert.Contains(package, p => p!.StartsWith("Robustness.Tool.linux-x64.", StringComparison.Ordinal));
        var version = typeof(Robustness.Core.ToolInfo).Assembly.GetName().Version!.ToString(3);

        var (installCode, installLog) = Run("dotnet", elsewhere, "tool", "install", "--tool-path", tools, "--add-source", artifacts, "Robustness.Tool", "--version", version);
        Assert.True(installCode == 0, installLog);

        var robust = Path.Combine(tools, "robust");
        var (demoCode, demoLog) = Run(robust, elsewhere, "demo", "--n", "50", "--threads", "2");
        Assert.True(demoCode == 0, demoLog);
        Assert.Contains("first 50 images", demoLog);
        Assert.True(File.Exists(Path.Combine(elsewhere, "demo-report", "tiny-cnn-pgd", "report.html")), demoLog);
        // The data was found inside the installed package, not in the repository.
        var (dataCode, dataLog) = Run(robust, elsewhere, "data", "fashion-mnist", "--split", "test");
        Assert.True(dataCode == 0, dataLog);
        Assert.Contains(Path.GetFullPath(tools), dataLog);
    }
}
