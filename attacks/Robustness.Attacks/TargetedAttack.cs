using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks;

/// <summary>
/// Runs <see cref="Inner"/> as a targeted attack with targets it picks itself (<see cref="Selection"/>), for callers
/// that only have true labels (the CLI, ensembles). The targets are a search strategy: success is reported against
/// the caller's targets (misclassification when the caller is untargeted), as AutoAttack does for APGD-T.
/// With top-k targets it runs one targeted attack per target on the points no earlier target broke.
/// </summary>
public sealed record TargetedAttack(IAttack Inner, TargetSelection Selection) : AttackBase(Inner.Threat)
{
    public override string Name => Inner.Name + "-targeted";
    public override bool NeedsGradients => Inner.NeedsGradients;

    public override IReadOnlyDictionary<string, object> Parameters
    {
        get
        {
            var d = new Dictionary<string, object>(Inner.Parameters) { ["targeted"] = true, ["target_mode"] = Selection.Name };
            return d;
        }
    }

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        if (targets.Labels.dim() != 1) throw new InputException($"attack '{Name}': targeted attacks need class labels, not multi-hot labels");
        var clean = AttackMath.CleanLogits(model, inputs);
        var chosen = Selection.Select(targets.Labels, (int)clean.shape[1], clean, context.Generator);
        var criterion = Criteria.For(targets);
        var inner = context with { KeepModelMode = true };

        var adv = inputs.clone();
        var broken = criterion.IsAdversarial(clean, targets);
        for (int r = 0; r < chosen.shape[1]; r++)
        {
            var open = AttackMath.Indices(broken.logical_not());
            if (open.numel() == 0) break;
            using var scope = NewDisposeScope();
            var subTargets = new AttackTargets(targets.Labels.index_select(0, open), chosen[.., r].index_select(0, open));
            using var result = Inner.Run(model, inputs.index_select(0, open), subTargets, inner);
            // Judge against the caller's goal, not the auxiliary target.
            var callerTargets = targets.Select(open);
            var hit = criterion.IsAdversarial(result.Logits, callerTargets);
            // The first round's attempt is kept for every point (a better starting report than the clean input);
            // later rounds replace it only where they succeed.
            var rows = AttackMath.PerSample(r == 0 ? ones_like(hit) : hit, result.Adversarial);
            var merged = where(rows, result.Adversarial, adv.index_select(0, open));
            var newAdv = adv.index_copy(0, open, merged).MoveToOuterDisposeScope();
            var newBroken = broken.index_copy(0, open, hit).MoveToOuterDisposeScope();
            adv.Dispose(); broken.Dispose();
            (adv, broken) = (newAdv, newBroken);
        }
        return new Perturbation(adv);
    }
}
