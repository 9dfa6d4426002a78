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
    Func<ThreatModel, AttackOptions, IAttack> Build, Func<ThreatModel, IReadOnlyList<AttackDefault>> Defaults)
{
    private ModelAccess? _needs;

    /// <summary>What the attack needs from a model, read from a default-built record.</summary>
    public ModelAccess Needs => _needs ??= Build(new ThreatModel(Norm.L2, 0.1, Bounds.Unit), AttackOptions.Default).Needs;
}

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

    /// <summary>
    /// The attack <paramref name="name"/> configured by <paramref name="options"/>. <c>transfer:NAME</c> crafts NAME's
    /// adversarials on <see cref="AttackOptions.Surrogate"/> and tries each once on the model under attack; with
    /// <see cref="AttackOptions.TransferGradientAttacks"/> a plain gradient attack's name means the same.
    /// </summary>
    public static IAttack Create(string name, ThreatModel threat, AttackOptions? options = null)
    {
        var o = options ?? AttackOptions.Default;
        var key = Normalise(name);
        bool transfer = key.StartsWith(TransferAttack.Prefix, StringComparison.Ordinal);
        if (transfer) key = key[TransferAttack.Prefix.Length..].Trim();
        var entry = Entries.FirstOrDefault(e => e.Name == key || (key == "fgm" && e.Name == "fgsm")) ?? throw Unknown(name);
        transfer |= o.TransferGradientAttacks && entry.Needs == ModelAccess.Gradients;
        var attack = entry.Build(threat, o);
        if (attack is ProjectedGradientAttack pgd && key is "fgsm" or "fgm") attack = pgd with { AttackName = key };
        if (o.Targeted && key != "apgd-t")
        {
            if (key == "deepfool") throw new ParameterException(nameof(AttackOptions.Targeted), "deepfool is an untargeted attack");
            if (attack.Needs == ModelAccess.Labels)
                throw new ParameterException(nameof(AttackOptions.Targeted), $"{key} is untargeted here (a targeted decision-based run needs a starting image of the target class)");
            var selection = TargetSelection.Parse(o.TargetMode, PositiveOr(o.TargetCount, AutoPgdAttack.DefaultTargetCount, nameof(AttackOptions.TargetCount)));
            // A query budget covers the whole targeted run: one query per sample picks the targets, the rounds share the rest.
            if (attack is SquareAttack square)
            {
                int share = (square.Queries - 1) / selection.Rounds;
                if (share < 1) throw new ParameterException(nameof(AttackOptions.Queries), $"{square.Queries} queries cannot cover a targeted square run with {selection.Rounds} target(s) (one query picks the targets)");
                attack = square with { Queries = share };
            }
            attack = new TargetedAttack(attack, selection);
        }
        if (!transfer) return attack;
        var surrogate = o.Surrogate ?? throw new ParameterException(nameof(AttackOptions.Surrogate), $"transfer:{key} needs a surrogate model to craft on");
        if (attack.Needs == ModelAccess.Labels && attack is not TargetedAttack)
            throw new ParameterException(nameof(AttackOptions.Surrogate), $"{key} is already a decision-based attack; transfer crafts with a white-box or score-based attack");
        return new TransferAttack(attack, surrogate);
    }

    /// <summary>The registered attacks that run on a model giving <paramref name="access"/>.</summary>
    public static IReadOnlyList<string> RunnableOn(ModelAccess access) => Entries.Where(e => e.Needs <= access).Select(e => e.Name).ToArray();

    /// <summary>Refuses, before any work, an attack that needs more than the model gives, naming the attacks that can run.</summary>
    public static void RequireRunnable(IEnumerable<IAttack> attacks, ModelAccess access)
    {
        foreach (var a in attacks)
            if (a.Needs > access)
                throw new ParameterException("Attack", $"'{a.Name}' needs {a.Needs.Describe()}, but the model gives {access.Describe()}; attacks that run on it: " +
                    $"{string.Join(", ", RunnableOn(access))}, and transfer:NAME (NAME crafted on a white-box surrogate, one query per sample)");
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
