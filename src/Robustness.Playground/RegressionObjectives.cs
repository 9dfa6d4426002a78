using Robustness.Attacks;
using Robustness.Core;
using Robustness.Defenses;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Playground;

/// <summary>Squared error (s − y)² per sample, to maximise: the attack objective of a regression output [N, 1].</summary>
public sealed class SquaredErrorObjective : IAttackObjective
{
    public static SquaredErrorObjective Instance { get; } = new();
    public string Name => "squared-error";

    public Tensor Loss(Tensor logits, AttackTargets targets) => (logits.squeeze(1) - targets.Labels.to(logits.dtype)).square();
}

/// <summary>
/// The regression counterparts of the toolkit's training objectives (whose losses are cross-entropies): mean squared
/// error on clean inputs, on x + N(0, σ²I), or on the PGD point of <see cref="ProjectedGradientAttack"/> that
/// maximises the squared error inside the ε-ball (Madry-style adversarial training for a regressor).
/// </summary>
public sealed record SquaredErrorTrainingObjective(string Kind, double Epsilon = 0, Norm Norm = Norm.Linf) : ITrainingObjective
{
    public int Steps { get; init; } = 5;
    public double Sigma { get; init; } = 0.5;

    public string Name => Kind;
    double ITrainingObjective.Epsilon => Kind == "pgd" ? Epsilon : 0;
    public IReadOnlyDictionary<string, object> Parameters => new Dictionary<string, object>
    {
        ["loss"] = "squared-error", ["eps"] = Epsilon, ["norm"] = Norm.Name(), ["steps"] = Steps, ["sigma"] = Sigma,
    };

    public TrainingStepResult Compute(IGradientClassifier model, Tensor inputs, Tensor labels, TrainingStepContext context)
    {
        var x = Kind switch
        {
            "standard" => inputs,
            "gaussian" => inputs + randn(inputs.shape, dtype: inputs.dtype, generator: context.Generator) * Keep(Sigma),
            "pgd" => new ProjectedGradientAttack(new ThreatModel(Norm, Epsilon, model.Spec.Bounds))
            {
                Steps = Steps,
                Objective = SquaredErrorObjective.Instance,
                AbsoluteStepSize = 2.5 * Epsilon / Steps,
            }.Craft(model, inputs, new AttackTargets(labels), new Core.Attacking.AttackContext(context.Generator)),
            _ => throw new ParameterException("objective", $"'{Kind}' is not a regression objective (standard, pgd, gaussian)"),
        };
        var s = model.Logits(x);
        return new TrainingStepResult(nn.functional.mse_loss(s.squeeze(1), labels), null, null);
    }
}
