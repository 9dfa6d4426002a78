using Robustness.Core;
using Robustness.Core.Graphs;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models;

/// <summary>
/// Per-channel <c>(x − mean) / std</c> in front of a network, so that attacks and images work in pixel space
/// while the network sees the inputs it was trained on. Mean and std are buffers (they follow <c>to(device)</c>);
/// model files store them as metadata, not as network tensors.
/// </summary>
public sealed class Normalize : nn.Module<Tensor, Tensor>, IDescribedNetwork
{
    private readonly Tensor mean;
    private readonly Tensor std;

    public Normalize(IReadOnlyList<float> mean, IReadOnlyList<float> std) : base(nameof(Normalize))
    {
        if (mean.Count == 0 || mean.Count != std.Count)
            throw new ArgumentException($"mean has {mean.Count} values and std {std.Count}; need the same positive count");
        if (std.Any(s => !(s > 0) || !float.IsFinite(s)))
            throw new ArgumentException("every std value must be positive and finite");
        if (mean.Any(m => !float.IsFinite(m)))
            throw new ArgumentException("every mean value must be finite");
        Mean = mean.ToArray();
        Std = std.ToArray();
        this.mean = tensor(Mean);
        this.std = tensor(Std);
        RegisterComponents();
    }

    public float[] Mean { get; }
    public float[] Std { get; }
    public int Channels => Mean.Length;

    public override Tensor forward(Tensor input)
    {
        // Channel axis is 1; broadcast over batch and every axis after it ([N,C], [N,C,H,W], ...).
        var shape = new long[Math.Max(input.dim(), 2)];
        Array.Fill(shape, 1L);
        shape[1] = Channels;
        using var m = mean.view(shape);
        using var s = std.view(shape);
        using var centred = input - m;
        return centred / s;
    }

    /// <summary>(x − mean)/std as x·(1/std) + (−mean/std) per channel.</summary>
    public NetworkGraph Describe()
    {
        var scale = std.reciprocal();
        var shift = -mean * scale;
        var g = new NetworkGraphBuilder();
        g.Then("normalize", new ChannelAffineOp(scale, shift));
        return g.Build();
    }
}

/// <summary>
/// normalize → network, the pixel→logits pipeline of a model with mean/std. The children are named "normalize" and
/// "network" (the state-dict keys an nn.Sequential with those names has). Describes itself when the network does.
/// </summary>
public sealed class NormalizedNetwork : nn.Module<Tensor, Tensor>, IDescribedNetwork
{
    private readonly Normalize normalize;
    private readonly nn.Module<Tensor, Tensor> network;

    public NormalizedNetwork(Normalize normalize, nn.Module<Tensor, Tensor> network) : base(nameof(NormalizedNetwork))
    {
        this.normalize = normalize;
        this.network = network;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input)
    {
        using var normalized = normalize.call(input);
        return network.call(normalized);
    }

    public NetworkGraph Describe() => network is IDescribedNetwork d
        ? normalize.Describe().Then(d.Describe())
        : throw new InputException($"ibp: model {network.GetName()} does not describe its layers (bound propagation needs a layer-level description, IDescribedNetwork)");
}
