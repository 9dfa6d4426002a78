using Robustness.Core;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// The Square Attack's proposals (Andriushchenko et al. 2020) for images [N, C, H, W]: the initial point (vertical
/// ±ε stripes for L∞, a grid of pseudo-Gaussian tiles for L2) and the per-query candidates (a random square window
/// per sample set to a vertex of the L∞ ball, or for L2 mass moved between two windows with the paper's pattern).
/// </summary>
internal sealed class SquareProposals(Tensor x, ThreatModel threat, Generator? generator)
{
    private readonly long _n = x.shape[0], _c = x.shape[1], _h = x.shape[2], _w = x.shape[3];
    private readonly double _eps = threat.Epsilon;
    private readonly Bounds _bounds = threat.Bounds;
    private readonly Generator? _gen = generator;
    private readonly bool _linf = threat.Norm == Norm.Linf;

    /// <summary>A candidate for each row of <paramref name="xs"/> (clean) around <paramref name="bests"/>, with window fraction p.</summary>
    public Tensor Candidate(Tensor xs, Tensor bests, double p) => _linf ? LinfCandidate(xs, bests, p) : L2Candidate(xs, bests, p);

    private Tensor RandomSigns(params long[] shape) =>
        rand(shape, generator: _gen).lt(Keep(0.5)).to(x.dtype).mul(Keep(2)).sub(Keep(1)).to(x.device);

    public Tensor Initial()
    {
        using var scope = NewDisposeScope();
        if (_linf)
            // Vertical stripes of ±ε, as in the paper.
            return (x + RandomSigns(_n, _c, 1, _w) * Keep(_eps)).clamp(Keep(_bounds.Lower), Keep(_bounds.Upper)).MoveToOuterDisposeScope();
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
        return (x + Normalize(delta) * Keep(_eps)).clamp(Keep(_bounds.Lower), Keep(_bounds.Upper)).MoveToOuterDisposeScope();
    }

    private static Tensor Normalize(Tensor delta) =>
        delta / Geometries.PerSample(Geometries.Flat(delta).norm(1, false, 2).clamp_min(Keep(1e-12)), delta);

    /// <summary>Per-sample random window of sh×sw: a [N,1,H,W] bool mask and its row/column offsets.</summary>
    private (Tensor Mask, Tensor Rows, Tensor Cols) Window(long n, long sh, long sw)
    {
        var vh = randint(0, _h - sh + 1, [n], dtype: ScalarType.Int64, generator: _gen).to(x.device);
        var vw = randint(0, _w - sw + 1, [n], dtype: ScalarType.Int64, generator: _gen).to(x.device);
        var rows = arange(Keep(_h), dtype: ScalarType.Int64, device: x.device).unsqueeze(0) - vh.unsqueeze(1);
        var cols = arange(Keep(_w), dtype: ScalarType.Int64, device: x.device).unsqueeze(0) - vw.unsqueeze(1);
        var inRows = rows.ge(Keep(0)).logical_and(rows.lt(Keep(sh)));
        var inCols = cols.ge(Keep(0)).logical_and(cols.lt(Keep(sw)));
        var mask = inRows.unsqueeze(2).logical_and(inCols.unsqueeze(1)).unsqueeze(1);
        return (mask, rows.clamp(Keep(0), Keep(sh - 1)), cols.clamp(Keep(0), Keep(sw - 1)));
    }

    private Tensor LinfCandidate(Tensor xs, Tensor bests, double p)
    {
        long n = xs.shape[0];
        long s = Math.Max(1, (long)Math.Round(Math.Sqrt(p * _c * _h * _w / _c)));
        var (mask, _, _) = Window(n, Math.Min(s, _h), Math.Min(s, _w));
        var vertex = (xs + RandomSigns(n, _c, 1, 1) * Keep(_eps)).clamp(Keep(_bounds.Lower), Keep(_bounds.Upper));
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
        var normsWindow1 = (delta * m1).pow(Keep(2)).sum([2L, 3L], keepdim: true).sqrt();
        var normsImage = Geometries.PerSample(Geometries.Flat(delta).norm(1, false, 2), delta);
        var normsWindows = Geometries.PerSample(Geometries.Flat(delta * mask1.logical_or(mask2).to(x.dtype)).norm(1, false, 2), delta);

        // The pseudo-Gaussian pattern placed at each sample's window (transposed at random when square).
        var index = rows.unsqueeze(2) * Keep(sw) + cols.unsqueeze(1);
        var pattern = SquarePatterns.Meta((int)sh, (int)sw, transpose: false).to(x.device).flatten().take(index);
        if (sh == sw)
        {
            var transposed = SquarePatterns.Meta((int)sh, (int)sw, transpose: true).to(x.device).flatten().take(index);
            var coin = rand([n], generator: _gen).lt(Keep(0.5)).to(x.device).reshape(n, 1, 1);
            pattern = where(coin, transposed, pattern);
        }
        var fresh = pattern.unsqueeze(1) * m1 * RandomSigns(n, _c, 1, 1) + delta * m1 / (normsWindow1 + Keep(1e-12));
        var freshNorm = fresh.pow(Keep(2)).sum([2L, 3L], keepdim: true).sqrt();
        var budget = ((Keep(_eps * _eps) - normsImage.pow(Keep(2))).clamp_min(Keep(0)) / Keep(_c) + normsWindows.pow(Keep(2))).sqrt();
        fresh = fresh / (freshNorm + Keep(1e-12)) * budget;
        var moved = delta * mask2.logical_not().to(x.dtype);
        moved = moved * (Keep(1) - m1) + fresh;
        return (xs + Normalize(moved) * Keep(_eps)).clamp(Keep(_bounds.Lower), Keep(_bounds.Upper));
    }
}
