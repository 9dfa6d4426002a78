using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// One HopSkipJump run on a batch (flat inputs [n, D]): the mutable state kept out of the immutable record. All
/// samples iterate together; each phase asks only about samples that can still afford a query, so a sample's budget
/// ends the run for it wherever it is (its closest adversarial so far is kept).
/// </summary>
internal sealed class HopSkipJumpSearch(HopSkipJumpAttack attack, DecisionOracle oracle, Tensor x, AttackContext context)
{
    /// <summary>Model rows per call of the gradient estimate (bounds memory; B_t may reach 10⁴ per sample).</summary>
    private const int ChunkRows = 4096;
    /// <summary>Halvings of the geometric step before giving up on an iteration's step.</summary>
    private const int MaxHalvings = 40;

    private readonly Norm _norm = attack.Threat.Norm;
    private readonly Bounds _bounds = attack.Threat.Bounds;
    private readonly long _d = x.shape[1];
    private readonly double _theta = attack.Theta(x.shape[1]);
    private QueryLedger Ledger => oracle.Ledger;

    public (Tensor Best, double[] Distance) Run()
    {
        int n = oracle.Count;
        var (current, found) = oracle.Initialize(attack.InitTries, context.Generator);
        var dist = Enumerable.Repeat(double.PositiveInfinity, n).ToArray();
        // The distance of each sample's point before its last boundary search (the paper's dist_post_update, for δ_t).
        var postUpdate = Enumerable.Repeat(double.PositiveInfinity, n).ToArray();
        var best = x.clone();
        var bestDist = Enumerable.Repeat(double.PositiveInfinity, n).ToArray();
        var all = Enumerable.Range(0, n).Where(i => found[i]).ToArray();
        current = BoundarySearch(current, all, dist, postUpdate);
        best = KeepClosest(best, bestDist, current, all, dist);
        for (int t = 1; ; t++)
        {
            context.Cancel.ThrowIfCancellationRequested();
            var rows = all.Where(i => Ledger.Remaining(i) > 0 && !(attack.EarlyStop && bestDist[i] <= attack.Threat.Epsilon)).ToArray();
            if (rows.Length == 0) break;
            using var scope = NewDisposeScope();
            var (previous, previousBest) = (current, best);
            var delta = rows.Select(i => t == 1 ? 0.1 * _bounds.Range : (_norm == Norm.L2 ? Math.Sqrt(_d) : _d) * _theta * postUpdate[i]).ToArray();
            int evaluations = (int)Math.Min(attack.InitialEvaluations * Math.Sqrt(t), attack.MaxEvaluations);
            var grad = Gradient(current, rows, delta, evaluations);
            var update = _norm == Norm.L2 ? grad : grad.sign();
            var (candidate, accepted) = StepSearch(current, rows, update, dist, t);
            var moved = Enumerable.Range(0, rows.Length).Where(j => accepted[j]).Select(j => rows[j]).ToArray();
            if (moved.Length > 0)
            {
                var next = current.index_copy(0, oracle.Rows(moved), candidate.index_select(0, oracle.Rows(Enumerable.Range(0, rows.Length).Where(j => accepted[j]).ToArray())));
                current = BoundarySearch(next, moved, dist, postUpdate);
                best = KeepClosest(best, bestDist, current, rows, dist);
            }
            else KeepClosest(best, bestDist, current, rows, dist);
            // Tensors made in this iteration's scope replace the previous ones, which are released.
            if (!ReferenceEquals(current, previous)) { current.MoveToOuterDisposeScope(); previous.Dispose(); }
            if (!ReferenceEquals(best, previousBest)) { best.MoveToOuterDisposeScope(); previousBest.Dispose(); }
            context.StepProgress?.Report(1);
        }
        current.Dispose();
        return (best, bestDist);
    }

    /// <summary>The point at blend α between x and <paramref name="towards"/>: L2 the segment, L∞ the box of radius α.</summary>
    private Tensor Point(int[] samples, Tensor towards, double[] alpha)
    {
        if (_norm == Norm.L2) return oracle.Blend(samples, towards, alpha);
        using var scope = NewDisposeScope();
        var rows = oracle.Rows(samples);
        var xs = x.index_select(0, rows);
        var a = oracle.Column(alpha);
        return (xs + torch.minimum(torch.maximum(towards.index_select(0, rows) - xs, -a), a)).MoveToOuterDisposeScope();
    }

