using CsCheck;
using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks.Tests;

/// <summary>
/// The geometry's invariants and the protocol's, as properties over random inputs (CsCheck): projections land in
/// the ball and are idempotent, the L1 projection is the closest point of the ball, the steepest-ascent direction
/// has unit primal norm and realises the dual norm, and the standing-points protocol never raises robust accuracy.
/// </summary>
public sealed class PropertyTests
{
    private const int Iterations = 200;

    /// <summary>A batch of 1–4 rows of 1–40 coordinates with values on varied scales, and a radius.</summary>
    private static readonly Gen<(float[][] Rows, double Eps)> Batches =
        Gen.Select(Gen.Int[1, 40], Gen.Int[1, 4], Gen.Double[1e-3, 3.0])
            .SelectMany(t => Gen.Float[-5f, 5f].Array[t.Item1].Array[t.Item2].Select(rows => (rows, t.Item3)));

    private static readonly Norm[] AllNorms = [Norm.Linf, Norm.L2, Norm.L1];

    private static Tensor ToTensor(float[][] rows) => tensor(rows.SelectMany(r => r).ToArray()).reshape(rows.Length, rows[0].Length);

    [Fact]
    public void Projection_lands_in_the_ball_and_is_idempotent()
    {
        Batches.Sample(b =>
        {
            using var scope = NewDisposeScope();
            var delta = ToTensor(b.Rows);
            foreach (var norm in AllNorms)
            {
                var g = Geometries.For(norm);
                var once = g.Project(delta, b.Eps);
                var twice = g.Project(once, b.Eps);
                var dist = g.Distance(once);
                if (dist.max().ToDouble() > b.Eps * (1 + 1e-5) + 1e-7) return false;
                if ((twice - once).abs().max().ToDouble() > 1e-5 * Math.Max(1, b.Eps)) return false;
                // Points already inside stay where they are.
                var inside = g.Distance(delta).le(Keep(b.Eps));
                var unchanged = (once - delta).abs().amax([1L]).le(Keep(1e-5 * Math.Max(1, b.Eps)));
                if (inside.logical_and(unchanged.logical_not()).any().ToBoolean()) return false;
            }
            return true;
        }, iter: Iterations);
    }

    [Fact]
    public void L1_projection_is_the_closest_point_of_the_ball()
    {
        Gen.Select(Batches, Gen.Int[0, int.MaxValue]).Sample(t =>
        {
            var ((rows, eps), seed) = t;
            using var scope = NewDisposeScope();
            var v = ToTensor(rows).to(ScalarType.Float64);
            var p = L1Geometry.ProjectL1(v, eps);
            var gap = (v - p).pow(Keep(2)).sum(1);
            // Random points of the ball (uniform-ish: random direction, random radius) are never closer to v.
            var geometry = Geometries.For(Norm.L1);
            using var gen = new Generator((ulong)seed);
            for (int k = 0; k < 20; k++)
            {
                var u = geometry.RandomStart(v, eps, gen);
                if ((v - u).pow(Keep(2)).sum(1).lt(gap - Keep(1e-9)).any().ToBoolean()) return false;
            }
            return true;
        }, iter: Iterations);
    }

    [Fact]
    public void Direction_has_unit_norm_and_realises_the_dual_norm()
    {
        var box = new Bounds(-100f, 100f);
        Batches.Sample(b =>
        {
            using var scope = NewDisposeScope();
            var grad = ToTensor(b.Rows).to(ScalarType.Float64);
            var current = zeros_like(grad);
            // Directions guard against division by a vanishing norm (clamped at 1e-12), so only gradients of norm
            // well above that must give unit steps.
            var nonzero = grad.abs().amax([1L]).gt(Keep(1e-6));
            foreach (var norm in AllNorms)
            {
                // L1 with the smallest sparsity moves one coordinate: the exact steepest direction.
                var g = norm == Norm.L1 ? new L1Geometry(1.0 - 1.0 / (grad.shape[1] + 1)) : Geometries.For(norm);
                var d = g.Direction(grad, current, box);
                var primal = g.Distance(d);
                var inner = (grad * d).sum(1);
                var dual = Geometries.For(norm.Dual()).Distance(grad);
                bool unit = primal.sub(Keep(1)).abs().le(Keep(1e-9)).logical_or(nonzero.logical_not()).all().ToBoolean();
                bool realises = inner.sub(dual).abs().le(Keep(1e-9 * (1 + dual.max().ToDouble()))).logical_or(nonzero.logical_not()).all().ToBoolean();
                if (!unit || !realises) return false;
            }
            return true;
        }, iter: Iterations);
    }

    /// <summary>Stages whose success masks and candidates are random: the protocol's guarantees hold whatever they do.</summary>
    [Fact]
    public void Standing_points_never_raise_robust_accuracy()
    {
        var cases = Gen.Select(Gen.Int[1, 30], Gen.Int[1, 5], Gen.Int[0, int.MaxValue], Gen.Int[0, 2]);
        cases.Sample(t =>
        {
            var (n, stageCount, seed, rule) = t;
            using var scope = NewDisposeScope();
            using var gen = new Generator((ulong)seed);
            var x = rand(n, 3, generator: gen);
            var initial = rand(n, generator: gen).lt(Keep(0.3));
            var points = new StandingPoints(x, new AttackTargets(zeros(n, ScalarType.Int64)), (KeepRule)rule, initial);
            var robust = new List<long> { n - initial.sum().ToInt64() };
            var everBroken = initial.cpu().data<bool>().ToArray();
            var ranOn = new List<long[]>();
            Stage stage = (rows, xs, ts, c) =>
            {
                ranOn.Add(rows.cpu().data<long>().ToArray());
                var success = rand(xs.shape[0], generator: gen).lt(Keep(0.4));
                return new StageOutcome(rand(xs.shape, generator: gen), success, rand(xs.shape[0], generator: gen));
            };
            points.Run(Enumerable.Repeat(stage, stageCount).ToArray(), new AttackContext(gen), observe: r =>
            {
                robust.Add(n - points.Broken.sum().ToInt64());
                foreach (var row in r.Rows.cpu().data<long>().ToArray())
                    if (everBroken[row]) throw new Xunit.Sdk.XunitException($"stage {r.Index} ran on row {row}, already broken");
                foreach (var (row, i) in points.Broken.cpu().data<bool>().Select((b2, i) => (b2, i)))
                    if (everBroken[i] && !row) throw new Xunit.Sdk.XunitException($"row {i} was broken and is standing again");
                everBroken = points.Broken.cpu().data<bool>().ToArray();
            });
            // Robust accuracy never rises from stage to stage, and rows never broken keep their input under KeepRule.Success.
            for (int i = 1; i < robust.Count; i++) if (robust[i] > robust[i - 1]) return false;
            if ((KeepRule)rule == KeepRule.Success)
            {
                var standing = points.Broken.logical_not();
                var moved = (points.Adversarial - x).abs().amax([1L]).gt(Keep(0));
                if (standing.logical_and(moved).any().ToBoolean()) return false;
            }
            return true;
        }, iter: Iterations);
    }
}
