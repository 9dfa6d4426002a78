using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks;

/// <summary>
/// Auto-PGD (Croce &amp; Hein 2020): PGD with momentum (α = 0.75) and a step size that starts at 2ε and halves at
/// checkpoints p₀ = 0, p₁ = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06) when (a) at most ρ = 0.75 of the
/// steps since the last checkpoint increased the loss, or (b) neither the step size nor the best loss changed since
/// the previous checkpoint; on halving a sample restarts from its best point.
/// Untargeted with CE or DLR (APGD-CE, APGD-DLR); with <see cref="TargetCount"/> &gt; 0 it is APGD-T: one targeted-DLR
/// run per each of the top-k wrong classes, each on the points still robust, success judged as misclassification.
/// L∞ and L2 follow the paper; L1 uses the same schedule with the sparse L1 step of the geometry.
/// </summary>
public sealed record AutoPgdAttack(ThreatModel Threat) : AttackBase(Threat)
{
    public const double Rho = 0.75;
    public const double MomentumAlpha = 0.75;

    public int Steps { get; init; } = 100;
    /// <summary>Runs from fresh random starts, each only on the points still robust.</summary>
    public int Restarts { get; init; } = 1;
    /// <summary>The objective of untargeted runs (CE or DLR; any objective works).</summary>
    public IAttackObjective Objective { get; init; } = Objectives.CrossEntropy;
    /// <summary>0: untargeted (or the caller's own targets). k &gt; 0: APGD-T over the k most likely wrong classes.</summary>
    public int TargetCount { get; init; }
    /// <summary>Initial step size relative to ε (2 in the paper).</summary>
    public double InitialRelativeStepSize { get; init; } = 2.0;
    public double L1Sparsity { get; init; } = L1Geometry.DefaultSparsity;

    public override string Name => TargetCount > 0 ? "apgd-t" : "apgd-" + Objective.Name;

    public override IReadOnlyDictionary<string, object> Parameters => Describe(Threat,
        ("steps", Steps), ("restarts", Restarts), ("loss", TargetCount > 0 ? "dlr-targeted" : Objective.Name),
        ("target_classes", TargetCount), ("initial_step_size", InitialRelativeStepSize * Threat.Epsilon),
        ("rho", Rho), ("momentum", MomentumAlpha), ("l1_sparsity", L1Sparsity));

    /// <summary>
    /// Checkpoint iterations w_j = ⌈p_j · Steps⌉ (without 0). Computed in integers as the reference implementation
    /// does (first interval 22% of the steps, each next one 3% shorter, at least 6%), which avoids float rounding.
    /// </summary>
    public static IReadOnlyList<int> Checkpoints(int steps)
    {
        var points = new List<int>();
        int length = Math.Max((int)(0.22 * steps), 1);
        int shrink = Math.Max((int)(0.03 * steps), 1);
        int minimum = Math.Max((int)(0.06 * steps), 1);
        for (int at = length; at < steps; length = Math.Max(length - shrink, minimum), at += length)
            points.Add(at);
        return points;
    }

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        if (Steps < 1) throw new InputException($"--steps: {Name} needs at least 1 step, got {Steps}");
        if (Restarts < 1) throw new InputException($"--restarts: must be ≥ 1, got {Restarts}");
        if (Threat.Epsilon == 0) return new Perturbation(inputs);
        var geometry = Geometries.For(Threat.Norm, L1Sparsity);
        var criterion = Criteria.For(targets);

        var clean = AttackMath.CleanLogits(model, inputs);
        // DLR reads the 3rd (untargeted) or 4th (targeted) largest logit.
        bool targetedDlr = TargetCount > 0 || (targets.Targeted && Objective is DlrObjective);
        int needed = targetedDlr ? 4 : Objective is DlrObjective ? 3 : 2;
        if (clean.shape[1] < needed)
            throw new InputException($"attack '{Name}': the DLR loss needs at least {needed} classes, the model has {clean.shape[1]}");
        var broken = criterion.IsAdversarial(clean, targets);
        var adv = inputs.clone();
        Tensor? bestLoss = null;
        Tensor? topTargets = null;
        int rounds = Restarts;
        if (TargetCount > 0 && !targets.Targeted)
        {
            if (targets.Labels.dim() != 1) throw new InputException("apgd-t: needs class labels, not multi-hot labels");
            int k = Math.Min(TargetCount, (int)clean.shape[1] - 1);
            topTargets = TargetSelection.TopKOthers(clean, targets.Labels, k);
            rounds = k * Restarts;
        }

