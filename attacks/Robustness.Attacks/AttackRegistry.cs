using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Geometry;

namespace Robustness.Attacks;

/// <summary>One default of an attack, for documentation: the <see cref="AttackOptions"/> property that overrides it
/// (null when none does) and the default in words, e.g. ("Steps", "10 steps").</summary>
public sealed record AttackDefault(string? Option, string Text);

/// <summary>A registered attack: its name, what it is, the norms it supports, how it is built from options, and its
/// defaults as read from a default-built instance (so documentation cannot drift from the records).</summary>
public sealed record AttackEntry(string Name, string Description, string Norms,
    Func<ThreatModel, AttackOptions, IAttack> Build, Func<ThreatModel, IReadOnlyList<AttackDefault>> Defaults);

/// <summary>A registered ensemble of attacks, run as the per-sample worst case in this order.</summary>
public sealed record PresetEntry(string Name, string Description, Func<ThreatModel, IReadOnlyList<string>> Members);

/// <summary>Maps names (as used on the command line) to configured attacks, and presets to attack lists.</summary>
public static class AttackRegistry
{
    public static IReadOnlyList<AttackEntry> Entries { get; } = AttackCatalogue.Entries;

    public static IReadOnlyList<PresetEntry> PresetEntries { get; } =
    [
        new("fast", "worst case over apgd-ce, apgd-t", _ => ["apgd-ce", "apgd-t"]),
        new("standard", "worst case over apgd-ce, apgd-t, square — AutoAttack's standard set without FAB (L1: without square)",
            t => t.Norm == Norm.L1 ? ["apgd-ce", "apgd-t"] : ["apgd-ce", "apgd-t", "square"]),
    ];

    public static IReadOnlyList<string> Names { get; } = Entries.Select(c => c.Name).ToArray();
    public static IReadOnlyList<string> PresetNames { get; } = PresetEntries.Select(c => c.Name).ToArray();

    public static string Describe(string name) =>
        Entries.FirstOrDefault(e => e.Name == Normalise(name))?.Description
        ?? PresetEntries.FirstOrDefault(e => e.Name == Normalise(name))?.Description
        ?? throw Unknown(name);

    private static string Normalise(string name) => name.Trim().ToLowerInvariant();

    private static ParameterException Unknown(string name) =>
        new("Attack", $"unknown attack '{name}' (valid: {string.Join(", ", Names)}; presets: {string.Join(", ", PresetNames)})");

    public static IAttack Create(string name, ThreatModel threat, AttackOptions? options = null)
    {
        var o = options ?? AttackOptions.Default;
        var key = Normalise(name);
        var entry = Entries.FirstOrDefault(e => e.Name == key || (key == "fgm" && e.Name == "fgsm")) ?? throw Unknown(name);
        var attack = entry.Build(threat, o);
        if (attack is ProjectedGradientAttack pgd && key is "fgsm" or "fgm") attack = pgd with { AttackName = key };
        if (o.Targeted && key != "apgd-t")
        {
            if (key == "deepfool") throw new ParameterException(nameof(AttackOptions.Targeted), "deepfool is an untargeted attack");
            attack = new TargetedAttack(attack, TargetSelection.Parse(o.TargetMode, PositiveOr(o.TargetCount, AutoPgdAttack.DefaultTargetCount, nameof(AttackOptions.TargetCount))));
        }
        return attack;
    }

    /// <summary>
    /// The attacks of a preset ("fast", "standard"), a single attack name, or a comma-separated list of names.
    /// Presets ignore <see cref="AttackOptions.Targeted"/> (APGD-T is their targeted member).
    /// </summary>
    public static IReadOnlyList<IAttack> Preset(string name, ThreatModel threat, AttackOptions? options = null)
    {
        var o = options ?? AttackOptions.Default;
        var key = Normalise(name);
        if (PresetEntries.FirstOrDefault(p => p.Name == key) is { } preset)
            return preset.Members(threat).Select(m => Create(m, threat, o with { Targeted = false })).ToArray();
        var list = key.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return list.Length > 0 ? list.Select(n => Create(n, threat, o)).ToArray() : throw Unknown(name);
    }

    /// <summary>The worst case over <see cref="Preset"/>'s attacks.</summary>
    public static WorstCaseEnsemble Ensemble(string name, ThreatModel threat, AttackOptions? options = null) =>
        new(threat, Preset(name, threat, options));

    internal static int PositiveOr(int? value, int fallback, string parameter) => value switch
    {
        null => fallback,
        >= 1 => value.Value,
        _ => throw new ParameterException(parameter, $"must be ≥ 1, got {value}"),
    };
}
