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

/// <summary>A member of a preset: an attack name and the preset's settings for it, which fill in what the caller's
/// options leave unset (the caller's options win).</summary>
public sealed record PresetMember(string Attack, Func<AttackOptions, AttackOptions>? Settings = null)
{
    public static implicit operator PresetMember(string attack) => new(attack);
}

/// <summary>A registered ensemble of attacks, run as the per-sample worst case in this order.</summary>
public sealed record PresetEntry(string Name, string Description, Func<ThreatModel, IReadOnlyList<PresetMember>> Members);

/// <summary>
/// The settings of AutoAttack's versions (Croce &amp; Hein 2020, fra31/auto-attack, <c>set_version</c>), so the presets
/// say them once. standard, L∞ and L2: APGD-CE 1 restart, APGD-T 9 targets, FAB-T 9 targets, Square 5,000 queries,
/// 100 iterations each; L1: APGD-CE 5 restarts, APGD-T 5 targets. rand: APGD-CE and APGD-DLR, 1 restart, EOT over 20.
/// </summary>
public static class AutoAttackVersions
{
    public const int Iterations = 100;
    public const int TargetClasses = 9;
    public const int L1ApgdRestarts = 5;
    public const int L1ApgdTargetClasses = 5;
    public const int SquareQueries = 5000;
    public const double SquarePInit = 0.8;
    public const int RandEotSamples = 20;

    internal static IReadOnlyList<PresetMember> Standard(ThreatModel t)
    {
        bool l1 = t.Norm == Norm.L1;
        var members = new List<PresetMember>
        {
            new("apgd-ce", o => o with { Steps = o.Steps ?? Iterations, Restarts = o.Restarts ?? (l1 ? L1ApgdRestarts : 1) }),
            new("apgd-t", o => o with { Steps = o.Steps ?? Iterations, Restarts = o.Restarts ?? 1, TargetCount = o.TargetCount ?? (l1 ? L1ApgdTargetClasses : TargetClasses) }),
            new("fab-t", o => o with { Steps = o.Steps ?? Iterations, Restarts = o.Restarts ?? 1, TargetCount = o.TargetCount ?? TargetClasses }),
        };
        // Our Square attack has no L1 version (AutoAttack's L1 standard runs an L1 Square last).
        if (!l1) members.Add(new("square", o => o with { Queries = o.Queries ?? SquareQueries, PInit = o.PInit ?? SquarePInit }));
        return members;
    }

    /// <summary>
    /// Square's successive halving in our `standard` preset: every point APGD-CE and APGD-T leave standing gets this many
    /// queries; then, at 2×, 4×, 8×, 16× that, the half of the still-standing points of the batch with the smallest
    /// margin go on, up to AutoAttack's 5,000. About 900 queries per point on average instead of 5,000, with the whole
    /// budget spent where a random search still breaks points late, next to the boundary (docs/results.md measures it).
    /// </summary>
    public const int StandardPresetSquareHalvingFrom = 300;

    /// <summary>Our recommended default: APGD-CE, APGD-T (9 targets), Square with <see cref="SquareQueries"/> queries and
    /// successive halving from <see cref="StandardPresetSquareHalvingFrom"/>, each in AutoAttack's settings otherwise (L1: no Square).</summary>
    internal static IReadOnlyList<PresetMember> StandardPreset(ThreatModel t)
    {
        var members = new List<PresetMember>
        {
            new("apgd-ce", o => o with { Steps = o.Steps ?? Iterations, Restarts = o.Restarts ?? 1 }),
            new("apgd-t", o => o with { Steps = o.Steps ?? Iterations, Restarts = o.Restarts ?? 1, TargetCount = o.TargetCount ?? TargetClasses }),
        };
        if (t.Norm != Norm.L1)
            members.Add(new("square", o => o with
            {
                Queries = o.Queries ?? SquareQueries, PInit = o.PInit ?? SquarePInit, SquareHalvingFrom = o.SquareHalvingFrom ?? StandardPresetSquareHalvingFrom,
            }));
        return members;
    }

    internal static IReadOnlyList<PresetMember> Rand(ThreatModel _) =>
    [
        new("apgd-ce", o => o with { Steps = o.Steps ?? Iterations, Restarts = o.Restarts ?? 1, EotSamples = o.EotSamples ?? RandEotSamples }),
        new("apgd-dlr", o => o with { Steps = o.Steps ?? Iterations, Restarts = o.Restarts ?? 1, EotSamples = o.EotSamples ?? RandEotSamples }),
    ];
}

/// <summary>Maps names (as used on the command line) to configured attacks, and presets to attack lists.</summary>
public static class AttackRegistry
{
    public static IReadOnlyList<AttackEntry> Entries { get; } = AttackCatalogue.Entries;

    public static IReadOnlyList<PresetEntry> PresetEntries { get; } =
    [
        new("fast", "worst case over apgd-ce, apgd-t", _ => ["apgd-ce", "apgd-t"]),
        new("standard", $"worst case over apgd-ce, apgd-t (9 targets), square ({AutoAttackVersions.SquareQueries} queries, halved from {AutoAttackVersions.StandardPresetSquareHalvingFrom} on: the half of the standing points nearest the boundary go on) — AutoAttack's standard set without FAB (L1: without square); the recommended default",
            AutoAttackVersions.StandardPreset),
        new("autoattack", "AutoAttack's standard version exactly, in its order and settings: apgd-ce, apgd-t (9 targets), fab-t (9 targets), square (5000 queries); L1: apgd-ce with 5 restarts, apgd-t with 5 targets, fab-t, and no square (we have no L1 Square)",
            AutoAttackVersions.Standard),
        new("rand", "AutoAttack's rand version, for randomised models: apgd-ce, apgd-dlr, each gradient averaged over 20 forward/backward passes (EOT)",
            AutoAttackVersions.Rand),
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
        if (o.Targeted && key is not ("apgd-t" or "fab-t"))
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
    /// The attacks of a preset ("fast", "standard", "autoattack", "rand"), a single attack name, or a comma-separated
    /// list of names. Presets ignore <see cref="AttackOptions.Targeted"/> (APGD-T and FAB-T are their targeted members).
    /// </summary>
    public static IReadOnlyList<IAttack> Preset(string name, ThreatModel threat, AttackOptions? options = null)
    {
        var o = options ?? AttackOptions.Default;
        var key = Normalise(name);
        if (PresetEntries.FirstOrDefault(p => p.Name == key) is { } preset)
            return preset.Members(threat).Select(m => Create(m.Attack, threat, (m.Settings?.Invoke(o) ?? o) with { Targeted = false })).ToArray();
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