    /// <summary>Binary search between x and the (adversarial) current point of each sample, to θ (L2: on the blend
    /// α ∈ [0,1]; L∞: on the box radius, to min(θ·d∞, θ)); the adversarial side is kept. Updates <paramref name="dist"/>
    /// (after the search) and <paramref name="postUpdate"/> (before it).</summary>
    private Tensor BoundarySearch(Tensor current, int[] samples, double[] dist, double[] postUpdate)
    {
        if (samples.Length == 0) return current.clone();
        var before = current.index_select(0, oracle.Rows(samples));
        var start = oracle.Distances(before, samples, Norm.Linf);
        var pre = _norm == Norm.Linf ? start : oracle.Distances(before, samples, _norm);
        for (int j = 0; j < samples.Length; j++) postUpdate[samples[j]] = pre[j];
        var high = _norm == Norm.L2 ? Enumerable.Repeat(1.0, samples.Length).ToArray() : start;
        var threshold = _norm == Norm.L2 ? Enumerable.Repeat(_theta, samples.Length).ToArray() : start.Select(s => Math.Min(s * _theta, _theta)).ToArray();
        var low = new double[samples.Length];
        while (true)
        {
            var open = Enumerable.Range(0, samples.Length)
                .Where(j => (high[j] - low[j]) > threshold[j] && Ledger.CanAfford(samples[j])).ToArray();
            if (open.Length == 0) break;
            using var scope = NewDisposeScope();
            var owners = open.Select(j => samples[j]).ToArray();
            var mid = open.Select(j => 0.5 * (low[j] + high[j])).ToArray();
            var adversarial = oracle.IsAdversarial(Point(owners, current, mid), owners);
            for (int k = 0; k < open.Length; k++)
                if (adversarial[k]) high[open[k]] = mid[k]; else low[open[k]] = mid[k];
        }
        using var s2 = NewDisposeScope();
        var points = Point(samples, current, high);
        var d = oracle.Distances(points, samples, _norm);
        for (int j = 0; j < samples.Length; j++) dist[samples[j]] = d[j];
        return current.index_copy(0, oracle.Rows(samples), points).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The estimate of the boundary normal at each sample's current point (unit L2 rows [m, D]): B = min(B_t, budget
    /// left) probes u_b (Gaussian for L2, uniform in [−1,1]^D for L∞, normalised), φ_b = ±1 from the label at
    /// clip(x_t + δ·u_b), and mean((φ_b − φ̄)·u_b), or ±mean(u_b) when every φ_b agrees.
    /// </summary>
    private Tensor Gradient(Tensor current, int[] rows, double[] delta, int evaluations)
    {
        int m = rows.Length;
        var count = rows.Select(i => (int)Math.Min(evaluations, Ledger.Remaining(i))).ToArray();
        var sumPhiU = zeros([m, _d], dtype: x.dtype, device: x.device);
        var sumU = zeros([m, _d], dtype: x.dtype, device: x.device);
        var sumPhi = new double[m];
        // Pieces of at most ChunkRows probes; a sample's probes may span several pieces.
        var pieces = new List<(int Item, int Probes)>();
        for (int j = 0; j < m; j++)
            for (int done = 0; done < count[j]; done += ChunkRows) pieces.Add((j, Math.Min(ChunkRows, count[j] - done)));
        for (int p = 0; p < pieces.Count;)
        {
            var chunk = new List<(int Item, int Probes)>();
            int rowsInChunk = 0;
            while (p < pieces.Count && (chunk.Count == 0 || rowsInChunk + pieces[p].Probes <= ChunkRows)) { chunk.Add(pieces[p]); rowsInChunk += pieces[p++].Probes; }
            using var scope = NewDisposeScope();
            var items = chunk.SelectMany(c => Enumerable.Repeat(c.Item, c.Probes)).ToArray();
            var itemIndex = oracle.Rows(items);
            var owners = items.Select(j => rows[j]).ToArray();
            var basePoints = current.index_select(0, oracle.Rows(owners));
            var u = _norm == Norm.L2
                ? randn([items.Length, _d], generator: context.Generator)
                : rand([items.Length, _d], generator: context.Generator) * Keep(2) - Keep(1);
            u = u.to(x.dtype).to(x.device);
            u = u / u.norm(1, true, 2).clamp_min(Keep(1e-12));
            var radius = oracle.Column(items.Select(j => delta[j]));
            var probes = (basePoints + radius * u).clamp(Keep(_bounds.Lower), Keep(_bounds.Upper));
            var direction = (probes - basePoints) / radius;
            var adversarial = oracle.IsAdversarial(probes, owners);
            var phi = oracle.Column(adversarial.Select(a => a ? 1.0 : -1.0));
            sumPhiU.index_add_(0, itemIndex, phi * direction, Keep(1));
            sumU.index_add_(0, itemIndex, direction, Keep(1));
            for (int k = 0; k < items.Length; k++) sumPhi[items[k]] += adversarial[k] ? 1 : -1;
        }
        var b = count.Select(c => (double)Math.Max(1, c)).ToArray();
        var mean = Enumerable.Range(0, m).Select(j => sumPhi[j] / b[j]).ToArray();
        // φ̄ = ±1: ±mean(u); otherwise mean(φu) − φ̄·mean(u) = mean((φ − φ̄)u).
        var uWeight = oracle.Column(mean.Select(f => Math.Abs(f) == 1 ? f : -f).Zip(b, (w, n) => w / n));
        var phiWeight = oracle.Column(mean.Zip(b, (f, n) => Math.Abs(f) == 1 ? 0 : 1 / n));
        var grad = sumPhiU * phiWeight + sumU * uWeight;
        return grad / grad.norm(1, true, 2).clamp_min(Keep(1e-12));
    }

    /// <summary>Geometric step-size search: ξ = d_t/√t, halved until clip(x_t + ξ·v) is adversarial (or the budget ends).</summary>
    private (Tensor Candidate, bool[] Accepted) StepSearch(Tensor current, int[] rows, Tensor update, double[] dist, int t)
    {
        int m = rows.Length;
        var xi = rows.Select(i => dist[i] / Math.Sqrt(t)).ToArray();
        var accepted = new bool[m];
        var candidate = current.index_select(0, oracle.Rows(rows));
        for (int h = 0; h < MaxHalvings; h++)
        {
            var open = Enumerable.Range(0, m).Where(j => !accepted[j] && Ledger.CanAfford(rows[j])).ToArray();
            if (open.Length == 0) break;
            using var scope = NewDisposeScope();
            var local = oracle.Rows(open);
            var trial = (current.index_select(0, oracle.Rows(open.Select(j => rows[j]).ToArray()))
                + oracle.Column(open.Select(j => xi[j])) * update.index_select(0, local)).clamp(Keep(_bounds.Lower), Keep(_bounds.Upper));
            var adversarial = oracle.IsAdversarial(trial, open.Select(j => rows[j]).ToArray());
            var took = Enumerable.Range(0, open.Length).Where(k => adversarial[k]).ToArray();
            foreach (var k in open) xi[k] /= 2;
            foreach (var k in took) accepted[open[k]] = true;
            if (took.Length > 0)
                candidate.index_copy_(0, oracle.Rows(took.Select(k => open[k]).ToArray()), trial.index_select(0, oracle.Rows(took)));
        }
        return (candidate, accepted);
    }

    /// <summary>Keeps, per sample, the closest adversarial so far (a new tensor when any improved, else
    /// <paramref name="best"/> itself), and marks the samples now inside ε.</summary>
    private Tensor KeepClosest(Tensor best, double[] bestDist, Tensor current, int[] samples, double[] dist)
    {
        var better = samples.Where(i => dist[i] < bestDist[i]).ToArray();
        foreach (var i in better) bestDist[i] = dist[i];
        foreach (var i in samples.Where(i => bestDist[i] <= attack.Threat.Epsilon)) Ledger.MarkSuccess(i);
        if (better.Length == 0) return best;
        var rows = oracle.Rows(better);
        return best.index_copy(0, rows, current.index_select(0, rows));
    }
}
