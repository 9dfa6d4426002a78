using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models;

/// <summary>
/// Initial weights of a zoo network. <see cref="Default"/> keeps PyTorch's per-layer defaults (Kaiming-uniform with
/// a = √5 for linear and conv layers, U(−1/√h, 1/√h) for recurrent ones). The others set every weight matrix and
/// kernel of the linear, convolutional and recurrent layers, and set their biases to zero; batch-norm scales and
/// shifts keep their (1, 0) start. <see cref="Zeros"/> is the lecture's counter-example: every unit of a layer
/// computes the same function and receives the same gradient, so the symmetry never breaks.
/// </summary>
public enum WeightInit { Default, Zeros, Kaiming, Xavier }

public static class WeightInits
{
    public static readonly IReadOnlyList<string> Names = ["default", "zeros", "kaiming", "xavier"];

    public static string Name(this WeightInit init) => Names[(int)init];

    public static WeightInit Parse(string text) => (text ?? "").Trim().ToLowerInvariant() switch
    {
        "default" => WeightInit.Default,
        "zeros" or "zero" => WeightInit.Zeros,
        "kaiming" or "he" => WeightInit.Kaiming,
        "xavier" or "glorot" => WeightInit.Xavier,
        _ => throw new ParameterException("Init", $"unknown initialisation '{text}' (valid: {string.Join(", ", Names)})"),
    };

    /// <summary>
    /// Re-initialises <paramref name="network"/> in place. Kaiming: normal, fan-in, gain for ReLU (He et al. 2015);
    /// Xavier: uniform, gain 1 (Glorot &amp; Bengio 2010). Random draws use the global torch generator (seed it first).
    /// Batch-norm parameters are recognised as the 1-D weights that have a <c>running_mean</c> buffer beside them.
    /// </summary>
    public static void Apply(nn.Module network, WeightInit init)
    {
        if (init == WeightInit.Default) return;
        var normalisers = network.named_buffers().Where(b => b.name.EndsWith("running_mean", StringComparison.Ordinal))
            .Select(b => b.name[..^"running_mean".Length]).ToHashSet(StringComparer.Ordinal);
        using var _ = no_grad();
        foreach (var (name, parameter) in network.named_parameters())
        {
            var dot = name.LastIndexOf('.');
            var owner = dot < 0 ? "" : name[..(dot + 1)];
            if (normalisers.Contains(owner)) continue;
            bool isBias = name[(dot + 1)..].StartsWith("bias", StringComparison.Ordinal);
            if (isBias || parameter.dim() < 2 || init == WeightInit.Zeros) { nn.init.zeros_(parameter); continue; }
            if (init == WeightInit.Kaiming) nn.init.kaiming_normal_(parameter, mode: nn.init.FanInOut.FanIn, nonlinearity: nn.init.NonlinearityType.ReLU);
            else nn.init.xavier_uniform_(parameter);
        }
    }
}
