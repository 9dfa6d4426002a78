using Robustness.Core;
using Robustness.Core.Geometry;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks;

/// <summary>
/// Square Attack (Andriushchenko et al. 2020): score-based random search that needs only the logits. Per query each
/// sample gets a random square window (its own position) set to a vertex of the L∞ ball, or, for L2, filled with a
/// pseudo-Gaussian pattern that moves mass between two windows; the change is kept if the margin
/// z_y − max_{j≠y} z_j decreases (multi-label: the per-label margin of <see cref="MarginObjective"/>, i.e. the smallest
/// s·z over the labels, for untargeted and targeted goals alike). The window size follows the paper's piecewise schedule for p (p_init = 0.8 for L∞).
/// Inputs of shape [N, D] or [N, C, D] are treated as images of height 1. Randomness comes from context.Generator.
/// </summary>
public sealed record SquareAttack(ThreatModel Threat) : AttackBase(Threat)
{
    public int Queries { get; init; } = 5000;
    /// <summary>Initial fraction of coordinates changed per query (0.8 for L∞ and L2 in the paper's AutoAttack setting).</summary>
    public double PInit { get; init; } = 0.8;
    /// <summary>How often (in queries) the set of still-robust samples is recomputed (a host sync).</summary>
    public int CompactEvery { get; init; } = 10;

    public override string Name => "square";
    public override bool NeedsGradients => false;

    public override IReadOnlyDictionary<string, object> Parameters => Describe(Threat,
        ("queries", Queries), ("p_init", PInit), ("loss", "margin"));

    /// <summary>The paper's piecewise-constant schedule of p, defined on a 10,000-query budget and rescaled.</summary>
    public static double PSchedule(double pInit, int iteration, int queries) => SquarePatterns.PSchedule(pInit, iteration, queries);

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        if (Threat.Norm == Norm.L1) throw new ParameterException("Norm", "square supports the linf and l2 norms, not l1");
        if (Queries < 1) throw new ParameterException("Queries", $"must be ≥ 1, got {Queries}");
        if (!(PInit > 0 && PInit <= 1)) throw new ParameterException(nameof(PInit), $"must be in (0,1], got {PInit}");
        if (Threat.Epsilon == 0) return new Perturbation(inputs);

