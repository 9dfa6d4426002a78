using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks;

/// <summary>
/// Runs <see cref="Inner"/> as a targeted attack with targets it picks itself (<see cref="Selection"/>), for callers
/// that only have true labels (the CLI, ensembles). The targets are a search strategy: success is reported against
/// the caller's targets (misclassification when the caller is untargeted), as AutoAttack does for APGD-T.
/// With top-k targets it runs one targeted attack per target on the points no earlier target broke. A query-based
/// inner attack's queries add up over the rounds, plus one per sample for the clean pass that picks the targets (the
/// registry gives each round its share of the budget).
/// Multi-label models (multi-hot labels): a target is a goal that asks one label to flip and leaves the others free
/// (<see cref="MultiLabelTargets.FlipOnly"/>): a random label (random), the label farthest from its threshold
/// (least-likely), or the k labels closest to it, one round each (top-k).
/// </summary>
public sealed record TargetedAttack(IAttack Inner, TargetSelection Selection) : AttackBase(Inner.Threat)
{
    public override string Name => Inner.Name + "-targeted";
    public override ModelAccess Needs => Inner.Needs;

    public override IReadOnlyDictionary<string, object> Parameters =>
        new Dictionary<string, object>(Inner.Parameters) { ["targeted"] = true, ["target_mode"] = Selection.Name };

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        var clean = AttackMath.CleanLogits(model, inputs);
        bool multiLabel = Objectives.IsMultiLabel(targets);
        var chosen = multiLabel ? Selection.SelectLabels(clean, context.Generator) : Selection.Select(targets.Labels, (int)clean.shape[1], clean, context.Generator);
        var criterion = Criteria.For(targets);
        int n = (int)inputs.shape[0];
        var used = Enumerable.Repeat(1L, n).ToArray();
        var toSuccess = Enumerable.Repeat(-1L, n).ToArray();
        bool counted = false;
        var stages = Enumerable.Range(0, (int)chosen.shape[1]).Select(r => (Stage)((rows, x, t, c) =>
        {
            var column = chosen[.., r].index_select(0, rows);
            var goal = multiLabel ? MultiLabelTargets.FlipOnly(t.Labels, column) : column;
            var result = Inner.Run(model, x, new AttackTargets(t.Labels, goal), c);
            // Judge against the caller's goal, not the auxiliary target.
            var hit = criterion.IsAdversarial(result.Logits, t);
            if (result.Queries is { } q)
            {
                counted = true;
                var ids = rows.cpu().data<long>().ToArray();
                var spent = q.data<long>().ToArray();
                var won = hit.cpu().data<bool>().ToArray();
                for (int j = 0; j < ids.Length; j++)
                {
                    used[ids[j]] += spent[j];
                    // The round's own count to success refers to its target; for the caller's goal the whole round counts.
                    if (won[j] && toSuccess[ids[j]] < 0) toSuccess[ids[j]] = used[ids[j]];
                }
            }
            return new StageOutcome(result.Adversarial, hit, null, result);
        })).ToArray();
        // The first round's attempt is kept for every point (a better report than the clean input); later rounds
        // replace it only where they succeed.
        var points = new StandingPoints(inputs, targets, KeepRule.SuccessOrFirstAttempt, criterion.IsAdversarial(clean, targets));
        points.Run(stages, context with { KeepModelMode = true });
        return counted ? new Perturbation(points.Adversarial, null, tensor(used), tensor(toSuccess)) : new Perturbation(points.Adversarial);
    }
}
