using Robustness.Core.Formats;
using System.Text.Json;
using System.Text.Json.Serialization;
using Robustness.Core;
using static TorchSharp.torch;

namespace Robustness.Defenses;

/// <summary>
/// The JSON manifest of a training checkpoint (<c>checkpoint/manifest.json</c>). It names the tensor file holding the
/// model, best-model, optimizer and RNG state; the tensor file is written first, the manifest last (both atomically),
/// so a kill at any moment leaves the previous complete checkpoint in place.
/// </summary>
public sealed record CheckpointManifest
{
    public const int CurrentFormat = 1;
    public int Format { get; init; } = CurrentFormat;
    public int EpochsCompleted { get; init; }
    /// <summary>Optimizer iterations done (the LR and ε schedule position).</summary>
    public long Iteration { get; init; }
    public bool Finished { get; init; }
    public string? StopReason { get; init; }
    public string StateFile { get; init; } = "";
    public TrainingOptions Options { get; init; } = new();
    public string Objective { get; init; } = "";
    public Dictionary<string, string> ObjectiveParameters { get; init; } = [];
    public int? BestEpoch { get; init; }
    public double? BestScore { get; init; }
    public double? DetectorBestRobust { get; init; }
    public double? DetectorPreviousFgsm { get; init; }
    public List<EpochMetrics> History { get; init; } = [];
    public List<TrainingEvent> Events { get; init; } = [];
    public double ElapsedSeconds { get; init; }
    public string Data { get; init; } = "";
    public int TrainCount { get; init; }
    public int ValidationCount { get; init; }
}

/// <summary>Reads and writes checkpoints in <c>&lt;output&gt;/checkpoint/</c>.</summary>
public static class TrainingCheckpoint
{
    public const string DirectoryName = "checkpoint";
    public const string ManifestName = "manifest.json";

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string Directory(string outputDirectory) => Path.Combine(outputDirectory, DirectoryName);

    public static bool Exists(string outputDirectory) => File.Exists(Path.Combine(Directory(outputDirectory), ManifestName));

    /// <summary>The manifest, so a caller (the CLI's resume) can rebuild the options, objective and model.</summary>
    public static CheckpointManifest ReadManifest(string outputDirectory)
    {
        var path = Path.Combine(Directory(outputDirectory), ManifestName);
        if (!File.Exists(path)) throw new InputException($"{outputDirectory}: no training checkpoint ({DirectoryName}/{ManifestName} not found)");
        try
        {
            var manifest = JsonSerializer.Deserialize<CheckpointManifest>(File.ReadAllText(path), Json)
                ?? throw new InputException($"{path}: empty checkpoint manifest");
            if (manifest.Format != CheckpointManifest.CurrentFormat)
                throw new InputException($"{path}: checkpoint format {manifest.Format} is not supported (expected {CheckpointManifest.CurrentFormat})");
            return manifest;
        }
        catch (JsonException e) { throw new InputException($"{path}: corrupt checkpoint manifest ({e.Message})"); }
    }

    /// <summary>Writes the tensor state, then the manifest, then removes older tensor files.</summary>
    internal static void Write(string outputDirectory, CheckpointManifest manifest, IEnumerable<KeyValuePair<string, Tensor>> state)
    {
        var dir = Directory(outputDirectory);
        var stateFile = $"state-{manifest.EpochsCompleted:D4}.safetensors";
        SafeTensors.Write(Path.Combine(dir, stateFile), state);
        manifest = manifest with { StateFile = stateFile };
        AtomicFile.WriteAllText(Path.Combine(dir, ManifestName), JsonSerializer.Serialize(manifest, Json));
        foreach (var old in System.IO.Directory.EnumerateFiles(dir, "state-*.safetensors"))
            if (Path.GetFileName(old) != stateFile)
                try { File.Delete(old); } catch (IOException) { }
    }

    /// <summary>The manifest and its tensors (CPU; the caller disposes them).</summary>
    internal static (CheckpointManifest Manifest, Dictionary<string, Tensor> State) Read(string outputDirectory)
    {
        var manifest = ReadManifest(outputDirectory);
        var path = Path.Combine(Directory(outputDirectory), manifest.StateFile);
        if (!File.Exists(path)) throw new InputException($"{path}: checkpoint state file named by the manifest is missing");
        using var file = SafeTensors.Read(path);
        return (manifest, file.Detach().ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal));
    }
}
