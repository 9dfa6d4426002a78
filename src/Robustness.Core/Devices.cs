using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Core;

/// <summary>Parses --device: auto (CUDA when TorchSharp reports it, else CPU), cpu, cuda, cuda:N.</summary>
public static class Devices
{
    public static Device Parse(string? text)
    {
        var t = (text ?? "auto").Trim().ToLowerInvariant();
        if (t == "auto") return cuda.is_available() ? CUDA : CPU;
        if (t == "cpu") return CPU;
        if (t == "cuda" || t.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (t.Length > 5 && !int.TryParse(t.AsSpan(5), out _))
                throw new ParameterException("Device", $"'{text}' is not cpu, cuda, cuda:N or auto");
            if (!cuda.is_available())
                throw new ParameterException("Device", $"'{text}' requested but CUDA is not available (this build uses {Describe()}; see README 'GPU')");
            var device = new Device(t);
            if (device.index >= cuda.device_count())
                throw new ParameterException("Device", $"'{text}' but only {cuda.device_count()} CUDA device(s) are present");
            return device;
        }
        throw new ParameterException("Device", $"'{text}' is not cpu, cuda, cuda:N or auto");
    }

    /// <summary>"libtorch 2.10.0 (cpu)" or with CUDA.</summary>
    public static string Describe() => $"libtorch {__version__} ({(cuda.is_available() ? "cuda" : "cpu")})";

    public static string TorchSharpVersion => typeof(torch).Assembly.GetName().Version?.ToString() ?? "unknown";
}

/// <summary>Seeds every random source we use and returns a generator for call-time randomness.</summary>
public static class Seeding
{
    public static Generator Seed(long seed)
    {
        random.manual_seed(seed);
        return new Generator((ulong)seed);
    }
}

/// <summary>Live native tensor counts, for tests and benchmarks that check memory stays flat.</summary>
public static class LiveTensors
{
    public static long Count => Tensor.TotalCount;
}
