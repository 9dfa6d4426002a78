using CsCheck;
using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks.Tests;

/// <summary>
/// FAB's projection onto hyperplane ∩ box (<see cref="BoxHyperplaneProjection"/>) against independent host
/// references: for each norm the same problem (minimise ‖u‖ with Σ a_i u_i = need, 0 ≤ u ≤ room) solved by bisection
/// on the multiplier (L∞, L2) or a plain greedy loop (L1), in double precision, on random rows.
/// </summary>
public sealed class FabProjectionTests
{
    private static readonly Bounds Box = Bounds.Unit;

    /// <summary>Rows of 1–30 coordinates: points in the box (some on its faces), normals with some zeros, values.</summary>
    private static readonly Gen<(double[] P, double[] W, double C)> Rows =
        Gen.Int[1, 30].SelectMany(d => Gen.Select(
            Gen.Double[0, 1].Array[d].Select(p => p.Select(v => v < 0.1 ? 0 : v > 0.9 ? 1 : v).ToArray()),
            Gen.Select(Gen.Double[-2, 2], Gen.Int[0, 4]).Select(t => t.Item2 == 0 ? 0.0 : t.Item1).Array[d],
            Gen.Double[-3, 3]));

    public static IEnumerable<object[]> Norms() => [[Norm.Linf], [Norm.L2], [Norm.L1]];

    [Theory]
    [MemberData(nameof(Norms))]
    public void Projection_is_feasible_and_as_small_as_the_reference(Norm norm)
    {
        Rows.Sample(row =>
        {
            using var scope = NewDisposeScope();
            var (p, w, c) = row;
            var d = BoxHyperplaneProjection.Project(norm, Tensor(p), Tensor(w), tensor(new[] { c }, ScalarType.Float64), Box)
                .data<double>().ToArray();
            var (reference, feasible) = Reference(norm, p, w, c);
            for (int i = 0; i < p.Length; i++)
                if (p[i] + d[i] < -1e-12 || p[i] + d[i] > 1 + 1e-12) return false;      // stays in the box
            double after = c + w.Zip(d, (a, b) => a * b).Sum();
            if (feasible && Math.Abs(after) > 1e-9 * (1 + Math.Abs(c))) return false;  // on the hyperplane
            if (!feasible && Math.Abs(after) > Math.Abs(c) + 1e-12) return false;      // at least no farther
            // Optimal: the norm of d equals the reference optimum (both minimal for the same problem).
            return Math.Abs(Size(norm, d) - Size(norm, reference)) <= 1e-7 * (1 + Size(norm, reference));
        }, iter: 300);
    }

    [Theory]
    [MemberData(nameof(Norms))]
    public void Without_a_box_the_distance_is_the_closed_form(Norm norm)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(3);
        var w = randn([16, 50], dtype: ScalarType.Float64, generator: gen);
        var c = randn([16], dtype: ScalarType.Float64, generator: gen);
        var p = rand([16, 50], dtype: ScalarType.Float64, generator: gen);
        var d = BoxHyperplaneProjection.Project(norm, p, w, c, new Bounds(-1e6f, 1e6f));
        var dual = norm switch { Norm.Linf => w.abs().sum(1), Norm.L2 => w.norm(1, false, 2), _ => w.abs().amax([1L]) };
        var size = norm switch { Norm.Linf => d.abs().amax([1L]), Norm.L2 => d.norm(1, false, 2), _ => d.abs().sum(1) };
        Assert.True((size - c.abs() / dual).abs().max().ToDouble() < 1e-9, "‖d‖ ≠ |c| / ‖w‖_*");
        Assert.True((c + (w * d).sum(1)).abs().max().ToDouble() < 1e-9, "not on the hyperplane");
    }

    private static Tensor Tensor(double[] v) => tensor(v, ScalarType.Float64).reshape(1, v.Length);

    private static double Size(Norm norm, double[] d) => norm switch
    {
        Norm.Linf => d.Max(Math.Abs),
        Norm.L2 => Math.Sqrt(d.Sum(v => v * v)),
        _ => d.Sum(Math.Abs),
    };

    /// <summary>The reference minimiser in the original coordinates, and whether the box reaches the hyperplane.</summary>
    private static (double[] D, bool Feasible) Reference(Norm norm, double[] p, double[] w, double c)
    {
        int n = p.Length;
        var v = w.Select(x => x * Math.Sign(c)).ToArray();
        var a = v.Select(Math.Abs).ToArray();
        var room = Enumerable.Range(0, n).Select(i => v[i] > 0 ? p[i] : 1 - p[i]).ToArray();
        double need = Math.Abs(c), most = Enumerable.Range(0, n).Sum(i => a[i] * room[i]);
        bool feasible = most >= need;
        var u = new double[n];
        if (!feasible) u = room;
        else if (norm == Norm.L1)
        {
            // Stop once the rest is rounding error: dividing that by a tiny a_i would fill coordinates that reduce nothing.
            double left = need;
            foreach (var i in Enumerable.Range(0, n).Where(i => a[i] > 0).OrderByDescending(i => a[i]))
            {
                u[i] = Math.Min(room[i], left / a[i]);
                left -= a[i] * u[i];
                if (left <= 1e-12 * need) break;
            }
        }
        else
        {
            // Bisection on the multiplier: ρ (L∞, u = min(ρ, room)) or λ (L2, u = min(λ a, room)).
            Func<double, int, double> amount = norm == Norm.Linf ? (t, i) => Math.Min(t, room[i]) : (t, i) => Math.Min(t * a[i], room[i]);
            double lo = 0, hi = 1;
            while (Enumerable.Range(0, n).Sum(i => a[i] * amount(hi, i)) < need) hi *= 2;
            for (int it = 0; it < 200; it++)
            {
                double mid = (lo + hi) / 2;
                if (Enumerable.Range(0, n).Sum(i => a[i] * amount(mid, i)) < need) lo = mid; else hi = mid;
            }
            for (int i = 0; i < n; i++) u[i] = a[i] > 0 ? amount(hi, i) : 0;
        }
        return (Enumerable.Range(0, n).Select(i => -Math.Sign(v[i]) * u[i]).ToArray(), feasible);
    }
}
