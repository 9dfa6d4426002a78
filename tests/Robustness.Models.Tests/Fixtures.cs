using Robustness.Core.Formats;
using System.Diagnostics;
using System.Text.Json;
using Robustness.Models.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Tests;

/// <summary>Paths to the committed PyTorch fixture (tests/fixtures/pytorch, made by make_fixture.py) and scratch files.</summary>
internal static class Fixtures
{
    public static readonly string PyTorchDir = FindPyTorchDir();

    public static string PyTorch(string name) => Path.Combine(PyTorchDir, name);

    private static string FindPyTorchDir()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "fixtures", "pytorch");
            if (File.Exists(Path.Combine(candidate, "make_fixture.py"))) return candidate;
        }
        throw new DirectoryNotFoundException($"tests/fixtures/pytorch not found above {AppContext.BaseDirectory}");
    }

    /// <summary>Key → shape of every reference architecture, as PyTorch builds it.</summary>
    public static readonly Lazy<Dictionary<string, Dictionary<string, long[]>>> ReferenceKeys = new(() =>
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(PyTorch("reference-keys.json")));
        return doc.RootElement.EnumerateObject().ToDictionary(
            arch => arch.Name,
            arch => arch.Value.EnumerateObject().ToDictionary(
                key => key.Name,
                key => key.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray()));
    });

    /// <summary>Inputs [4,1,28,28] and the logits PyTorch computed for each fixture model.</summary>
    public static StateDict InputsAndLogits() => SafeTensors.Read(PyTorch("inputs-logits.safetensors"));

    /// <summary>A model shipped in data/models (e.g. "lstm-pgd" → data/models/lstm-pgd.safetensors).</summary>
    public static string ShippedModel(string name) =>
        Path.Combine(PyTorchDir, "..", "..", "..", "data", "models", name + ".safetensors");

    public static string TempFile(string extension)
    {
        var dir = Path.Combine(Path.GetTempPath(), "robustness-models-tests");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, $"{Guid.NewGuid():N}{extension}");
    }

    public static float MaxAbsDifference(Tensor a, Tensor b)
    {
        using var d = (a.to(float32) - b.to(float32)).abs().max();
        return d.ToSingle();
    }
}

/// <summary>
/// A fact that needs Debian's python3-torch (CI installs it, see .ci/run). Where it is absent the test is reported
/// as skipped with this reason, not silently passed.
/// </summary>
public sealed class PythonTorchFactAttribute : FactAttribute
{
    public const string Python = "/usr/bin/python3";
    private const string TorchPackage = "/usr/lib/python3/dist-packages/torch/__init__.py";

    public PythonTorchFactAttribute()
    {
        if (!File.Exists(Python) || !File.Exists(TorchPackage))
            Skip = $"needs {Python} with python3-torch ({TorchPackage} not found)";
    }

    public static (int ExitCode, string Output) Run(string script, params string[] args)
    {
        var start = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["OMP_NUM_THREADS"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
