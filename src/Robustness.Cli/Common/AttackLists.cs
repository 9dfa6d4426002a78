using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Evaluation;

namespace Robustness.Cli.Common;

/// <summary>
/// The attacks named by --attack / --attacks. In a comma-separated list the shared hyper-parameters apply to the
/// attacks that take them: `--attacks fgsm,pgd --steps 2` gives PGD two steps and leaves FGSM its single step
/// (the registry rightly refuses `--attack fgsm --steps 2` on its own, where the user asked for a contradiction).
/// </summary>
public static class AttackLists
{
    public static IReadOnlyList<IAttack> Build(string names, ThreatModel threat, AttackOptions options)
    {
        var parts = names.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Any(p => p.Length == 0))
            throw new ParameterException("Attack", $"'{names}' has an empty entry (write attack names separated by single commas)");
        if (parts.Length <= 1 || options.Steps is null) return AttackRegistry.Preset(names, threat, options);
        return parts.Select(name => AttackRegistry.Create(name, threat, TakesOneStep(name) ? options with { Steps = null } : options)).ToArray();
    }

    private static bool TakesOneStep(string name) => name.Trim().ToLowerInvariant() is "fgsm" or "fgm";
}

/// <summary>The registry's suite for `eval`, building its ensemble through <see cref="AttackLists"/>.</summary>
public sealed record CliAttackSuite(string Attacks, AttackOptions Options) : IAttackSuite
{
    private readonly RegistryAttackSuite _registry = new(Attacks, Options);

    public string Description => _registry.Description;
    public IReadOnlyList<IAttack> Build(ThreatModel threat) => AttackLists.Build(Attacks, threat, Options);
    public IAttack Fgsm(ThreatModel threat) => _registry.Fgsm(threat);
    public IAttack Pgd(ThreatModel threat, int steps, int restarts) => _registry.Pgd(threat, steps, restarts);
    public (int Steps, int Restarts) PgdBudget => _registry.PgdBudget;
}
