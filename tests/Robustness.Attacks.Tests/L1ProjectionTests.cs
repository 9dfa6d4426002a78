using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks.Tests;

public class L1ProjectionTests
{
    /// <summary>Projection onto the L1 ball by bisection on the soft threshold θ: Σ max(|v_i| − θ, 0) = ε.</summary>
    private static double[] Bisection(double[] v, double eps)
    {
        if (v.Sum(Math.Abs) <= eps) return (double[])v.Clone();
        double lo = 0, hi = v.Max(Math.Abs);
        for (int i = 0; i < 200; i++)
        {
            double theta = (lo + hi) / 2;
            if (v.Sum(a => Math.Max(Math.Abs(a) - theta, 0)) > eps) lo = theta; else hi = theta;
        }
        double t = (lo + hi) / 2;
        return v.Select(a => Math.Sign(a) * Math.Max(Math.Abs(a) - t, 0)).ToArray();
    }

    [Fact]
    public void ProjectionMatchesBisectionAndIsClosest()
    {
        var rng = new Random(3);
        for (int trial = 0; trial < 200; trial++)
        {
            using var scope = NewDisposeScope();
            int d = rng.Next(1, 9);
            var v = Enumerable.Range(0, d).Select(_ => rng.NextDouble() * 4 - 2).ToArray();
            double eps = rng.NextDouble() * 3;
            var projected = L1Geometry.ProjectL1(tensor(v).reshape(1, d), eps).reshape(-1).data<double>().ToArray();
            var expected = Bisection(v, eps);
            for (int i = 0; i < d; i++) Assert.Equal(expected[i], projected[i], 9);
            Assert.True(projected.Sum(Math.Abs) <= eps * (1 + 1e-9) + 1e-12);
            // No random point of the ball is closer to v.
            double best = Dist(v, projected);
            for (int k = 0; k < 50; k++)
            {
                var q = Enumerable.Range(0, d).Select(_ => rng.NextDouble() * 2 - 1).ToArray();
                var s = q.Sum(Math.Abs);
                if (s > eps) q = q.Select(a => a / s * eps).ToArray();
                Assert.True(best <= Dist(v, q) + 1e-9);
            }
        }
    }

    [Fact]
    public void SparseL1DirectionHasUnitNormAndSkipsPinnedCoordinates()
    {
        using var scope = NewDisposeScope();
        var grad = tensor(new float[] { 3, -5, 1, 4, -2, 0.5f, 5, 2 }).reshape(1, 8);
        // Coordinate 6 (largest gradient, positive) sits at the upper bound: it cannot move outward.
        var current = tensor(new float[] { 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 1f, 0.5f }).reshape(1, 8);
        var direction = new Core.Geometry.L1Geometry(0.75).Direction(grad, current, Core.Bounds.Unit).reshape(-1).data<float>().ToArray();
        Assert.Equal(1.0, direction.Sum(Math.Abs), 5);
        Assert.Equal(0f, direction[6]);
        Assert.Equal(-0.5f, direction[1]); // top 2 of 8 movable coordinates: −5 and 4
        Assert.Equal(0.5f, direction[3]);
    }

    private static double Dist(double[] a, double[] b) => Math.Sqrt(a.Zip(b, (x, y) => (x - y) * (x - y)).Sum());
}
