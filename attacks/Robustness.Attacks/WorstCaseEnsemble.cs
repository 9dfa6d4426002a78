using System.Diagnostics;
using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks;

/// <summary>Robust accuracy after one stage of an ensemble ("clean" first, then each attack).</summary>
public sealed record AttackStage(string Name, int RobustAfter, double RobustAccuracyAfter, double Seconds);

/// <summary>The per-sample worst case over an ensemble, with the attack that first broke each point.</summary>
/// <remarks><see cref="FirstSuccess"/> is −1 for points no attack broke, including those already adversarial on the
/// clean input (those are flagged in <see cref="CleanBroken"/>).</remarks>
public sealed record EnsembleResult(AttackResult Final, int[] FirstSuccess, IReadOnlyList<AttackStage> Stages) : IDisposable
{
    /// <summary>Per point: adversarial before any attack ran (misclassified clean, or the target already hit).</summary>
    public bool[] CleanBroken { get; init; } = [];

    public void Dispose() => Final.Dispose();
}

/// <summary>
/// AutoAttack's evaluation protocol over a list of attacks (<see cref="StandingPoints"/> with
/// <see cref="KeepRule.Success"/>): points already adversarial on the clean input count as broken at stage "clean";
/// each attack then runs only on the points still robust, and the first success per point is kept. Robust accuracy
/// after the last stage is the per-sample worst case over all attacks. Every member shares the ensemble's threat model.
/// </summary>
public sealed record WorstCaseEnsemble : AttackBase
{
    public WorstCaseEnsemble(ThreatModel threat, IReadOnlyList<IAttack> attacks) : base(threat)
    {
        if (attacks.Count == 0) throw new ParameterException("Attacks", "the ensemble needs at least one attack");
        foreach (var a in attacks)
            if (a.Threat != threat)
                throw new ParameterException("Attacks", $"attack '{a.Name}' has threat model {a.Threat}, but the ensemble uses {threat}");
        Attacks = attacks;
    }

    public IReadOnlyList<IAttack> Attacks { get; }
    /// <summary>The members' randomness: the caller's generator throughout (default), or one seed per member.</summary>
    public StageSeeding Seeding { get; init; } = StageSeeding.Shared;

    public override string Name => "ensemble(" + string.Join("+", Attacks.Select(a => a.Name)) + ")";
    public override ModelAccess Needs => Attacks.Max(a => a.Needs);

    public override IReadOnlyDictionary<string, object> Parameters => Describe(Threat,
        ("attacks", Attacks.Select(a => (object)new Dictionary<string, object>(a.Parameters) { ["name"] = a.Name }).ToArray()));

    /// <summary>Like <see cref="AttackBase.Run"/> (same checks, modes and final step) with per-stage accounting.</summary>
    public EnsembleResult RunDetailed(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext? context = null)
    {
        context = CheckCall(model, inputs, targets, context);
        using var mode = AttackMode(model, context);
        using var scope = NewDisposeScope();
        var x = inputs.detach();
        var (adversarial, firstSuccess, stages, cleanBroken, queries) = Search(model, x, targets, context);
        var final = ThreatModelCheck.Finalize(model, x, adversarial, Threat, targets, null, queries?.Used, queries?.ToSuccess);
        final.MoveToOuterDisposeScope();
        return new EnsembleResult(final, firstSuccess, stages) { CleanBroken = cleanBroken };
    }

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        var s = Search(model, inputs, targets, context);
        return new(s.Adversarial, null, s.Queries?.Used, s.Queries?.ToSuccess);
    }

    /// <summary>Queries per sample summed over the members that count them, plus the clean pass (one query each);
    /// to success: the queries spent on the sample before the breaking member, plus that member's.</summary>
    private (Tensor Adversarial, int[] FirstSuccess, IReadOnlyList<AttackStage> Stages, bool[] CleanBroken, (Tensor Used, Tensor ToSuccess)? Queries) Search(
        IClassifier model, Tensor x, AttackTargets targets, AttackContext context)
    {
        int n = (int)x.shape[0];
        var stages = new List<AttackStage>();
        var first = Enumerable.Repeat(-1, n).ToArray();
        var clock = Stopwatch.StartNew();
        var cleanBrokenMask = Criteria.For(targets).IsAdversarial(AttackMath.CleanLogits(model, x), targets);
        var cleanBroken = cleanBrokenMask.cpu().data<bool>().ToArray();
        bool counted = false;
        var used = Enumerable.Repeat(1L, n).ToArray();
        var toSuccess = Enumerable.Repeat(-1L, n).ToArray();
        var points = new StandingPoints(x, targets, KeepRule.Success, cleanBrokenMask);
        void Record(string name)
        {
            int robust = n - (int)points.Broken.sum().ToInt64();
            stages.Add(new AttackStage(name, robust, n == 0 ? 0 : (double)robust / n, clock.Elapsed.TotalSeconds));
            clock.Restart();
        }
        Record("clean");
        points.Run(StandingPoints.StagesOf(model, Attacks), context with { KeepModelMode = true }, Seeding, report =>
        {
            if (report.Outcome is { } o)
            {
                foreach (var r in report.Rows.masked_select(o.Success).cpu().data<long>().ToArray()) first[r] = report.Index;
                if (o.Result?.Queries is { } q)
                {
                    counted = true;
                    var rows = report.Rows.cpu().data<long>().ToArray();
                    var spent = q.data<long>().ToArray();
                    var hit = o.Result.QueriesToSuccess!.data<long>().ToArray();
                    for (int j = 0; j < rows.Length; j++)
                    {
                        if (hit[j] >= 0 && toSuccess[rows[j]] < 0) toSuccess[rows[j]] = used[rows[j]] + hit[j];
                        used[rows[j]] += spent[j];
                    }
                }
            }
            Record(Attacks[report.Index].Name);
        });
        return (points.Adversarial, first, stages, cleanBroken, counted ? (tensor(used), tensor(toSuccess)) : null);
    }
}
