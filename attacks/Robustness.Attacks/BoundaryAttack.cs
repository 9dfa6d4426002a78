using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// The Boundary Attack (Brendel, Rauber &amp; Bethge 2018), the simplest decision-based attack: from an adversarial
/// start (blended uniform noise) it walks along the decision boundary towards the clean input. Each step draws a
/// Gaussian direction orthogonal to x* − x̃, scaled to δ·‖x* − x̃‖ and projected back onto the sphere around x*
/// (the spherical step), then moves towards x* by ε·‖x* − x̃‖ (the source step); the candidate is kept when it is
/// adversarial and closer. δ and ε adapt to the success rates (Foolbox 3's rules: every 10 steps the spherical
/// candidate is queried too; δ and ε grow ×1.5 above 50 % spherical success over 100 checks and shrink below 20 %,
/// ε alone grows above 25 % step success over 30 checks and shrinks below 10 %). L2; minimum norm; every query is
/// charged to the sample's budget.
/// </summary>
public sealed record BoundaryAttack(ThreatModel Threat) : AttackBase(Threat)
{
    public int Queries { get; init; } = 10_000;
    /// <summary>Initial spherical step δ, relative to the distance (Foolbox's 0.01).</summary>
    public double SphericalStep { get; init; } = 0.01;
    /// <summary>Initial source step ε, relative to the distance (Foolbox's 0.01).</summary>
    public double SourceStep { get; init; } = 0.01;
    /// <summary>A sample stops once its source step falls below this (Foolbox's 1e-7).</summary>
    public double SourceStepConvergence { get; init; } = 1e-7;
    public double StepAdaptation { get; init; } = 1.5;
    public int UpdateStatsEvery { get; init; } = 10;
    public int InitTries { get; init; } = 100;
    public bool EarlyStop { get; init; }

    public override string Name => "boundary";
    public override ModelAccess Needs => ModelAccess.Labels;

    public override IReadOnlyDictionary<string, object> Parameters => Describe(Threat,
        ("queries", Queries), ("spherical_step", SphericalStep), ("source_step", SourceStep), ("source_step_convergence", SourceStepConvergence),
        ("step_adaptation", StepAdaptation), ("update_stats_every", UpdateStatsEvery), ("init_tries", InitTries), ("early_stop", EarlyStop));

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        if (Threat.Norm != Norm.L2) throw new ParameterException("Norm", "boundary is an L2 attack");
        if (targets.Labels.dim() != 1) throw new InputException("attack 'boundary': needs class labels, not multi-hot labels");
        if (targets.Targeted) throw new ParameterException("Targeted", "boundary is untargeted here (a targeted run needs a starting image of the target class)");
        if (Queries < 1) throw new ParameterException(nameof(Queries), $"must be ≥ 1, got {Queries}");
        foreach (var (name, v) in new[] { (nameof(SphericalStep), SphericalStep), (nameof(SourceStep), SourceStep), (nameof(SourceStepConvergence), SourceStepConvergence) })
            if (!(v > 0) || double.IsInfinity(v)) throw new ParameterException(name, $"must be a finite number > 0, got {v}");
        if (!(StepAdaptation > 1) || double.IsInfinity(StepAdaptation)) throw new ParameterException(nameof(StepAdaptation), $"must be a finite number > 1, got {StepAdaptation}");
        if (UpdateStatsEvery < 1) throw new ParameterException(nameof(UpdateStatsEvery), $"must be ≥ 1, got {UpdateStatsEvery}");
        if (InitTries < 1) throw new ParameterException(nameof(InitTries), $"must be ≥ 1, got {InitTries}");
        var ledger = new QueryLedger((int)inputs.shape[0], Queries);
        if (Threat.Epsilon == 0 || inputs.shape[0] == 0) return Perturbation.Counted(inputs, ledger);

