using Robustness.Core;
using Robustness.Core.Geometry;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

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
    /// <summary>
    /// Successive halving of the budget (null = off, every standing sample gets all <see cref="Queries"/>): after
    /// HalvingFrom queries, and again after 2·, 4·, 8·… that many, only the half of the still-standing samples of the
    /// batch with the smallest margin go on; the others stop there. The samples closest to the boundary, the ones a
    /// random search still breaks late, get the whole budget for a fraction of the queries. The p schedule stays that
    /// of the full <see cref="Queries"/>.
    /// </summary>
    public int? HalvingFrom { get; init; }

    public override string Name => "square";
    public override ModelAccess Needs => ModelAccess.Scores;

    public override IReadOnlyDictionary<string, object> Parameters => HalvingFrom is { } h
        ? Describe(Threat, ("queries", Queries), ("p_init", PInit), ("loss", "margin"), ("halving_from", h), ("halving_keep", 0.5))
        : Describe(Threat, ("queries", Queries), ("p_init", PInit), ("loss", "margin"));

    /// <summary>The paper's piecewise-constant schedule of p, defined on a 10,000-query budget and rescaled.</summary>
    public static double PSchedule(double pInit, int iteration, int queries) => SquarePatterns.PSchedule(pInit, iteration, queries);

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        if (Threat.Norm == Norm.L1) throw new ParameterException("Norm", "square supports the linf and l2 norms, not l1");
        if (Queries < 1) throw new ParameterException("Queries", $"must be ≥ 1, got {Queries}");
        if (!(PInit > 0 && PInit <= 1)) throw new ParameterException(nameof(PInit), $"must be in (0,1], got {PInit}");
        if (HalvingFrom is < 1) throw new ParameterException(nameof(HalvingFrom), $"must be ≥ 1, got {HalvingFrom}");
        var ledger = new QueryLedger((int)inputs.shape[0], Queries);
        if (Threat.Epsilon == 0) return Perturbation.Counted(inputs, ledger);

        using var noGrad = no_grad();
        var shape = inputs.shape;
        var x = inputs.dim() switch
        {
            4 => inputs,
            3 => inputs.reshape(shape[0], shape[1], 1, shape[2]),
            _ => inputs.reshape(shape[0], 1, 1, -1),
        };
        var best = new Search(this, model, x, shape, targets, context, ledger).Run();
        return Perturbation.Counted(best.reshape(shape), ledger);
    }

    /// <summary>The mutable state of one run (kept out of the immutable record). Every model call goes through the
    /// ledger: one query per sample for the initial point and one per iteration while the sample still stands, so a
    /// sample takes at most <see cref="Queries"/> queries.</summary>
    private sealed class Search(SquareAttack attack, IClassifier model, Tensor x, long[] originalShape, AttackTargets targets, AttackContext context, QueryLedger ledger)
    {
        private readonly SquareProposals _proposals = new(x, attack.Threat, context.Generator);

        /// <summary>z_y − max_{j≠y} z_j (≤ 0: adversarial) of the rows owned by <paramref name="owners"/>.</summary>
        private Tensor Margin(Tensor images, AttackTargets t, int[] owners) =>
            -Objectives.Margin.Loss(ledger.Scores(model, images.reshape(ImageShape(images.shape[0])), owners), t);

        private long[] ImageShape(long n) { var s = (long[])originalShape.Clone(); s[0] = n; return s; }

        public Tensor Run()
        {
            var best = _proposals.Initial();
            var margin = Margin(best, targets, Enumerable.Range(0, ledger.Count).ToArray());
            int queries = attack.Queries;
            Tensor? open = null, xs = null, bests = null, margins = null, hitAt = null;
            int[] owners = [];
            AttackTargets? subTargets = null;
            int sinceCompaction = 0;
            // Samples retired by successive halving (they keep their best point and stop querying).
            using var retired = zeros(ledger.Count, ScalarType.Bool, x.device);
            long nextHalving = attack.HalvingFrom ?? long.MaxValue;
            // The initial point may already be adversarial: one query.
            foreach (var r in AttackMath.Indices(margin.le(Keep(0))).cpu().data<long>().ToArray()) ledger.MarkSuccess((int)r);
            for (int i = 1; i < queries; i++)
            {
                context.Cancel.ThrowIfCancellationRequested();
                // Every sample still in the working set has taken i queries by now (the initial one and i − 1 steps).
                bool halve = i >= nextHalving;
                if (open is null || halve || (i - 1) % Math.Max(1, attack.CompactEvery) == 0)
                {
                    // Write the working set back and pick the points that still stand (one host sync).
                    if (open is not null) (best, margin) = WriteBack(best, margin, open, bests!, margins!, owners, hitAt!, sinceCompaction);
                    open?.Dispose(); xs?.Dispose(); bests?.Dispose(); margins?.Dispose(); hitAt?.Dispose();
                    if (halve)
                    {
                        Halve(margin, retired);
                        nextHalving *= 2;
                    }
                    open = AttackMath.Indices(margin.gt(Keep(0)).logical_and(retired.logical_not()));
                    owners = open.cpu().data<long>().Select(r => (int)r).ToArray();
                    if (owners.Length == 0) { open.Dispose(); open = null; break; }
                    xs = x.index_select(0, open);
                    bests = best.index_select(0, open);
                    margins = margin.index_select(0, open);
                    subTargets = targets.Select(open);
                    hitAt = full(owners.Length, Keep(-1L), dtype: ScalarType.Int64, device: x.device);
                    sinceCompaction = 0;
                }
                using var scope = NewDisposeScope();
                var p = PSchedule(attack.PInit, i, queries);
                var candidate = _proposals.Candidate(xs!, bests!, p);
                var newMargin = Margin(candidate, subTargets!, owners);
                sinceCompaction++;
                var better = newMargin.lt(margins!);
                var nextBest = where(Geometries.PerSample(better, candidate), candidate, bests!).MoveToOuterDisposeScope();
                var nextMargin = where(better, newMargin, margins!).MoveToOuterDisposeScope();
                // The query count at which each row first became adversarial, kept on the device until the next write-back.
                var nextHit = where(hitAt!.lt(Keep(0)).logical_and(nextMargin.le(Keep(0))), full_like(hitAt!, Keep(sinceCompaction)), hitAt!).MoveToOuterDisposeScope();
                bests!.Dispose(); margins!.Dispose(); hitAt!.Dispose();
                (bests, margins, hitAt) = (nextBest, nextMargin, nextHit);
                context.StepProgress?.Report(1);
            }
            if (open is not null) (best, margin) = WriteBack(best, margin, open, bests!, margins!, owners, hitAt!, sinceCompaction);
            open?.Dispose(); xs?.Dispose(); bests?.Dispose(); margins?.Dispose(); hitAt?.Dispose();
            return best;
        }

        /// <summary>Retires the half of the standing, not yet retired samples with the largest margin (ties: the later rows).</summary>
        private static void Halve(Tensor margin, Tensor retired)
        {
            using var scope = NewDisposeScope();
            var standing = AttackMath.Indices(margin.gt(Keep(0)).logical_and(retired.logical_not()));
            long count = standing.shape[0];
            long keep = (count + 1) / 2;
            if (count - keep < 1) return;
            var order = margin.index_select(0, standing).sort(0, false, true).Indices;
            var drop = standing.index_select(0, order.narrow(0, keep, count - keep));
            retired.index_fill_(0, drop, Keep(true));
        }

        /// <summary>Working set back into the batch; rows that became adversarial since the last write-back get the
        /// query count they had then (every row of the working set took one query per iteration since).</summary>
        private (Tensor, Tensor) WriteBack(Tensor best, Tensor margin, Tensor open, Tensor bests, Tensor margins, int[] owners, Tensor hitAt, int iterations)
        {
            var hits = hitAt.cpu().data<long>().ToArray();
            for (int j = 0; j < owners.Length; j++)
                if (hits[j] > 0) ledger.MarkSuccess(owners[j], ledger.Used(owners[j]) - (iterations - hits[j]));
            var b = best.index_copy(0, open, bests);
            var m = margin.index_copy(0, open, margins);
            best.Dispose(); margin.Dispose();
            return (b, m);
        }
    }
}
