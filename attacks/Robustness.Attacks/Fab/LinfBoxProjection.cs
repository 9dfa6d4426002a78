using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// L∞ case of <see cref="BoxHyperplaneProjection"/>: minimise max_i u_i subject to Σ a_i u_i = need, 0 ≤ u ≤ room.
/// The optimum moves every helping coordinate by the same ρ, capped at its room: u_i = min(ρ, room_i), where ρ solves
/// R(ρ) = Σ a_i min(ρ, room_i) = need. R is piecewise linear and non-decreasing with breakpoints at the rooms, so
/// after sorting the rooms the segment holding ρ is found by counting the breakpoints with R &lt; need.
/// </summary>
internal static class LinfBoxProjection
{
    public static Tensor Amounts(Tensor a, Tensor room, Tensor need)
    {
        var (sorted, order) = room.sort(1);
        var aS = a.gather(1, order);
        var saturated = (aS * sorted).cumsum(1);                // Σ_{j≤k} a_j room_j
        var tail = BoxHyperplaneProjection.SuffixSums(aS);       // Σ_{j≥k} a_j
        var after = BoxHyperplaneProjection.Pad(tail.narrow(1, 1, tail.shape[1] - 1), 0, front: false); // Σ_{j>k} a_j
        var atBreakpoint = saturated + sorted * after;           // R(room_(k))
        var k = atBreakpoint.lt(need.unsqueeze(1)).sum(1);       // ρ lies in (room_(k−1), room_(k)]
        long d = a.shape[1];
        var before = BoxHyperplaneProjection.At(BoxHyperplaneProjection.Pad(saturated, 0, front: true), k);
        var slope = BoxHyperplaneProjection.At(BoxHyperplaneProjection.Pad(tail, 0, front: false), k);
        // k = d: even the whole box does not reach the hyperplane; take every coordinate to its bound.
        var rho = where(k.lt(Keep(d)), (need - before) / slope.clamp_min(Keep(1e-300)), double.PositiveInfinity);
        return minimum(rho.unsqueeze(1), room);
    }
}
