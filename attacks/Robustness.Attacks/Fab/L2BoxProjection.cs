using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// L2 case of <see cref="BoxHyperplaneProjection"/>: minimise Σ u_i² subject to Σ a_i u_i = need, 0 ≤ u ≤ room.
/// By the KKT conditions u_i = min(λ a_i, room_i) for one λ ≥ 0 that solves R(λ) = Σ a_i min(λ a_i, room_i) = need.
/// R is piecewise linear and non-decreasing with breakpoints λ_i = room_i / a_i; sorting them, the segment holding λ
/// is found by counting the breakpoints with R &lt; need, and λ follows from the segment's linear equation.
/// </summary>
internal static class L2BoxProjection
{
    /// <summary>Breakpoint of coordinates that cannot help (a_i = 0): after all others, finite so that 0·it is 0.</summary>
    private const double Never = 1e300;

    public static Tensor Amounts(Tensor a, Tensor room, Tensor need)
    {
        var helps = a.gt(Keep(0));
        var breakpoints = where(helps, room / a.clamp_min(Keep(1e-300)), Never);
        var (sorted, order) = breakpoints.sort(1);
        var aS = a.gather(1, order);
        var saturated = (aS * room.gather(1, order)).cumsum(1);  // Σ_{j≤k} a_j room_j
        var tail = BoxHyperplaneProjection.SuffixSums(aS * aS);  // Σ_{j≥k} a_j²
        var after = BoxHyperplaneProjection.Pad(tail.narrow(1, 1, tail.shape[1] - 1), 0, front: false);
        var atBreakpoint = saturated + sorted * after;           // R(λ_(k))
        var k = atBreakpoint.lt(need.unsqueeze(1)).sum(1);       // λ lies in (λ_(k−1), λ_(k)]
        long d = a.shape[1];
        var before = BoxHyperplaneProjection.At(BoxHyperplaneProjection.Pad(saturated, 0, front: true), k);
        var slope = BoxHyperplaneProjection.At(BoxHyperplaneProjection.Pad(tail, 0, front: false), k);
        var lambda = where(k.lt(Keep(d)), (need - before) / slope.clamp_min(Keep(1e-300)), double.PositiveInfinity).unsqueeze(1);
        // k = d: the box does not reach the hyperplane; every helping coordinate goes to its bound (λ = ∞).
        return where(helps, minimum(lambda * a, room), zeros_like(a));
    }
}
