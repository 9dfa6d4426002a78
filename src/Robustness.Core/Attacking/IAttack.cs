using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Core.Attacking;

/// <summary>Call-time context: randomness, progress and cancellation. Attacks themselves are immutable records.</summary>
/// <param name="KeepModelMode">When true the attack runs in whatever mode the model is in (e.g. train mode inside
/// adversarial training when asked for); by default attacks run in eval mode and restore the previous mode.</param>
public sealed record AttackContext(Generator? Generator = null, IProgress<int>? StepProgress = null, CancellationToken Cancel = default, bool KeepModelMode = false)
{
    public static AttackContext Seeded(long seed) => new(new Generator((ulong)seed));
}

/// <summary>An attack within a threat model. The model and data come at call time.</summary>
public interface IAttack
{
    /// <summary>Registry name, e.g. "pgd".</summary>
    string Name { get; }
    ThreatModel Threat { get; }
    /// <summary>Every parameter that affects the result, for reports.</summary>
    IReadOnlyDictionary<string, object> Parameters { get; }
    /// <summary>What the attack needs from the model: input gradients (white-box), scores (score-based) or only
    /// labels (decision-based, transfer). It runs on any model that gives at least that (<see cref="ModelAccesses.Of"/>).</summary>
    ModelAccess Needs { get; }

    AttackResult Run(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext? context = null);
}

/// <summary>
/// The outcome for a batch. <see cref="Adversarial"/> is inside the threat model (checked); <see cref="Success"/>
/// comes from a fresh forward pass on it; <see cref="Distance"/> is ‖x_adv − x‖_p (float64). Minimum-norm attacks
/// also give <see cref="MinimumNorm"/>: the smallest adversarial distance they found, +∞ where none. Query-based
/// attacks (score-based, decision-based, transfer) give <see cref="Queries"/> and <see cref="QueriesToSuccess"/>.
/// </summary>
public sealed class AttackResult : IDisposable
{
    public AttackResult(Tensor adversarial, Tensor success, Tensor distance, Tensor logits, Tensor? minimumNorm = null,
        Tensor? queries = null, Tensor? queriesToSuccess = null)
    {
        Adversarial = adversarial;
        Success = success;
        Distance = distance;
        Logits = logits;
        MinimumNorm = minimumNorm;
        Queries = queries;
        QueriesToSuccess = queriesToSuccess;
    }

    public Tensor Adversarial { get; }
    /// <summary>Bool [N].</summary>
    public Tensor Success { get; }
    /// <summary>Float64 [N].</summary>
    public Tensor Distance { get; }
    /// <summary>Logits on <see cref="Adversarial"/>, [N, K].</summary>
    public Tensor Logits { get; }
    public Tensor? MinimumNorm { get; }
    /// <summary>Int64 [N] on the CPU: the queries the attack asked of the model per sample (never above its budget);
    /// null for attacks that do not count queries (white-box attacks: their passes are gradient evaluations).</summary>
    public Tensor? Queries { get; }
    /// <summary>Int64 [N] on the CPU: the queries the attack had used when it first held an adversarial for the sample
    /// that the final verdict confirms, −1 where the sample is not adversarial. Null with <see cref="Queries"/>.</summary>
    public Tensor? QueriesToSuccess { get; }

    public void MoveToOuterDisposeScope()
    {
        Adversarial.MoveToOuterDisposeScope();
        Success.MoveToOuterDisposeScope();
        Distance.MoveToOuterDisposeScope();
        Logits.MoveToOuterDisposeScope();
        MinimumNorm?.MoveToOuterDisposeScope();
        Queries?.MoveToOuterDisposeScope();
        QueriesToSuccess?.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Adversarial.Dispose();
        Success.Dispose();
        Distance.Dispose();
        Logits.Dispose();
        MinimumNorm?.Dispose();
        Queries?.Dispose();
        QueriesToSuccess?.Dispose();
    }
}

/// <summary>
/// Base of every attack. <see cref="Run"/> is not overridable: it validates, puts the model in eval mode
/// (restored afterwards), lets the attack <see cref="Perturb"/>, then applies the shared final step
/// (<see cref="ThreatModelCheck.Finalize"/>): clamp, project, measure, verify, and decide success from the model.
/// </summary>
public abstract record AttackBase(ThreatModel Threat) : IAttack
{
    public abstract string Name { get; }
    public virtual ModelAccess Needs => ModelAccess.Gradients;
    public abstract IReadOnlyDictionary<string, object> Parameters { get; }