        using var noGrad = no_grad();
        var x = inputs.reshape(inputs.shape[0], -1);
        var oracle = new DecisionOracle(model, x, inputs.shape.Skip(1).ToArray(), targets, ledger, Threat.Bounds);
        var (best, distance) = Walk(oracle, x, context);
        return Perturbation.Counted(best.reshape(inputs.shape), ledger, tensor(distance, dtype: ScalarType.Float64).to(inputs.device));
    }

    private (Tensor Best, double[] Distance) Walk(DecisionOracle oracle, Tensor x, AttackContext context)
    {
        int n = oracle.Count;
        var ledger = oracle.Ledger;
        var (best, found) = oracle.Initialize(InitTries, context.Generator);
        var all = Enumerable.Range(0, n).ToArray();
        var dist = oracle.Distances(best, all, Norm.L2).Select((d, i) => found[i] ? d : double.PositiveInfinity).ToArray();
        foreach (var i in all.Where(i => dist[i] <= Threat.Epsilon)) ledger.MarkSuccess(i);
        var spherical = Enumerable.Repeat(SphericalStep, n).ToArray();
        var source = Enumerable.Repeat(SourceStep, n).ToArray();
        var sphericalStats = all.Select(_ => new List<bool>()).ToArray();
        var stepStats = all.Select(_ => new List<bool>()).ToArray();
        for (int step = 1; ; step++)
        {
            context.Cancel.ThrowIfCancellationRequested();
            var rows = all.Where(i => found[i] && ledger.CanAfford(i) && source[i] >= SourceStepConvergence
                && !(EarlyStop && dist[i] <= Threat.Epsilon)).ToArray();
            if (rows.Length == 0) break;
            using var scope = NewDisposeScope();
            var index = oracle.Rows(rows);
            var xs = x.index_select(0, index);
            var current = best.index_select(0, index);
            var (candidates, sphericalCandidates) = Proposals(oracle, xs, current, rows.Select(i => spherical[i]), rows.Select(i => source[i]), context.Generator);
            var adversarial = oracle.IsAdversarial(candidates, rows);
            var candidateDist = oracle.Distances(candidates, rows, Norm.L2);
            var take = Enumerable.Range(0, rows.Length).Where(j => adversarial[j] && candidateDist[j] < dist[rows[j]]).ToArray();
            if (take.Length > 0)
            {
                var next = best.index_copy(0, oracle.Rows(take.Select(j => rows[j]).ToArray()), candidates.index_select(0, oracle.Rows(take))).MoveToOuterDisposeScope();
                best.Dispose();
                best = next;
                foreach (var j in take)
                {
                    dist[rows[j]] = candidateDist[j];
                    if (dist[rows[j]] <= Threat.Epsilon) ledger.MarkSuccess(rows[j]);
                }
            }
            if (step % UpdateStatsEvery != 0) continue;
            var check = Enumerable.Range(0, rows.Length).Where(j => ledger.CanAfford(rows[j])).ToArray();
            var sphericalAdversarial = oracle.IsAdversarial(sphericalCandidates.index_select(0, oracle.Rows(check)), check.Select(j => rows[j]).ToArray());
            for (int k = 0; k < check.Length; k++)
            {
                int i = rows[check[k]];
                Adapt(sphericalStats[i], sphericalAdversarial[k], 100, 0.5, 0.2, up: () => { spherical[i] *= StepAdaptation; source[i] *= StepAdaptation; },
                    down: () => { spherical[i] /= StepAdaptation; source[i] /= StepAdaptation; });
                Adapt(stepStats[i], adversarial[check[k]], 30, 0.25, 0.1, up: () => source[i] *= StepAdaptation, down: () => source[i] /= StepAdaptation);
            }
        }
        return (best, dist);
    }

    /// <summary>Appends an outcome; when <paramref name="size"/> are collected, adapts by their success rate and starts over.</summary>
    private static void Adapt(List<bool> stats, bool outcome, int size, double high, double low, Action up, Action down)
    {
        stats.Add(outcome);
        if (stats.Count < size) return;
        double rate = stats.Count(s => s) / (double)stats.Count;
        if (rate > high) up();
        else if (rate < low) down();
        stats.Clear();
    }

    /// <summary>The step's candidates [m, D] and their spherical parts (Brendel et al.'s orthogonal step, then the source step).</summary>
    private (Tensor Candidates, Tensor Spherical) Proposals(DecisionOracle oracle, Tensor xs, Tensor current, IEnumerable<double> sphericalStep, IEnumerable<double> sourceStep, Generator? generator)
    {
        var toSource = xs - current;
        var sourceNorm = toSource.norm(1, true, 2).clamp_min(Keep(1e-12));
        var unit = toSource / sourceNorm;
        var eta = randn(current.shape, generator: generator).to(current.dtype).to(current.device);
        eta = eta - (eta * unit).sum(1, true) * unit;
        eta = eta * oracle.Column(sphericalStep) * sourceNorm / eta.norm(1, true, 2).clamp_min(Keep(1e-12));
        var direction = eta - toSource;
        var spherical = (xs + direction / direction.norm(1, true, 2).clamp_min(Keep(1e-12)) * sourceNorm).clamp(Keep(Threat.Bounds.Lower), Keep(Threat.Bounds.Upper));
        var newSource = xs - spherical;
        var newNorm = newSource.norm(1, true, 2).clamp_min(Keep(1e-12));
        var length = (oracle.Column(sourceStep) * sourceNorm + newNorm - sourceNorm).clamp_min(Keep(0));
        var candidates = (spherical + length / newNorm * newSource).clamp(Keep(Threat.Bounds.Lower), Keep(Threat.Bounds.Upper));
        return (candidates, spherical);
    }
}
