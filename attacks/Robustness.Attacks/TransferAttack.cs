using Robustness.Core;
using Robustness.Core.Attacking;
using static TorchSharp.torch;

namespace Robustness.Attacks;

/// <summary>A white-box model whose adversarials are tried on another model, with a name for reports (its file).</summary>
public sealed record Surrogate(IGradientClassifier Model, string Name, string? Sha256 = null);

/// <summary>
/// A transfer attack: <see cref="Inner"/> (any attack, usually white-box) crafts adversarials on the
/// <see cref="Surrogate"/>, and each is tried once on the model under attack — one query per sample, the only thing
/// this attack asks of that model, so it runs on label-only models. The inner attack's threat model is this one's
/// and its result is checked on the surrogate; the sealed final step checks it again and decides success on the
/// target. Surrogate and target must take the same inputs and classes.
/// </summary>
public sealed record TransferAttack(IAttack Inner, Surrogate Surrogate) : AttackBase(Inner.Threat)
{
    public const string Prefix = "transfer:";

    public override string Name => Prefix + Inner.Name;
    public override ModelAccess Needs => ModelAccess.Labels;

    public override IReadOnlyDictionary<string, object> Parameters =>
        new Dictionary<string, object>(Inner.Parameters)
        {
            ["transfer_from"] = Surrogate.Name,
            ["surrogate_sha256"] = Surrogate.Sha256 ?? "",
            ["crafted_with"] = Inner.Name,
            ["queries"] = 1,
        };

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        var s = Surrogate.Model.Spec;
        if (!s.InputShape.SequenceEqual(model.Spec.InputShape) || s.NumClasses != model.Spec.NumClasses || s.Bounds != model.Spec.Bounds)
            throw new ParameterException(nameof(Surrogate), $"{Surrogate.Name} takes [{string.Join(",", s.InputShape)}] in [{s.Bounds}] with {s.NumClasses} classes, " +
                $"the model under attack [{string.Join(",", model.Spec.InputShape)}] in [{model.Spec.Bounds}] with {model.Spec.NumClasses}");
        if (s.MultiLabel != model.Spec.MultiLabel)
            throw new ParameterException(nameof(Surrogate), $"{Surrogate.Name} is {(s.MultiLabel ? "multi-label" : "single-label")}, the model under attack is not");
        if (Surrogate.Model.Device.type != model.Device.type)
            throw new ParameterException(nameof(Surrogate), $"{Surrogate.Name} is on {Surrogate.Model.Device}, the model under attack on {model.Device}");
        int n = (int)inputs.shape[0];
        var ledger = new QueryLedger(n, 1);
        using var crafted = Inner.Run(Surrogate.Model, inputs, targets, context with { KeepModelMode = false });
        var owners = Enumerable.Range(0, n).ToArray();
        var logits = ledger.Scores(model, crafted.Adversarial, owners);
        var fooled = Criteria.For(targets).IsAdversarial(logits, targets).cpu().data<bool>().ToArray();
        for (int i = 0; i < n; i++) if (fooled[i]) ledger.MarkSuccess(i);
        return Perturbation.Counted(crafted.Adversarial.clone(), ledger);
    }
}
