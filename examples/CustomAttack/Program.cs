// A custom attack: the one PGD engine with a new objective. Here the objective pushes the probability mass of the true
// class down towards its runner-up (a "soft margin"); any IAttackObjective plugs in the same way, and the sealed final
// step still checks the threat model.
using TorchSharp;
using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Data;
using Robustness.Models;
using static TorchSharp.torch;

var shipped = DatasetCatalog.FindShippedData() ?? throw new InvalidOperationException("run from the repository or the installed tool");
using var model = ModelFile.Load(Path.Combine(shipped, "models", "tiny-cnn-standard.safetensors"));
using var data = DatasetCatalog.Load("fashion-mnist", "test").Take(256);
var threat = new ThreatModel(Norm.Linf, 0.05, model.Spec.Bounds);
var mine = new ProjectedGradientAttack(threat) { AttackName = "pgd-soft-margin", Steps = 20, RelativeStepSize = 0.125, Objective = new SoftMargin() };
var baseline = Presets.Pgd(threat, steps: 20);
foreach (var attack in new IAttack[] { baseline, mine })
{
    using var result = attack.Run(model, data.Images, new AttackTargets(data.Labels), AttackContext.Seeded(0));
    Console.WriteLine($"{attack.Name,-16} broke {result.Success.sum().ToInt64(),3} of {data.Count}, max ‖δ‖∞ {result.Distance.max().ToDouble():G3}");
}

/// <summary>log p(runner-up) − log p(true): ascend it to move mass from the true class to its strongest rival.</summary>
sealed class SoftMargin : IAttackObjective
{
    public string Name => "soft-margin";

    public Tensor Loss(Tensor logits, AttackTargets targets)
    {
        var logp = nn.functional.log_softmax(logits, 1);
        return Objectives.MaxOther(logp, targets.Labels) - Objectives.Pick(logp, targets.Labels);
    }
}
