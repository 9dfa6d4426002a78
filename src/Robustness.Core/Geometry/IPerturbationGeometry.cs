using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Core.Geometry;

/// <summary>
/// What one L_p norm means for a first-order attack: where to start, which way is steepest, how to get
/// back into the ball, and how far a perturbation is. All tensors are batched [N, ...]; ε may be a
/// scalar or per-sample.
/// </summary>
public interface IPerturbationGeometry
{
    Norm Norm { get; }

    /// <summary>A random perturbation inside the ε-ball (not yet clipped to the input bounds).</summary>
    Tensor RandomStart(Tensor like, double eps, Generator? generator);

    /// <summary>
    /// The steepest-ascent direction of unit norm for gradient <paramref name="grad"/> at <paramref name="current"/>.
    /// Coordinates that cannot move further inside <paramref name="bounds"/> are ignored where the norm needs it (L1).
    /// </summary>
    Tensor Direction(Tensor grad, Tensor current, Bounds bounds);

    /// <summary>The closest point of the ε-ball to <paramref name="delta"/> (exact Euclidean projection).</summary>
    Tensor Project(Tensor delta, double eps);

    /// <summary>Per-sample ‖δ‖_p, shape [N], in float64 for exact threat-model checks.</summary>
    Tensor Distance(Tensor delta);
}

public static class Geometries
{
    public static IPerturbationGeometry For(Norm norm, double l1Sparsity = L1Geometry.DefaultSparsity) => norm switch
    {
        Norm.Linf => LinfGeometry.Instance,
        Norm.L2 => L2Geometry.Instance,
        Norm.L1 => new L1Geometry(l1Sparsity),
        _ => throw new ArgumentOutOfRangeException(nameof(norm)),
    };

    /// <summary>[N, ...] as [N, d].</summary>
    public static Tensor Flat(Tensor t) => t.reshape(t.shape[0], -1);

    /// <summary>Reshapes a per-sample [N] tensor to broadcast against [N, ...].</summary>
    public static Tensor PerSample(Tensor perSample, Tensor like)
    {
        var shape = new long[like.dim()];
        Array.Fill(shape, 1L);
        shape[0] = -1;
        return perSample.reshape(shape);
    }
}

/// <summary>L∞: sign of the gradient, clamping, max-abs distance.</summary>
public sealed class LinfGeometry : IPerturbationGeometry
{
    public static LinfGeometry Instance { get; } = new();
    public Norm Norm => Norm.Linf;

    public Tensor RandomStart(Tensor like, double eps, Generator? generator) =>
        (rand(like.shape, dtype: like.dtype, generator: generator).to(like.device) * Keep(2) - Keep(1)) * Keep(eps);

    public Tensor Direction(Tensor grad, Tensor current, Bounds bounds) => grad.sign();

    public Tensor Project(Tensor delta, double eps) => delta.clamp(Keep(-eps), Keep(eps));

    public Tensor Distance(Tensor delta) => Geometries.Flat(delta).to(ScalarType.Float64).abs().amax([1L]);
}

/// <summary>L2: unit-L2 gradient, radial projection, Euclidean distance; random start uniform in the ball.</summary>
public sealed class L2Geometry : IPerturbationGeometry
{
    public static L2Geometry Instance { get; } = new();
    public Norm Norm => Norm.L2;

    public Tensor RandomStart(Tensor like, double eps, Generator? generator)
    {
        var n = like.shape[0];
        var d = like.numel() / Math.Max(1, n);
        var g = randn(like.shape, dtype: like.dtype, generator: generator).to(like.device);
        var norms = Geometries.Flat(g).norm(1, true, 2).clamp_min(Keep(1e-12));
        var radius = rand(n, 1, dtype: like.dtype, generator: generator).to(like.device).pow(Keep(1.0 / d)) * Keep(eps);
        return (Geometries.Flat(g) / norms * radius).reshape(like.shape);
    }

    public Tensor Direction(Tensor grad, Tensor current, Bounds bounds)
    {
        var flat = Geometries.Flat(grad);
        return (flat / flat.norm(1, true, 2).clamp_min(Keep(1e-12))).reshape(grad.shape);
    }

    public Tensor Project(Tensor delta, double eps)
    {
        var flat = Geometries.Flat(delta);
        var norms = flat.norm(1, true, 2);
        var factor = (Keep(eps) / norms.clamp_min(Keep(1e-12))).clamp_max(Keep(1.0));
        return (flat * factor).reshape(delta.shape);
    }

