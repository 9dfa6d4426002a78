using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// FAB's projection step (Croce &amp; Hein 2020, §3): the smallest perturbation d, in the attack's norm, that moves a
/// point p onto the hyperplane {z : c + w·(z − p) = 0} while p + d stays in the box [lo, hi]^d; where the box does not
/// reach the hyperplane, the box corner that gets closest to it (every coordinate that helps pushed to its bound).
/// Exact per norm (<see cref="LinfBoxProjection"/>, <see cref="L2BoxProjection"/>, <see cref="L1BoxProjection"/>), in
/// float64, batched over rows.
/// </summary>
/// <remarks>
/// All three norms reduce to the same problem. Flip the sign so that the value must fall: with v = sign(c)·w the
/// constraint is v·d = −|c|. Coordinate i helps by moving against sign(v_i), by an amount u_i ∈ [0, room_i] with
/// room_i = p_i − lo (v_i &gt; 0) or hi − p_i (v_i &lt; 0), and lowers the value by a_i·u_i, a_i = |v_i|. So: minimise
/// ‖u‖ subject to Σ a_i u_i = |c|, 0 ≤ u ≤ room. Each norm solves that in closed form after one sort.
/// </remarks>
internal static class BoxHyperplaneProjection
{
    /// <param name="points">[B, d] points to project.</param>
    /// <param name="w">[B, d] hyperplane normals.</param>
    /// <param name="value">[B] value of the linear function at each point (0 on the hyperplane).</param>
    /// <returns>d [B, d] in the dtype of <paramref name="points"/>.</returns>
    public static Tensor Project(Norm norm, Tensor points, Tensor w, Tensor value, Bounds bounds)
    {
        using var scope = NewDisposeScope();
        var p = points.to(ScalarType.Float64);
        var c = value.to(ScalarType.Float64);
        var v = w.to(ScalarType.Float64) * c.sign().unsqueeze(1);
        var a = v.abs();
        var room = where(v.gt(Keep(0)), p - Keep(bounds.Lower), Keep(bounds.Upper) - p).clamp_min(Keep(0));
        var need = c.abs();
        var amounts = norm switch
        {
            Norm.Linf => LinfBoxProjection.Amounts(a, room, need),
            Norm.L2 => L2BoxProjection.Amounts(a, room, need),
            Norm.L1 => L1BoxProjection.Amounts(a, room, need),
            _ => throw new ArgumentOutOfRangeException(nameof(norm)),
        };
        // Coordinates with a_i = 0 do not help: they stay (sign(v_i) = 0).
        var d = -v.sign() * amounts;
        return d.to(points.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Σ_{j ≥ k} of each row (inclusive suffix sums), exact zeros where the tail is zero.</summary>
    internal static Tensor SuffixSums(Tensor t) => t.flip(1).cumsum(1).flip(1);

    /// <summary><paramref name="t"/> with a column of <paramref name="fill"/> prepended (<paramref name="front"/>) or appended.</summary>
    internal static Tensor Pad(Tensor t, double fill, bool front)
    {
        var column = full(t.shape[0], 1, Keep(fill), dtype: t.dtype, device: t.device);
        return front ? cat([column, t], 1) : cat([t, column], 1);
    }

    /// <summary>Row-wise t[k] for an int64 index [B].</summary>
    internal static Tensor At(Tensor t, Tensor k) => t.gather(1, k.unsqueeze(1)).squeeze(1);
}
