using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;

namespace Robustness.Evaluation;

/// <summary>
/// Attacks from the attack registry: a preset ("fast", "standard"), one attack name or a comma-separated list,
/// configured with the caller's <see cref="AttackOptions"/>. The sanity checks' references are FGSM and PGD with
/// the options' steps/restarts (10 and 1 by default).
/// </summary>
public sealed record RegistryAttackSuite(string Attacks, AttackOptions? Options = null) : IAttackSuite
{
    public string Description => Attacks;

    public IReadOnlyList<IAttack> Build(ThreatModel threat) => AttackRegistry.Preset(Attacks, threat, Options);

    public IAttack Fgsm(ThreatModel threat) => Presets.Fgsm(threat);

    public IAttack Pgd(ThreatModel threat, int steps, int restarts) => Presets.Pgd(threat, steps, restarts);

    // The PGD budget follows the user's --steps/--restarts only when they are PGD-sized; APGD's 100 steps would
    // make the 2× spot check needlessly expensive without telling more.
    public (int Steps, int Restarts) PgdBudget => (Math.Clamp(Options?.Steps ?? 10, 1, 50), Math.Clamp(Options?.Restarts ?? 1, 1, 5));
}

/// <summary>A fixed attack list per threat model (for code and tests that build attacks themselves).</summary>
public sealed record DelegateAttackSuite(
    Func<ThreatModel, IReadOnlyList<IAttack>> Factory, string Description = "custom", int Steps = 10, int Restarts = 1) : IAttackSuite
{
    /// <summary>Replaces the reference FGSM of the sanity checks (default <see cref="Presets.Fgsm"/>).</summary>
    public Func<ThreatModel, IAttack>? FgsmFactory { get; init; }
    /// <summary>Replaces the reference PGD of the sanity checks (default <see cref="Presets.Pgd"/>).</summary>
    public Func<ThreatModel, int, int, IAttack>? PgdFactory { get; init; }

    public IReadOnlyList<IAttack> Build(ThreatModel threat) => Factory(threat);
    public IAttack Fgsm(ThreatModel threat) => FgsmFactory?.Invoke(threat) ?? Presets.Fgsm(threat);
    public IAttack Pgd(ThreatModel threat, int steps, int restarts) => PgdFactory?.Invoke(threat, steps, restarts) ?? Presets.Pgd(threat, steps, restarts);
    public (int Steps, int Restarts) PgdBudget => (Steps, Restarts);
}

/// <summary>No attacks: for <see cref="EvaluationOptions.LabelAttacks"/>, to skip the per-label stages.</summary>
public sealed record NoAttackSuite : IAttackSuite
{
    public static NoAttackSuite Instance { get; } = new();
    public string Description => "none";
    public IReadOnlyList<IAttack> Build(ThreatModel threat) => [];
    public IAttack Fgsm(ThreatModel threat) => Presets.Fgsm(threat);
    public IAttack Pgd(ThreatModel threat, int steps, int restarts) => Presets.Pgd(threat, steps, restarts);
    public (int Steps, int Restarts) PgdBudget => (10, 1);
}