        using var noGrad = no_grad();
        var shape = inputs.shape;
        var x = inputs.dim() switch
        {
            4 => inputs,
            3 => inputs.reshape(shape[0], shape[1], 1, shape[2]),
            _ => inputs.reshape(shape[0], 1, 1, -1),
        };
        var search = new Search(this, model, x, shape, targets, context);
        var best = search.Run();
        return new Perturbation(best.reshape(shape));
    }

    /// <summary>The mutable state of one run (kept out of the immutable record).</summary>
    private sealed class Search(SquareAttack attack, IClassifier model, Tensor x, long[] originalShape, AttackTargets targets, AttackContext context)
    {
        private readonly long _n = x.shape[0], _c = x.shape[1], _h = x.shape[2], _w = x.shape[3];
        private readonly double _eps = attack.Threat.Epsilon;
        private readonly Bounds _bounds = attack.Threat.Bounds;
        private readonly Generator? _gen = context.Generator;
        private readonly bool _linf = attack.Threat.Norm == Norm.Linf;

        private Tensor Margin(Tensor images, AttackTargets t) =>
            -Objectives.Margin.Loss(model.Logits(images.reshape(ImageShape(images.shape[0]))), t);

        private long[] ImageShape(long n) { var s = (long[])originalShape.Clone(); s[0] = n; return s; }

        private Tensor RandomSigns(params long[] shape) =>
            rand(shape, generator: _gen).lt(0.5).to(x.dtype).mul(2).sub(1).to(x.device);

        public Tensor Run()
        {
            var best = Initial();
            var margin = Margin(best, targets);
            int queries = attack.Queries;
            Tensor? open = null, xs = null, bests = null, margins = null;
            AttackTargets? subTargets = null;
            for (int i = 1; i < queries; i++)
            {
                context.Cancel.ThrowIfCancellationRequested();
                if (open is null || (i - 1) % Math.Max(1, attack.CompactEvery) == 0)
                {
                    // Write the working set back and pick the points that still stand (one host sync).
                    if (open is not null) (best, margin) = WriteBack(best, margin, open, bests!, margins!);
                    open?.Dispose(); xs?.Dispose(); bests?.Dispose(); margins?.Dispose();
                    open = AttackMath.Indices(margin.gt(0));
                    if (open.numel() == 0) { open.Dispose(); open = null; break; }
                    xs = x.index_select(0, open);
                    bests = best.index_select(0, open);
                    margins = margin.index_select(0, open);
                    subTargets = targets.Select(open);
                }
                using var scope = NewDisposeScope();
                var p = PSchedule(attack.PInit, i, queries);
                var candidate = _linf ? LinfCandidate(xs!, bests!, p) : L2Candidate(xs!, bests!, p);
                var newMargin = Margin(candidate, subTargets!);
                var better = newMargin.lt(margins!);
                var nextBest = where(Geometries.PerSample(better, candidate), candidate, bests!).MoveToOuterDisposeScope();
                var nextMargin = where(better, newMargin, margins!).MoveToOuterDisposeScope();
                bests!.Dispose(); margins!.Dispose();
                (bests, margins) = (nextBest, nextMargin);
                context.StepProgress?.Report(1);
            }
            if (open is not null) (best, margin) = WriteBack(best, margin, open, bests!, margins!);
            open?.Dispose(); xs?.Dispose(); bests?.Dispose(); margins?.Dispose();
            return best;
        }

        private static (Tensor, Tensor) WriteBack(Tensor best, Tensor margin, Tensor open, Tensor bests, Tensor margins)
        {
            var b = best.index_copy(0, open, bests);
            var m = margin.index_copy(0, open, margins);
            best.Dispose(); margin.Dispose();
            return (b, m);
        }

        private Tensor Initial()
        {
            using var scope = NewDisposeScope();
            if (_linf)
                // Vertical stripes of ±ε, as in the paper.
                return (x + RandomSigns(_n, _c, 1, _w) * _eps).clamp(_bounds.Lower, _bounds.Upper).MoveToOuterDisposeScope();
            // L2: a grid of pseudo-Gaussian tiles with random signs, scaled to norm ε.
            var delta = zeros_like(x);
            long th = Math.Max(1, _h / 5), tw = Math.Max(1, _w / 5);
            long startH = (_h - th * (_h / th)) / 2, startW = (_w - tw * (_w / tw)) / 2;
            var tile = SquarePatterns.Meta((int)th, (int)tw, transpose: false).to(x.device);
            for (long vh = startH; vh + th <= _h; vh += th)
                for (long vw = startW; vw + tw <= _w; vw += tw)
                {
                    var window = delta.narrow(2, vh, th).narrow(3, vw, tw);
                    window.add_(tile.view(1, 1, th, tw) * RandomSigns(_n, _c, 1, 1));
                }
            return (x + Normalize(delta) * _eps).clamp(_bounds.Lower, _bounds.Upper).MoveToOuterDisposeScope();
        }

        private static Tensor Normalize(Tensor delta) =>
            delta / Geometries.PerSample(Geometries.Flat(delta).norm(1, false, 2).clamp_min(1e-12), delta);

        /// <summary>Per-sample random window of sh×sw: a [N,1,H,W] bool mask and its row/column offsets.</summary>
        private (Tensor Mask, Tensor Rows, Tensor Cols) Window(long n, long sh, long sw)
        {
            var vh = randint(0, _h - sh + 1, [n], dtype: ScalarType.Int64, generator: _gen).to(x.device);
            var vw = randint(0, _w - sw + 1, [n], dtype: ScalarType.Int64, generator: _gen).to(x.device);
            var rows = arange(_h, dtype: ScalarType.Int64, device: x.device).unsqueeze(0) - vh.unsqueeze(1);
            var cols = arange(_w, dtype: ScalarType.Int64, device: x.device).unsqueeze(0) - vw.unsqueeze(1);
            var inRows = rows.ge(0).logical_and(rows.lt(sh));
            var inCols = cols.ge(0).logical_and(cols.lt(sw));
            var mask = inRows.unsqueeze(2).logical_and(inCols.unsqueeze(1)).unsqueeze(1);
            return (mask, rows.clamp(0, sh - 1), cols.clamp(0, sw - 1));
        }

        private Tensor LinfCandidate(Tensor xs, Tensor bests, double p)
        {
            long n = xs.shape[0];
            long s = Math.Max(1, (long)Math.Round(Math.Sqrt(p * _c * _h * _w / _c)));
            var (mask, _, _) = Window(n, Math.Min(s, _h), Math.Min(s, _w));
            var vertex = (xs + RandomSigns(n, _c, 1, 1) * _eps).clamp(_bounds.Lower, _bounds.Upper);
            return where(mask, vertex, bests);
        }

        private Tensor L2Candidate(Tensor xs, Tensor bests, double p)
        {
            long n = xs.shape[0];
            long s = Math.Max(3, (long)Math.Round(Math.Sqrt(p * _c * _h * _w / _c)));
            if (s % 2 == 0) s++;
            long sh = Math.Min(s, _h), sw = Math.Min(s, _w);
            var delta = bests - xs;
            var (mask1, rows, cols) = Window(n, sh, sw);
            var (mask2, _, _) = Window(n, sh, sw);
            var m1 = mask1.to(x.dtype);
            var normsWindow1 = (delta * m1).pow(2).sum([2L, 3L], keepdim: true).sqrt();
            var normsImage = Geometries.PerSample(Geometries.Flat(delta).norm(1, false, 2), delta);
            var normsWindows = Geometries.PerSample(Geometries.Flat(delta * mask1.logical_or(mask2).to(x.dtype)).norm(1, false, 2), delta);

            // The pseudo-Gaussian pattern placed at each sample's window (transposed at random when square).
            var index = rows.unsqueeze(2) * sw + cols.unsqueeze(1);
            var pattern = SquarePatterns.Meta((int)sh, (int)sw, transpose: false).to(x.device).flatten().take(index);
            if (sh == sw)
            {
                var transposed = SquarePatterns.Meta((int)sh, (int)sw, transpose: true).to(x.device).flatten().take(index);
                var coin = rand([n], generator: _gen).lt(0.5).to(x.device).reshape(n, 1, 1);
                pattern = where(coin, transposed, pattern);
            }
            var fresh = pattern.unsqueeze(1) * m1 * RandomSigns(n, _c, 1, 1) + delta * m1 / (normsWindow1 + 1e-12);
            var freshNorm = fresh.pow(2).sum([2L, 3L], keepdim: true).sqrt();
            var budget = ((_eps * _eps - normsImage.pow(2)).clamp_min(0) / _c + normsWindows.pow(2)).sqrt();
            fresh = fresh / (freshNorm + 1e-12) * budget;
            var moved = delta * mask2.logical_not().to(x.dtype);
            moved = moved * (1 - m1) + fresh;
            return (xs + Normalize(moved) * _eps).clamp(_bounds.Lower, _bounds.Upper);
        }
    }
}
