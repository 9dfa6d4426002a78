using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Robustness.Defenses;

/// <summary>
/// Per-layer gradient norms of a training run: the parameters are grouped by the module that owns them
/// (<c>fc1</c>, <c>layer2.0.conv1</c>; recurrent weights by layer, <c>lstm.l0</c>), and after each backward pass the L2
/// norm of each group's gradient is added to a device-side sum — no host synchronisation until the epoch's mean is read.
/// This is the lecture's vanishing-gradient measurement: in a deep sigmoid MLP the first layers' norms are orders of
/// magnitude below the last layers', with ReLU they are not.
/// </summary>
public sealed partial class LayerGradientNorms : IDisposable
{
    private readonly (string Layer, Parameter[] Parameters)[] _layers;
    private readonly Tensor _sum;
    private int _batches;

    public LayerGradientNorms(nn.Module module, Device device)
    {
        var groups = new List<(string Layer, List<Parameter> Parameters)>();
        foreach (var (name, parameter) in module.named_parameters())
        {
            if (!parameter.requires_grad) continue;
            var layer = LayerOf(name);
            var index = groups.FindIndex(g => g.Layer == layer);
            if (index < 0) groups.Add((layer, [parameter]));
            else groups[index].Parameters.Add(parameter);
        }
        _layers = groups.Select(g => (g.Layer, g.Parameters.ToArray())).ToArray();
        _sum = zeros(Math.Max(1, _layers.Length), ScalarType.Float64, device);
    }

    public IReadOnlyList<string> Layers => _layers.Select(l => l.Layer).ToArray();

    /// <summary>The layer a parameter belongs to: its owner's path without the pipeline's <c>network.</c> prefix;
    /// PyTorch's recurrent weights (<c>weight_ih_l1</c>, <c>bias_hh_l0_reverse</c>) are split by layer.</summary>
    public static string LayerOf(string parameterName)
    {
        var name = parameterName.StartsWith("network.", StringComparison.Ordinal) ? parameterName["network.".Length..] : parameterName;
        var dot = name.LastIndexOf('.');
        var owner = dot < 0 ? "" : name[..dot];
        var leaf = name[(dot + 1)..];
        var recurrent = RecurrentLeaf().Match(leaf);
        if (recurrent.Success) return (owner.Length > 0 ? owner + "." : "") + "l" + recurrent.Groups[1].Value + recurrent.Groups[2].Value;
        return owner.Length > 0 ? owner : leaf;
    }

    /// <summary>Adds this batch's per-layer gradient norms (parameters without a gradient count as 0). Call after backward.</summary>
    public void Accumulate()
    {
        if (_layers.Length == 0) return;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var norms = new Tensor[_layers.Length];
        for (int i = 0; i < _layers.Length; i++)
        {
            Tensor? squares = null;
            foreach (var p in _layers[i].Parameters)
            {
                if (p.grad is not { } g) continue;
                var s = g.to(ScalarType.Float64).square().sum();
                squares = squares is null ? s : squares + s;
            }
            norms[i] = squares?.sqrt() ?? zeros([], ScalarType.Float64, _sum.device);
        }
        _sum.add_(stack(norms));
        _batches++;
    }

    /// <summary>The mean per-layer norm since the last <see cref="Reset"/> (one host read), in layer order; null before any batch.</summary>
    public IReadOnlyDictionary<string, double>? Mean()
    {
        if (_batches == 0 || _layers.Length == 0) return null;
        using var cpu = _sum.cpu();
        var values = cpu.data<double>().ToArray();
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int i = 0; i < _layers.Length; i++) result[_layers[i].Layer] = values[i] / _batches;
        return result;
    }

    public void Reset()
    {
        // In-place ops hand back a tensor object: created in a scope, it is released here instead of living on.
        using (NewDisposeScope()) _sum.zero_();
        _batches = 0;
    }

    public void Dispose() => _sum.Dispose();

    [GeneratedRegex(@"^(?:weight|bias)_(?:ih|hh)_l(\d+)(_reverse)?$")]
    private static partial Regex RecurrentLeaf();
}
