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
/// Multi-label models (multi-hot labels): a target is a goal that asks one label to flip and leaves the others free
/// (<see cref="MultiLabelTargets.FlipOnly"/>): a random label (random), the label farthest from its threshold
/// (least-likely), or the k labels closest to it, one round each (top-k).
/// </summary>
public sealed record TargetedAttack(IAttack Inner, TargetSelection Selection) : AttackBase(Inner.Threat)
{
    public override string Name => Inner.Name + "-targeted";
    public override bool NeedsGradients => Inner.NeedsGradients;

    public override IReadOnlyDictionary<string, object> Parameters =>
        new Dictionary<string, object>(Inner.Parameters) { ["targeted"] = true, ["target_mode"] = Selection.Name };

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        var clean = AttackMath.CleanLogits(model, inputs);
        bool multiLabel = Objectives.IsMultiLabel(targets);
        var chosen = multiLabel ? Selection.SelectLabels(clean, context.Generator) : Selection.Select(targets.Labels, (int)clean.shape[1], clean, context.Generator);
        var criterion = Criteria.For(targets);
        var stages = Enumerable.Range(0, (int)chosen.shape[1]).Select(r => (Stage)((rows, x, t, c) =>
        {
            var column = chosen[.., r].index_select(0, rows);
            var goal = multiLabel ? MultiLabelTargets.FlipOnly(t.Labels, column) : column;
            var result = Inner.Run(model, x, new AttackTargets(t.Labels, goal), c);
            // Judge against the caller's goal, not the auxiliary target.
            var hit = criterion.IsAdversarial(result.Logits, t);
            return new StageOutcome(result.Adversarial, hit, null, result);
        })).ToArray();
        // The first round's attempt is kept for every point (a better report than the clean input); later rounds
        // replace it only where they succeed.
        var points = new StandingPoints(inputs, targets, KeepRule.SuccessOrFirstAttempt, criterion.IsAdversarial(clean, targets));
        points.Run(stages, context with { KeepModelMode = true });
        return new Perturbation(points.Adversarial);
    }
}
