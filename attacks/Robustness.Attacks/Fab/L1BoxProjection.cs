using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// L1 case of <see cref="BoxHyperplaneProjection"/>: minimise Σ u_i subject to Σ a_i u_i = need, 0 ≤ u ≤ room, a
/// fractional knapsack: spend on the coordinates with the largest a_i first, each up to its room, and the last one
/// only as far as needed. The coordinate used in part is found by counting the prefix sums below need.
/// </summary>
internal static class L1BoxProjection
{
    public static Tensor Amounts(Tensor a, Tensor room, Tensor need)
    {
        var (aS, order) = a.sort(1, descending: true);
        var roomS = room.gather(1, order);
        var used = (aS * roomS).cumsum(1);                       // reduction after the first k+1 coordinates
        var k = used.lt(need.unsqueeze(1)).sum(1);               // the coordinate used in part (d: none, box too small)
        var before = BoxHyperplaneProjection.At(BoxHyperplaneProjection.Pad(used, 0, front: true), k);
        var d = a.shape[1];
        var kClamped = k.clamp_max(Keep(d - 1));
        var part = (need - before) / BoxHyperplaneProjection.At(aS, kClamped).clamp_min(Keep(1e-300));
        var rank = arange(Keep(d), dtype: k.dtype, device: a.device).unsqueeze(0);
        var kk = k.unsqueeze(1);
        var amountS = where(rank.lt(kk), roomS, where(rank.eq(kk), minimum(part.unsqueeze(1), roomS), zeros_like(roomS)));
        // A coordinate with a_i = 0 reduces nothing: it is never spent on (when the box is too small, k runs past them).
        amountS = where(aS.gt(Keep(0)), amountS, zeros_like(amountS));
        return zeros_like(a).scatter(1, order, amountS);
    }
}
