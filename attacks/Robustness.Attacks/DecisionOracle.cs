using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// What decision-based attacks (HopSkipJump, Boundary) ask of a model: is this point adversarial for its sample?
/// Every question is one query charged to that sample's <see cref="QueryLedger"/>; a sample with no budget left is
/// never asked about. Points are flat [m, D]; <c>owners[j]</c> is the sample row j belongs to.
/// </summary>
internal sealed class DecisionOracle(IClassifier model, Tensor flatInputs, long[] sampleShape, AttackTargets targets, QueryLedger ledger, Bounds bounds)
{
    public QueryLedger Ledger => ledger;
    public int Count => ledger.Count;
    public long Dimension => flatInputs.shape[1];

    /// <summary>Host bools: row j of <paramref name="points"/> is adversarial for sample <paramref name="owners"/>[j].</summary>
    public bool[] IsAdversarial(Tensor points, int[] owners)
    {
        if (owners.Length == 0) return [];
        using var scope = NewDisposeScope();
        var shape = new long[] { owners.Length }.Concat(sampleShape).ToArray();
        var logits = ledger.Scores(model, points.reshape(shape), owners);
        using var index = tensor(owners.Select(o => (long)o).ToArray(), device: targets.Labels.device);
        var adversarial = Criteria.For(targets).IsAdversarial(logits, targets.Select(index));
        return adversarial.cpu().data<bool>().ToArray();
    }

    /// <summary>Samples among <paramref name="candidates"/> that can still afford <paramref name="queries"/> queries.</summary>
    public int[] Affording(IEnumerable<int> candidates, long queries = 1) => candidates.Where(i => ledger.CanAfford(i, queries)).ToArray();

    /// <summary>Per-sample scalars as a [m, 1] column on the inputs' device (for broadcasting over D).</summary>
    public Tensor Column(IEnumerable<double> values) =>
        tensor(values.ToArray(), dtype: ScalarType.Float64).to(flatInputs.dtype).to(flatInputs.device).unsqueeze(1);

    public Tensor Rows(int[] samples) => tensor(samples.Select(s => (long)s).ToArray(), device: flatInputs.device);

    /// <summary>
    /// A starting adversarial per sample, as in HopSkipJump's and Foolbox's blended uniform noise: up to
    /// <paramref name="tries"/> uniform noise images in the bounds until one is adversarial, then a binary search on
    /// the blend (1−α)·x + α·noise to α within 0.001 (the adversarial side is kept). Samples with no adversarial
    /// noise (or no budget) keep x and are reported as not found.
    /// </summary>
    public (Tensor Start, bool[] Found) Initialize(int tries, Generator? generator)
    {
        int n = Count;
        var found = new bool[n];
        var noise = flatInputs.clone();
        for (int k = 0; k < tries; k++)
        {
            var rows = Affording(Enumerable.Range(0, n).Where(i => !found[i]));
            if (rows.Length == 0) break;
            using var scope = NewDisposeScope();
            var candidates = (rand([rows.Length, Dimension], generator: generator).to(flatInputs.dtype).to(flatInputs.device)
                * Keep(bounds.Range) + Keep(bounds.Lower));
            var adversarial = IsAdversarial(candidates, rows);
            var hit = Enumerable.Range(0, rows.Length).Where(j => adversarial[j]).ToArray();
            if (hit.Length == 0) continue;
            foreach (var j in hit) found[rows[j]] = true;
            var next = noise.index_copy(0, Rows(hit.Select(j => rows[j]).ToArray()), candidates.index_select(0, Rows(hit))).MoveToOuterDisposeScope();
            noise.Dispose();
            noise = next;
        }
        var low = new double[n];
        var high = Enumerable.Repeat(1.0, n).ToArray();
        while (true)
        {
            var rows = Affording(Enumerable.Range(0, n).Where(i => found[i] && high[i] - low[i] > 1e-3));
            if (rows.Length == 0) break;
            using var scope = NewDisposeScope();
            var mid = rows.Select(i => 0.5 * (low[i] + high[i])).ToArray();
            var adversarial = IsAdversarial(Blend(rows, noise, mid), rows);
            for (int j = 0; j < rows.Length; j++)
                if (adversarial[j]) high[rows[j]] = mid[j]; else low[rows[j]] = mid[j];
        }
        var all = Enumerable.Range(0, n).ToArray();
        var start = Blend(all, noise, all.Select(i => found[i] ? high[i] : 0.0));
        noise.Dispose();
        return (start, found);
    }

    /// <summary>(1−α)·x + α·towards for the given samples.</summary>
    public Tensor Blend(int[] samples, Tensor towards, IEnumerable<double> alpha)
    {
        using var scope = NewDisposeScope();
        var rows = Rows(samples);
        var x = flatInputs.index_select(0, rows);
        return (x + Column(alpha) * (towards.index_select(0, rows) - x)).MoveToOuterDisposeScope();
    }

    /// <summary>Per-sample distances (host, float64) of flat points to their samples in <paramref name="norm"/>.</summary>
    public double[] Distances(Tensor points, int[] samples, Norm norm)
    {
        using var scope = NewDisposeScope();
        var delta = points.to(ScalarType.Float64) - flatInputs.index_select(0, Rows(samples)).to(ScalarType.Float64);
        return Geometries.For(norm).Distance(delta).cpu().data<double>().ToArray();
    }
}
