using Robustness.Core;
using static TorchSharp.torch;

namespace Robustness.Playground;

/// <summary>Marks the points whose prediction provably cannot change inside their ε-ball.</summary>
public interface IPointCertifier
{
    /// <summary>"ibp", ...</summary>
    string Name { get; }
    /// <summary>Bool [N]: true where every point of the ball around <paramref name="points"/> [N, 2] gets the label
    /// <paramref name="labels"/> (int64 [N], 1 = blue). A sound certificate: true is a proof, false means "not proven".</summary>
    Tensor Certify(PlaygroundModel model, Tensor points, Tensor labels, ThreatModel threat);
}

/// <summary>
/// Interval bound propagation (Gowal et al. 2018) through the playground network. The ε-ball (an L2 ball is enclosed
/// in its L∞ box) intersected with the input bounds is a box; the features map it to intervals exactly (x², x₁x₂ and
/// sin by their extremes on the interval), each linear layer maps centre and radius (c ↦ Wc + b, r ↦ |W|r) and the
/// monotone activations map the endpoints. The two logits are (−s/2, s/2), so the margin of blue is s and of orange −s:
/// a point is certified when the lower bound of its margin is positive.
/// </summary>
public sealed class IntervalBoundCertifier : IPointCertifier
{
    public static IntervalBoundCertifier Instance { get; } = new();
    public string Name => "ibp";

    public Tensor Certify(PlaygroundModel model, Tensor points, Tensor labels, ThreatModel threat)
    {
        if (!model.Classification) throw new ParameterException("showCertified", "interval certificates are for classification");
        using var scope = NewDisposeScope();
        var (lo, hi) = OutputBounds(model.Network, points, threat);
        var blue = labels.eq(1);
        return where(blue, lo.squeeze(1).gt(0), hi.squeeze(1).lt(0)).MoveToOuterDisposeScope();
    }

    /// <summary>Sound bounds [lo, hi] ([N, 1] each) of the output neuron s over the ball around each point.</summary>
    public static (Tensor Lower, Tensor Upper) OutputBounds(PlaygroundNetwork network, Tensor points, ThreatModel threat)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var eps = threat.Epsilon;
        var x = points.to(ScalarType.Float32);
        var lo = (x - eps).clamp(threat.Bounds.Lower, threat.Bounds.Upper);
        var hi = (x + eps).clamp(threat.Bounds.Lower, threat.Bounds.Upper);
        (lo, hi) = Features(network.FeatureNames, lo, hi);
        var act = PlaygroundNetwork.Activate(network.Activation);
        var layers = network.Layers;
        for (int i = 0; i < layers.Count; i++)
        {
            var w = layers[i].weight!;
            var mid = (lo + hi) * 0.5;
            var rad = (hi - lo) * 0.5;
            var c = nn.functional.linear(mid, w, layers[i].bias);
            var r = rad.matmul(w.abs().t());
            lo = c - r;
            hi = c + r;
            if (i < layers.Count - 1) { lo = act(lo); hi = act(hi); }
        }
        return (lo.MoveToOuterDisposeScope(), hi.MoveToOuterDisposeScope());
    }

    private static (Tensor, Tensor) Features(IReadOnlyList<string> names, Tensor lo, Tensor hi)
    {
        var l1 = lo[.., 0..1]; var u1 = hi[.., 0..1];
        var l2 = lo[.., 1..2]; var u2 = hi[.., 1..2];
        var los = new List<Tensor>();
        var his = new List<Tensor>();
        foreach (var f in names)
        {
            var (l, u) = f switch
            {
                "x1" => (l1, u1),
                "x2" => (l2, u2),
                "x1sq" => Square(l1, u1),
                "x2sq" => Square(l2, u2),
                "x1x2" => Product(l1, u1, l2, u2),
                "sinx1" => Sin(l1, u1),
                "sinx2" => Sin(l2, u2),
                _ => throw new InvalidOperationException(f),
            };
            los.Add(l);
            his.Add(u);
        }
        return (cat(los, 1), cat(his, 1));
    }

    private static (Tensor, Tensor) Square(Tensor l, Tensor u)
    {
        var ll = l * l; var uu = u * u;
        var straddles = l.lt(0).logical_and(u.gt(0));
        return (where(straddles, zeros_like(l), minimum(ll, uu)), maximum(ll, uu));
    }

    private static (Tensor, Tensor) Product(Tensor l1, Tensor u1, Tensor l2, Tensor u2)
    {
        var p = stack([l1 * l2, l1 * u2, u1 * l2, u1 * u2], 0);
        return (p.amin([0L]), p.amax([0L]));
    }

    /// <summary>sin on [l, u]: the endpoint values, widened to ±1 where the interval contains a crest or a trough.</summary>
    private static (Tensor, Tensor) Sin(Tensor l, Tensor u)
    {
        var sl = l.sin(); var su = u.sin();
        var lower = minimum(sl, su);
        var upper = maximum(sl, su);
        const double twoPi = 2 * Math.PI;
        var crest = ((l - Math.PI / 2) / twoPi).ceil().le(((u - Math.PI / 2) / twoPi).floor());
        var trough = ((l + Math.PI / 2) / twoPi).ceil().le(((u + Math.PI / 2) / twoPi).floor());
        upper = where(crest, ones_like(upper), upper);
        lower = where(trough, -ones_like(lower), lower);
        return (lower, upper);
    }
}
