using Robustness.Attacks;
using Robustness.Core;
using Robustness.Evaluation;

namespace Robustness.Cli.Common;

/// <summary>The multi-label settings of `attack` and `eval` (--label-attacks, --target-labels, --flip) applied to
/// the evaluation options once the model is known.</summary>
public sealed record MultiLabelOptions(string? LabelAttacks = null, string? TargetLabels = null, int? Flip = null)
{
    public bool Any => LabelAttacks is not null || TargetLabels is not null || Flip is not null;

    public EvaluationOptions ApplyTo(EvaluationOptions options, ModelSpec spec, IReadOnlyList<string> classNames, AttackOptions attackOptions)
    {
        if (!spec.MultiLabel)
        {
            if (Any) throw new InputException($"{(TargetLabels is not null ? "--target-labels" : Flip is not null ? "--flip" : "--label-attacks")}: applies to multi-label models; this one has a single-label head");
            return options;
        }
        IAttackSuite? labels = LabelAttacks switch
        {
            null => null,
            var s when s.Trim().Equals("none", StringComparison.OrdinalIgnoreCase) => NoAttackSuite.Instance,
            var s => new CliAttackSuite(s, attackOptions),
        };
        var goal = TargetLabels is { } t ? LabelGoal.Parse(t, classNames) : Flip is { } k ? LabelGoal.Flip(k) : null;
        if (goal?.FlipCount is { } count && count > spec.NumClasses)
            throw new InputException($"--flip: the model has {spec.NumClasses} labels, cannot flip {count}");
        return options with { LabelAttacks = labels, TargetGoal = goal };
    }
}