    public AttackResult Run(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext? context = null) =>
        Attack(model, inputs, targets, context,
            (x, p) => ThreatModelCheck.Finalize(model, x, p.Adversarial, Threat, targets, p.MinimumNorm, p.Queries, p.QueriesToSuccess),
            r => r.MoveToOuterDisposeScope());

    /// <summary>
    /// The attack's points only, for adversarial training: the same <see cref="Perturb"/> as <see cref="Run"/>,
    /// then projected into the ε-ball and clamped to the bounds (<see cref="ThreatModelCheck.Contain"/>), but without
    /// the final step's forward pass, distances and verification — a training step needs neither success nor
    /// distances, and skipping them saves one forward pass and every host synchronisation per batch.
    /// Evaluation must use <see cref="Run"/>: only its result is checked and says which points are adversarial.
    /// </summary>
    public Tensor Craft(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext? context = null) =>
        Attack(model, inputs, targets, context,
            (x, p) => ThreatModelCheck.Contain(x, p.Adversarial, Threat),
            t => t.MoveToOuterDisposeScope());

    /// <summary>Checks, eval mode (restored after), a dispose scope, <see cref="Perturb"/>, then <paramref name="finish"/>;
    /// <paramref name="keep"/> moves what finish returns out of the scope.</summary>
    private T Attack<T>(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext? context,
        Func<Tensor, Perturbation, T> finish, Action<T> keep)
    {
        context = CheckCall(model, inputs, targets, context);
        using var mode = AttackMode(model, context);
        using var scope = NewDisposeScope();
        var x = inputs.detach();
        var result = finish(x, Perturb(model, x, targets, context));
        keep(result);
        return result;
    }

    /// <summary>The checks every entry point makes before attacking; returns the context to use.</summary>
    protected AttackContext CheckCall(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext? context)
    {
        Threat.Validate();
        var access = ModelAccesses.Of(model);
        if (access < Needs)
            throw new ParameterException("Attack", $"'{Name}' needs {Needs.Describe()}, but the model gives {access.Describe()}");
        if (inputs.shape[0] != targets.Labels.shape[0])
            throw new ArgumentException($"{inputs.shape[0]} inputs but {targets.Labels.shape[0]} labels");
        return context ?? new AttackContext();
    }

    /// <summary>Eval mode for the attack (restored on dispose), unless the context keeps the model's mode.</summary>
    protected static IDisposable? AttackMode(IClassifier model, AttackContext context) =>
        model is IGradientClassifier g && !context.KeepModelMode ? g.EvalMode() : null;

    /// <summary>The attack proper. May return points slightly outside the ball or bounds; the final step fixes and checks that.</summary>
    protected abstract Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context);

    protected IPerturbationGeometry Geometry => Geometries.For(Threat.Norm);

    /// <summary>What <see cref="Perturb"/> hands to the final step: the points, a minimum norm per sample for
    /// minimum-norm attacks, and for query-based attacks the per-sample query counts (int64 [N]).</summary>
    protected readonly record struct Perturbation(Tensor Adversarial, Tensor? MinimumNorm = null, Tensor? Queries = null, Tensor? QueriesToSuccess = null)
    {
        /// <summary>The points with a ledger's counts.</summary>
        public static Perturbation Counted(Tensor adversarial, QueryLedger ledger, Tensor? minimumNorm = null)
        {
            var (used, toSuccess) = ledger.ToTensors();
            return new Perturbation(adversarial, minimumNorm, used, toSuccess);
        }
    }

    protected static Dictionary<string, object> Describe(ThreatModel threat, params (string Key, object Value)[] extra)
    {
        var d = new Dictionary<string, object>
        {
            ["norm"] = threat.Norm.Name(),
            ["eps"] = threat.Epsilon,
            ["bounds"] = threat.Bounds.ToString(),
        };
        foreach (var (k, v) in extra) d[k] = v;
        return d;
    }
}
