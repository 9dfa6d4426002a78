using Robustness.Core;

namespace Robustness.Cli.Common;

/// <summary>What every output records so a run can be reproduced: versions, device, seed, command line, model hash.</summary>
public static class RunProvenance
{
    public static Dictionary<string, object?> Describe(TorchSharp.torch.Device device, long seed, string? modelPath = null, string? modelSha256 = null) => new()
    {
        ["tool"] = "robust",
        ["tool_version"] = ToolInfo.Version,
        ["torchsharp_version"] = Devices.TorchSharpVersion,
        ["libtorch"] = Devices.Describe(),
        ["device"] = device.ToString(),
        ["threads"] = TorchSharp.torch.get_num_threads(),
        ["seed"] = seed,
        ["model"] = modelPath is null ? null : Path.GetFullPath(modelPath),
        ["model_sha256"] = modelSha256,
        ["command_line"] = string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
        ["date_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture),
        ["machine"] = $"{Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}",
    };
}
