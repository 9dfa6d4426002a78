using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Cli.Commands.Bench;

/// <summary>
/// Keeps the live-tensor balance of a benchmark honest. TorchSharp 0.107 counts a tensor once when it is created and
/// uncounts it when disposed, but <c>new Parameter(tensor)</c> takes over the tensor's native handle without
/// uncounting the original: every parameter constructed (a new module, or <c>module.to(dtype)</c>) leaves the counter
/// one higher for good although nothing native is held. The benchmark records how many parameters it constructed,
/// so the reported change is the raw counter change minus those, and it also checks the counter over the timed
/// repetitions alone, where no module is built.
/// </summary>
public static class TensorLedger
{
    private static long _parameters;

    public static long ParametersConstructed => Interlocked.Read(ref _parameters);

    /// <summary>Call right after a module's parameters were (re)created.</summary>
    public static T Constructed<T>(T module) where T : nn.Module
    {
        Interlocked.Add(ref _parameters, module.parameters().LongCount());
        return module;
    }

    /// <summary>Records parameters constructed elsewhere (e.g. <see cref="Models.Bf16GradientClassifier.ParametersConstructed"/>).</summary>
    public static void Constructed(long parameters) => Interlocked.Add(ref _parameters, parameters);

    private static long _drift;

    /// <summary>Sum of live-count changes over timed workload repetitions (must be 0).</summary>
    public static long WorkloadDrift => Interlocked.Read(ref _drift);

    public static void AddDrift(long d) => Interlocked.Add(ref _drift, d);

    public static void Reset()
    {
        Interlocked.Exchange(ref _parameters, 0);
        Interlocked.Exchange(ref _drift, 0);
    }
}