    public Tensor Distance(Tensor delta) => Geometries.Flat(delta).to(ScalarType.Float64).norm(1, false, 2);
}

/// <summary>
/// L1: sparse steepest ascent (Tramèr &amp; Boneh 2019): move only the top-q fraction of coordinates by |gradient|,
/// skipping coordinates pinned at a bound; exact projection onto the L1 ball (Duchi et al. 2008); random start
/// uniform in the ball.
/// </summary>
public sealed class L1Geometry(double sparsity = L1Geometry.DefaultSparsity) : IPerturbationGeometry
{
    /// <summary>Fraction of coordinates moved per step (q = 0.99 percentile ⇒ 1% of coordinates).</summary>
    public const double DefaultSparsity = 0.99;
    public Norm Norm => Norm.L1;
    public double Sparsity { get; } = sparsity is > 0 and < 1 ? sparsity : throw new ParameterException("L1Sparsity", $"must be in (0,1), got {sparsity}");

    public Tensor RandomStart(Tensor like, double eps, Generator? generator)
    {
        // Uniform in the L1 ball: exponential spacings e_1..e_{d+1}, normalised by their sum, random signs.
        var n = like.shape[0];
        var d = like.numel() / Math.Max(1, n);
        var u = rand(n, d + 1, dtype: ScalarType.Float64, generator: generator).clamp_min(Keep(1e-300));
        var e = -u.log();
        var point = e[.., ..(int)d] / e.sum(1, true);
        var signs = rand(n, d, dtype: ScalarType.Float64, generator: generator).lt(Keep(0.5)).to(ScalarType.Float64) * Keep(2) - Keep(1);
        return (point * signs * Keep(eps)).to(like.dtype).to(like.device).reshape(like.shape);
    }

    public Tensor Direction(Tensor grad, Tensor current, Bounds bounds)
    {
        var g = Geometries.Flat(grad);
        var x = Geometries.Flat(current);
        // A coordinate at a bound cannot move outward: don't spend the step there.
        var blocked = x.le(Keep(bounds.Lower)).logical_and(g.lt(Keep(0))).logical_or(x.ge(Keep(bounds.Upper)).logical_and(g.gt(Keep(0))));
        var score = g.abs().masked_fill(blocked, Keep(0));
        var d = g.shape[1];
        var k = Math.Max(1L, (long)Math.Ceiling((1 - Sparsity) * d));
        var threshold = score.topk((int)k, 1).values.narrow(1, k - 1, 1);
        var chosen = score.ge(threshold).logical_and(score.gt(Keep(0)));
        var count = chosen.sum(1, true, ScalarType.Float32).clamp_min(Keep(1)).to(g.dtype);
        return (g.sign() * chosen.to(g.dtype) / count).reshape(grad.shape);
    }

    public Tensor Project(Tensor delta, double eps) => ProjectL1(delta, eps);

    /// <summary>Exact Euclidean projection of each row onto {‖δ‖₁ ≤ ε} (sort-based, Duchi et al. 2008).</summary>
    public static Tensor ProjectL1(Tensor delta, double eps)
    {
        // Sorting and cumulative sums in float32 lose θ when coordinates are large; work in float64.
        var v = Geometries.Flat(delta).to(ScalarType.Float64);
        var abs = v.abs();
        var inside = abs.sum(1, true).le(Keep(eps));
        if (eps <= 0) return zeros_like(delta);
        var u = abs.sort(1, descending: true).Values;
        var css = u.cumsum(1);
        var d = v.shape[1];
        var j = arange(Keep(1), Keep(d + 1), dtype: v.dtype, device: v.device).unsqueeze(0);
        var cond = (u - (css - Keep(eps)) / j).gt(Keep(0));
        var rho = cond.sum(1, true, ScalarType.Int64).clamp_min(Keep(1));
        var theta = ((css.gather(1, rho - Keep(1)) - Keep(eps)) / rho.to(v.dtype)).clamp_min(Keep(0));
        var projected = v.sign() * (abs - theta).clamp_min(Keep(0));
        return where(inside, v, projected).to(delta.dtype).reshape(delta.shape);
    }

    public Tensor Distance(Tensor delta) => Geometries.Flat(delta).to(ScalarType.Float64).abs().sum(1);
}
