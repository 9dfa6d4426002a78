using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks;

/// <summary>
/// A transfer attack: <see cref="Inner"/> runs white-box on <see cref="Surrogate"/>, and its points are judged on the
/// attacked model by the shared final step (projected into the ball, success from the attacked model's forward pass).
/// The attacked model only needs to give scores. With the surrogate = a randomised model's network without its
/// randomness, this is "attack the deterministic network, add the noise at test time" — the baseline an EOT attack on
/// the randomised model has to beat. Minimum norms found on the surrogate are not the attacked model's, so none are
/// reported.
/// </summary>
public sealed record TransferAttack(IAttack Inner, IClassifier Surrogate, string SurrogateName) : AttackBase(Inner.Threat)
{
    public override string Name => Inner.Name + "-transfer";
    /// <summary>Gradients, if any, come from the surrogate.</summary>
    public override bool NeedsGradients => false;

    public override IReadOnlyDictionary<string, object> Parameters =>
        new Dictionary<string, object>(Inner.Parameters) { ["transfer_from"] = SurrogateName };

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        if (Surrogate.Spec.NumClasses != model.Spec.NumClasses || !Surrogate.Spec.InputShape.SequenceEqual(model.Spec.InputShape))
            throw new ParameterException("TransferFrom",
                $"the surrogate maps [{string.Join(",", Surrogate.Spec.InputShape)}] to {Surrogate.Spec.NumClasses} classes, the model [{string.Join(",", model.Spec.InputShape)}] to {model.Spec.NumClasses}");
        // The surrogate runs in its own eval mode, whatever the caller set on the attacked model.
        using var result = Inner.Run(Surrogate, inputs, targets, context with { KeepModelMode = false });
        return new Perturbation(result.Adversarial.clone());
    }
}
