using System.Diagnostics;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>How a stage's candidates replace the points kept so far, on the rows the stage ran on.</summary>
public enum KeepRule
{
    /// <summary>Only successes replace: a point no stage broke keeps its input (ensembles, evaluation).</summary>
    Success,
    /// <summary>The first stage's attempt is kept for its rows; later stages replace it only where they succeed
    /// (targeted rounds: a better report than the clean input).</summary>
    SuccessOrFirstAttempt,
    /// <summary>As <see cref="SuccessOrFirstAttempt"/>, and later stages also replace where their score is higher
    /// (restarts of one attack keep the strongest attempt). Stages must return <see cref="StageOutcome.Score"/>.</summary>
    SuccessOrHigherScore,
}

/// <summary>What a stage returns for the rows it ran on: candidates, their success (bool [n]) and, for
/// <see cref="KeepRule.SuccessOrHigherScore"/>, a per-sample score (higher is stronger). <see cref="Result"/> is the
/// attack's checked result when the stage is an <see cref="IAttack"/> (for observers that record more).</summary>
public sealed record StageOutcome(Tensor Adversarial, Tensor Success, Tensor? Score = null, AttackResult? Result = null)
{
    public static StageOutcome Of(AttackResult result) => new(result.Adversarial, result.Success, null, result);
}

/// <summary>One stage of the protocol: an attack on the points still standing (<paramref name="rows"/> of the batch,
/// int64), with the stage's context.</summary>
public delegate StageOutcome Stage(Tensor rows, Tensor inputs, AttackTargets targets, AttackContext context);

/// <summary>What one stage did, for callers that keep more than the protocol does (per-stage accounting, galleries).
/// <see cref="Rows"/>: int64 rows of the batch it ran on; empty, with <see cref="Outcome"/> null, when none was left.
/// Both live only during the observer's call.</summary>
public sealed record StageReport(int Index, Tensor Rows, StageOutcome? Outcome, double Seconds);

/// <summary>Per-stage randomness: every stage uses the caller's context (its generator continues), or each stage gets
/// a fresh generator seeded from its index (reproducible per stage, independent of what earlier stages consumed).</summary>
public sealed record StageSeeding(Func<int, ulong>? SeedOf = null)
{
    public static StageSeeding Shared { get; } = new();
    public static StageSeeding PerStage(Func<int, ulong> seedOf) => new(seedOf);
}

/// <summary>
/// AutoAttack's protocol, written once: points already broken stay broken; each stage runs only on the points still
/// standing (robust); its candidates merge back by the <see cref="KeepRule"/>; a success is never undone, so robust
/// accuracy can only fall from stage to stage. PGD restarts, APGD rounds, targeted rounds, ensembles, the sanity checks
/// and the evaluator all go through it. Its tensors belong to the caller's dispose scope.
/// </summary>
public sealed class StandingPoints
{
    private readonly Tensor _inputs;
    private readonly AttackTargets _targets;
    private readonly KeepRule _keep;
    private Tensor _adversarial;
    private Tensor _broken;
    private Tensor? _score;
    private int _stagesRun;

    /// <param name="broken">Points that count as broken before any stage (e.g. misclassified clean); none by default.</param>
    public StandingPoints(Tensor inputs, AttackTargets targets, KeepRule keep, Tensor? broken = null)
    {
        _inputs = inputs.detach();
        _targets = targets;
        _keep = keep;
        using var _ = no_grad();
        _adversarial = _inputs.clone();
        _broken = broken?.to(ScalarType.Bool).clone() ?? zeros(inputs.shape[0], dtype: ScalarType.Bool, device: inputs.device);
    }

    /// <summary>Per sample: the kept point (inputs where nothing was kept).</summary>
    public Tensor Adversarial => _adversarial;
    /// <summary>Bool [N]: broken before or by some stage.</summary>
    public Tensor Broken => _broken;
    /// <summary>The kept candidates' scores (<see cref="KeepRule.SuccessOrHigherScore"/>; −∞ where none).</summary>
    public Tensor? Score => _score;

    /// <summary>Each attack as a stage: its checked result (<see cref="IAttack.Run"/>) on the rows still standing.</summary>
    public static Stage[] StagesOf(IClassifier model, IEnumerable<IAttack> attacks) =>
        attacks.Select(a => (Stage)((_, x, t, c) => StageOutcome.Of(a.Run(model, x, t, c)))).ToArray();

    /// <summary>Rows still standing (int64). Synchronises with the host.</summary>
    public Tensor Open() => _broken.logical_not().nonzero().reshape(-1);

    /// <summary>
    /// Runs <paramref name="stages"/> in order, each on the points still standing, with the context
    /// <paramref name="seeding"/> gives it. Without an observer it stops once no point stands; with one, every stage is
    /// reported (empty stages too), after its merge.
    /// </summary>
    public void Run(IReadOnlyList<Stage> stages, AttackContext context, StageSeeding? seeding = null, Action<StageReport>? observe = null)
    {
        for (int i = 0; i < stages.Count; i++)
        {
            context.Cancel.ThrowIfCancellationRequested();
            var watch = Stopwatch.StartNew();
            using var scope = NewDisposeScope();
            var rows = Open();
            if (rows.numel() == 0 && observe is null) break;
            StageOutcome? outcome = null;
            if (rows.numel() > 0)
            {
                using var generator = seeding?.SeedOf is { } seedOf ? new Generator(seedOf(i)) : null;
                var stageContext = generator is null ? context : context with { Generator = generator };
                outcome = stages[i](rows, _inputs.index_select(0, rows), _targets.Select(rows), stageContext);
                Merge(rows, outcome);
            }
            observe?.Invoke(new StageReport(i, rows, outcome, watch.Elapsed.TotalSeconds));
        }
    }

    private void Merge(Tensor rows, StageOutcome o)
    {
        using var _ = no_grad();
        bool first = _stagesRun++ == 0;
        var success = o.Success.to(ScalarType.Bool);
        Tensor take;
        if (_keep == KeepRule.Success || (!first && _keep == KeepRule.SuccessOrFirstAttempt)) take = success;
        else if (first) take = ones_like(success);
        else take = success.logical_or(Need(o.Score).gt(_score!.index_select(0, rows)));

        var candidate = o.Adversarial.detach().to(_adversarial.dtype);
        var merged = where(Geometries.PerSample(take, candidate), candidate, _adversarial.index_select(0, rows));
        Replace(ref _adversarial, _adversarial.index_copy(0, rows, merged));
        // The rows were standing, so their broken flag is exactly the stage's success.
        Replace(ref _broken, _broken.index_copy(0, rows, success));
        if (_keep == KeepRule.SuccessOrHigherScore)
        {
            var score = Need(o.Score).detach();
            var kept = _score ?? full(_inputs.shape[0], Keep(double.NegativeInfinity), dtype: score.dtype, device: score.device);
            var next = kept.index_copy(0, rows, where(take, score, kept.index_select(0, rows))).MoveToOuterDisposeScope();
            _score?.Dispose();
            _score = next;
        }
    }

    private static Tensor Need(Tensor? score) =>
        score ?? throw new InvalidOperationException("KeepRule.SuccessOrHigherScore needs stages that return a score");

    private static void Replace(ref Tensor field, Tensor value)
    {
        value.MoveToOuterDisposeScope();
        field.Dispose();
        field = value;
    }
}
