namespace Robustness.Core;

/// <summary>Arithmetic of the attacks' gradient passes: float32, or bfloat16 on CPUs with native bf16 (AVX512-BF16, AMX).</summary>
public enum GradientPrecision
{
    Float32,
    Bf16,
}

public static class GradientPrecisions
{
    public static readonly IReadOnlyList<string> Names = ["float32", "bf16"];

    public static GradientPrecision Parse(string text, string parameter = "Precision") => text.Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => GradientPrecision.Float32,
        "bf16" or "bfloat16" => GradientPrecision.Bf16,
        _ => throw new ParameterException(parameter, $"unknown precision '{text}' (valid: {string.Join(", ", Names)})"),
    };

    public static string Name(this GradientPrecision p) => p == GradientPrecision.Bf16 ? "bf16" : "float32";
}

/// <summary>
/// Makes reduced-precision gradient views of a model (<see cref="IReducedPrecisionClassifier"/>). The trainer and
/// the evaluator reach them through this interface; Robustness.Models implements it for its zoo architectures.
/// </summary>
public interface IReducedPrecisionViews
{
    /// <summary>A view of <paramref name="model"/> whose gradient passes run in <paramref name="precision"/>
    /// (not <see cref="GradientPrecision.Float32"/>); throws <see cref="ParameterException"/> when the model cannot have one.</summary>
    IReducedPrecisionClassifier Create(IGradientClassifier model, GradientPrecision precision);
}

/// <summary>
/// A reduced-precision view that can also carry the training step (mixed precision, the manual equivalent of autocast):
/// the loss's backward pass through the view leaves the weight gradients on the view's own parameters, and
/// <see cref="Float32Gradients"/> hands them back in float32 for the optimizer to apply to the float32 weights.
/// </summary>
public interface IMixedPrecisionStep
{
    /// <summary>The module whose parameters receive the gradients (same parameter names as the float32 model).</summary>
    TorchSharp.torch.nn.Module GradientModule { get; }
    /// <summary>Clears the view's parameter gradients before a backward pass.</summary>
    void ZeroGradients();
    /// <summary>The view's parameter gradients as float32 tensors in the caller's dispose scope, keyed by parameter
    /// name; parameters without a gradient are left out.</summary>
    IReadOnlyDictionary<string, TorchSharp.torch.Tensor> Float32Gradients();
}

/// <summary>Saves a trained model (best/last files) with provenance metadata; Robustness.Models writes its model files.</summary>
public interface IModelWriter
{
    void Save(IGradientClassifier model, string path, IReadOnlyDictionary<string, string> metadata);
    /// <summary>The files' extension, e.g. ".safetensors" (the trainer names its files best/last plus this).</summary>
    string FileExtension => ".safetensors";
}

/// <summary>
/// Whether a device does bfloat16 arithmetic natively. On a CPU without it (no AVX512-BF16, no AMX) libtorch emulates
/// bf16 through float32 conversions, and bf16 gradient passes run many times slower than float32 instead of faster
/// (measured: fmnist-cnn PGD-2 training epochs 8–14× slower on an AVX2-only EPYC, docs/time-to-robust.md).
/// </summary>
public static class NativeBf16
{
    /// <summary>CPU flags that give native bf16 dot products.</summary>
    public static readonly IReadOnlyList<string> CpuFlags = ["avx512_bf16", "amx_bf16"];

    private static readonly Lazy<bool?> Cpu = new(() => FromCpuInfo(ReadCpuInfo()));

    /// <summary>true: native; false: emulated; null: unknown (not a CPU, or no /proc/cpuinfo to read).</summary>
    public static bool? On(TorchSharp.torch.Device device) => device.type == TorchSharp.DeviceType.CPU ? Cpu.Value : null;

    /// <summary>Reads the "flags" lines of a /proc/cpuinfo text; null when there are none.</summary>
    public static bool? FromCpuInfo(string? cpuinfo)
    {
        if (cpuinfo is null) return null;
        var flags = cpuinfo.Split('\n')
            .Where(l => l.StartsWith("flags", StringComparison.Ordinal) && l.Contains(':'))
            .SelectMany(l => l[(l.IndexOf(':') + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .ToHashSet(StringComparer.Ordinal);
        return flags.Count == 0 ? null : CpuFlags.Any(flags.Contains);
    }

    /// <summary>The warning to show when bf16 was asked for on a device that emulates it; null otherwise.</summary>
    public static string? Warning(GradientPrecision precision, TorchSharp.torch.Device device, string flag) =>
        precision == GradientPrecision.Bf16 && On(device) == false
            ? $"{flag} bf16: this CPU has no native bfloat16 arithmetic (none of {string.Join(", ", CpuFlags)} in /proc/cpuinfo), so " +
              "libtorch emulates it and bf16 passes run several times slower than float32 (8–14× measured); float32 is faster here"
            : null;

    private static string? ReadCpuInfo()
    {
        try { return OperatingSystem.IsLinux() && File.Exists("/proc/cpuinfo") ? File.ReadAllText("/proc/cpuinfo") : null; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}