        for (int round = 0; round < rounds; round++)
        {
            var open = AttackMath.Indices(broken.logical_not());
            if (open.numel() == 0) break;
            using var scope = NewDisposeScope();
            var x = inputs.index_select(0, open);
            var callerTargets = targets.Select(open);
            var objectiveTargets = topTargets is null
                ? callerTargets
                : new AttackTargets(callerTargets.Labels, topTargets[.., round / Restarts].index_select(0, open));
            var objective = TargetCount > 0 ? Objectives.Dlr : Objective;
            var (candidate, success, loss) = Run(model, geometry, x, objectiveTargets, callerTargets, criterion, objective, context);
            using (no_grad())
            {
                // Within the open points nothing has succeeded yet: a success, or (untargeted restarts) a higher loss, wins.
                var better = bestLoss is null || topTargets is not null
                    ? success.logical_or(round == 0 ? ones_like(success) : zeros_like(success))
                    : success.logical_or(loss.gt(bestLoss.index_select(0, open)));
                var merged = where(AttackMath.PerSample(better, candidate), candidate, adv.index_select(0, open));
                var newAdv = adv.index_copy(0, open, merged).MoveToOuterDisposeScope();
                var newBroken = broken.index_copy(0, open, success).MoveToOuterDisposeScope();
                Tensor? newLoss = null;
                if (topTargets is null)
                {
                    var previousLoss = bestLoss ?? full(inputs.shape[0], double.NegativeInfinity, dtype: loss.dtype, device: loss.device);
                    newLoss = previousLoss.index_copy(0, open, where(better, loss, previousLoss.index_select(0, open))).MoveToOuterDisposeScope();
                    bestLoss?.Dispose();
                }
                adv.Dispose(); broken.Dispose();
                (adv, broken, bestLoss) = (newAdv, newBroken, newLoss);
            }
        }
        return new Perturbation(adv);
    }

    /// <summary>
    /// One APGD run. Returns per sample the first adversarial point found, else the point of highest loss;
    /// whether it is adversarial; and its loss.
    /// </summary>
    private (Tensor Adversarial, Tensor Success, Tensor Loss) Run(IClassifier model, IPerturbationGeometry geometry,
        Tensor x, AttackTargets objectiveTargets, AttackTargets callerTargets, ICriterion criterion, IAttackObjective objective, AttackContext context)
    {
        var eps = Threat.Epsilon;
        var bounds = Threat.Bounds;
        var checkpoints = new HashSet<int>(Checkpoints(Steps));
        var state = new Dictionary<string, Tensor>();
        void Keep(string key, Tensor value)
        {
            value.MoveToOuterDisposeScope();
            if (state.TryGetValue(key, out var old) && !ReferenceEquals(old, value)) old.Dispose();
            state[key] = value;
        }

        using (no_grad())
            Keep("adv", (x + geometry.RandomStart(x, eps, context.Generator)).clamp(bounds.Lower, bounds.Upper));
        {
            using var scope = NewDisposeScope();
            var (g0, logits0, loss0) = AttackMath.LossGradient(model, state["adv"], objective, objectiveTargets);
            var success0 = criterion.IsAdversarial(logits0, callerTargets);
            Keep("grad", g0);
            Keep("loss", loss0);
            Keep("bestLoss", loss0.clone());
            Keep("best", state["adv"].clone());
            Keep("bestGrad", g0.clone());
            Keep("found", success0);
            Keep("foundAdv", state["adv"].clone());
            Keep("previous", state["adv"].clone());
            Keep("eta", full(x.shape[0], InitialRelativeStepSize * eps, dtype: x.dtype, device: x.device));
            Keep("increases", zeros(x.shape[0], dtype: ScalarType.Int64, device: x.device));
            Keep("reducedLast", zeros(x.shape[0], dtype: ScalarType.Bool, device: x.device));
            Keep("bestLossAtCheck", loss0.clone());
        }

        int sinceCheck = 0;
        for (int i = 0; i < Steps; i++)
        {
            context.Cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var adv = state["adv"];
            Tensor next;
            using (no_grad())
            {
                var eta = AttackMath.PerSample(state["eta"], adv);
                var z = AttackMath.ProjectAndClamp(geometry, x, adv + geometry.Direction(state["grad"], adv, bounds) * eta, eps, bounds);
                if (i == 0)
                    next = z;
                else
                {
                    var a = MomentumAlpha;
                    var moved = adv + (z - adv) * a + (adv - state["previous"]) * (1 - a);
                    next = AttackMath.ProjectAndClamp(geometry, x, moved, eps, bounds);
                }
            }
            Keep("previous", adv.detach().clone());
            var (grad, logits, loss) = AttackMath.LossGradient(model, next, objective, objectiveTargets);
            using (no_grad())
            {
                var success = criterion.IsAdversarial(logits, callerTargets);
                var firstHit = success.logical_and(state["found"].logical_not());
                Keep("foundAdv", where(AttackMath.PerSample(firstHit, next), next, state["foundAdv"]));
                Keep("found", state["found"].logical_or(success));
                Keep("increases", state["increases"] + loss.gt(state["loss"]).to(ScalarType.Int64));
                Keep("loss", loss);
                var improved = loss.gt(state["bestLoss"]);
                var rows = AttackMath.PerSample(improved, next);
                Keep("best", where(rows, next, state["best"]));
                Keep("bestGrad", where(rows, grad, state["bestGrad"]));
                Keep("bestLoss", where(improved, loss, state["bestLoss"]));
                Keep("adv", next);
                Keep("grad", grad);
                sinceCheck++;
                if (checkpoints.Contains(i + 1))
                {
                    // (a) too few increasing steps, or (b) no halving last time and no improvement since.
                    var oscillating = state["increases"].to(ScalarType.Float64).le(Rho * sinceCheck);
                    var stalled = state["reducedLast"].logical_not().logical_and(state["bestLossAtCheck"].ge(state["bestLoss"]));
                    var halve = oscillating.logical_or(stalled);
                    Keep("reducedLast", halve);
                    Keep("bestLossAtCheck", state["bestLoss"].clone());
                    Keep("eta", where(halve, state["eta"] * 0.5, state["eta"]));
                    var back = AttackMath.PerSample(halve, next);
                    Keep("adv", where(back, state["best"], state["adv"]));
                    Keep("grad", where(back, state["bestGrad"], state["grad"]));
                    Keep("increases", zeros_like(state["increases"]));
                    sinceCheck = 0;
                }
            }
            context.StepProgress?.Report(1);
        }

        Tensor result, found, finalLoss;
        using (no_grad())
        {
            found = state["found"];
            result = where(AttackMath.PerSample(found, x), state["foundAdv"], state["best"]);
            finalLoss = state["bestLoss"];
        }
        foreach (var (key, t) in state)
            if (!ReferenceEquals(t, found) && !ReferenceEquals(t, finalLoss)) t.Dispose();
        return (result, found, finalLoss);
    }
}
