using Robustness.Certification;
using Robustness.Core;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

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
/// Interval bound propagation (Gowal et al. 2018) through the playground network, with the Certification library's
/// IBP for the layers. The ε-ball (an L2 ball is enclosed in its L∞ box) intersected with the input bounds is a box;
/// the features map it to intervals exactly (x², x₁x₂ and sin by their extremes on the interval, in float64, widened by
/// the float32 rounding of the feature map); from there <see cref="IntervalBoundPropagation"/> bounds the layers, with
/// its slack for the float32 network, and folds the last layer into the margin. The two logits are (−s/2, s/2), so
/// the margin of blue is s and of orange −s: a point is certified when the lower bound of its margin is positive.
/// </summary>
public sealed class IntervalBoundCertifier : IPointCertifier
{
    public static IntervalBoundCertifier Instance { get; } = new();
    public string Name => "ibp";

    private static readonly IntervalBoundPropagation Propagation = new() { Slack = FloatingPointSlack.Float32Network };

    public Tensor Certify(PlaygroundModel model, Tensor points, Tensor labels, ThreatModel threat)
    {
        if (!model.Classification) throw new ParameterException("showCertified", "interval certificates are for classification");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var box = FeatureBounds(model.Network.FeatureNames, points, threat);
        var classes = labels.to(ScalarType.Int64);
        var margins = Propagation.MarginLowerBounds(model.Network.DescribeLayers(twoLogits: true), box, classes);
        // The label's own entry is 0; the other class's entry is the margin to beat.
        var other = margins.gather(1, (Keep(1) - classes).unsqueeze(1)).squeeze(1);
        return other.gt(Keep(0)).MoveToOuterDisposeScope();
    }

    /// <summary>Sound bounds [lo, hi] ([N, 1] each, float64) of the output neuron s over the ball around each point.</summary>
    public static (Tensor Lower, Tensor Upper) OutputBounds(PlaygroundNetwork network, Tensor points, ThreatModel threat)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var s = Propagation.Logits(network.DescribeLayers(twoLogits: false), FeatureBounds(network.FeatureNames, points, threat));
        return (s.Lower.MoveToOuterDisposeScope(), s.Upper.MoveToOuterDisposeScope());
    }

    /// <summary>The features' intervals (float64) over the box of the ball around each point.</summary>
    public static Interval FeatureBounds(IReadOnlyList<string> names, Tensor points, ThreatModel threat)
    {
        var eps = threat.Epsilon;
        var x = points.to(ScalarType.Float64);
        var lo = (x - Keep(eps)).clamp(Keep(threat.Bounds.Lower), Keep(threat.Bounds.Upper));
        var hi = (x + Keep(eps)).clamp(Keep(threat.Bounds.Lower), Keep(threat.Bounds.Upper));
        var (l, u) = Features(names, lo, hi);
        // The network computes its features in float32: a few ulps of relative rounding (x², x₁x₂, sin) on each side.
        const double rounding = 4.0 / (1 << 24);
        return new Interval(l - l.abs() * Keep(rounding) - Keep(1e-30), u + u.abs() * Keep(rounding) + Keep(1e-30));
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
        var straddles = l.lt(Keep(0)).logical_and(u.gt(Keep(0)));
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
        var crest = ((l - Keep(Math.PI / 2)) / Keep(twoPi)).ceil().le(((u - Keep(Math.PI / 2)) / Keep(twoPi)).floor());
        var trough = ((l + Keep(Math.PI / 2)) / Keep(twoPi)).ceil().le(((u + Keep(Math.PI / 2)) / Keep(twoPi)).floor());
        upper = where(crest, ones_like(upper), upper);
        lower = where(trough, -ones_like(lower), lower);
        return (lower, upper);
    }
}
