using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Geometry;

namespace Robustness.Attacks;

/// <summary>
/// Settings a caller (the CLI, a config file) may give any attack; null means the attack's paper default.
/// Options an attack does not use are ignored, except where ignoring would mislead (e.g. several steps for FGSM).
/// </summary>
public sealed record AttackOptions
{
    public static AttackOptions Default { get; } = new();

    /// <summary>Iterations (PGD family, APGD, C&amp;W inner steps, DeepFool max steps).</summary>
    public int? Steps { get; init; }
    /// <summary>Absolute step size α (PGD family).</summary>
    public double? StepSize { get; init; }
    /// <summary>Step size relative to ε (PGD family).</summary>
    public double? RelativeStepSize { get; init; }
    public int? Restarts { get; init; }
    /// <summary>Pick targets (by <see cref="TargetMode"/>) and run targeted; success still means misclassified.</summary>
    public bool Targeted { get; init; }
    /// <summary>"random", "least-likely" or "top-k".</summary>
    public string TargetMode { get; init; } = "random";
    /// <summary>k for top-k targets and APGD-T (9 by default, as in AutoAttack).</summary>
    public int? TargetCount { get; init; }
    /// <summary>Objective for the PGD family: "ce", "margin" or "dlr".</summary>
    public string? Loss { get; init; }
    /// <summary>Query budget of score-based attacks (Square).</summary>
    public int? Queries { get; init; }
    public bool EarlyStop { get; init; }
    /// <summary>Momentum decay (MI-FGSM; also turns any PGD into MI-FGSM).</summary>
    public double? Momentum { get; init; }
    /// <summary>C&amp;W confidence κ.</summary>
    public double? Confidence { get; init; }
    public int? BinarySearchSteps { get; init; }
    public double? InitialConst { get; init; }
    public double? LearningRate { get; init; }
    public double? Overshoot { get; init; }
    public int? Candidates { get; init; }
    public double? L1Sparsity { get; init; }
    public double? PInit { get; init; }
}

/// <summary>Maps names (as used on the command line) to configured attacks, and presets to attack lists.</summary>
public static class AttackRegistry
{
    private static readonly (string Name, string Description)[] Catalogue =
    [
        ("fgsm", "fast gradient sign method: one step of size ε (Goodfellow et al. 2015)"),
        ("fgm", "fast gradient method: FGSM with the norm's steepest direction (L2/L1)"),
        ("bim", "basic iterative method: iterative FGSM from the clean point (Kurakin et al. 2017)"),
        ("pgd", "projected gradient descent with random start (Madry et al. 2018)"),
        ("mi-fgsm", "momentum iterative FGSM (Dong et al. 2018)"),
        ("apgd-ce", "Auto-PGD with cross-entropy (Croce & Hein 2020)"),
        ("apgd-dlr", "Auto-PGD with the DLR loss (Croce & Hein 2020)"),
        ("apgd-t", "targeted Auto-PGD with DLR over the top-k classes (Croce & Hein 2020)"),
        ("cw", "Carlini–Wagner L2, minimum norm (Carlini & Wagner 2017)"),
        ("deepfool", "DeepFool, minimum norm, L2 and L∞ (Moosavi-Dezfooli et al. 2016)"),
        ("square", "Square Attack, score-based, L∞ and L2 (Andriushchenko et al. 2020)"),
    ];

    private static readonly (string Name, string Description)[] PresetCatalogue =
    [
        ("fast", "apgd-ce, apgd-t"),
        ("standard", "apgd-ce, apgd-t, square (AutoAttack's standard set without FAB)"),
    ];

    public static IReadOnlyList<string> Names { get; } = Catalogue.Select(c => c.Name).ToArray();
    public static IReadOnlyList<string> PresetNames { get; } = PresetCatalogue.Select(c => c.Name).ToArray();

    public static string Describe(string name) =>
        Catalogue.Concat(PresetCatalogue).FirstOrDefault(c => c.Name == Normalise(name)).Description
        ?? throw Unknown(name);

    private static string Normalise(string name) => name.Trim().ToLowerInvariant();

    private static InputException Unknown(string name) =>
        new($"--attack: unknown attack '{name}' (valid: {string.Join(", ", Names)}; presets: {string.Join(", ", PresetNames)})");

    public static IAttack Create(string name, ThreatModel threat, AttackOptions? options = null)
    {
        var o = options ?? AttackOptions.Default;
        var key = Normalise(name);
        IAttack attack = key switch
        {
            "fgsm" or "fgm" => Configure(Presets.Fgsm(threat), o, key),
            "bim" => Configure(Presets.Bim(threat, o.Steps ?? 10), o, key),
            "pgd" => Configure(Presets.Pgd(threat, o.Steps ?? 10, o.Restarts ?? 1), o, key),
            "mi-fgsm" => Configure(Presets.MiFgsm(threat, o.Steps ?? 10, o.Momentum ?? 1.0), o, key),
            "apgd-ce" => Apgd(threat, o, Objectives.CrossEntropy, 0),
            "apgd-dlr" => Apgd(threat, o, Objectives.Dlr, 0),
            "apgd-t" => Apgd(threat, o, Objectives.Dlr, PositiveOr(o.TargetCount, 9, "--target-count")),
            "cw" => new CarliniWagnerL2Attack(threat)
            {
                Steps = PositiveOr(o.Steps, 100, "--steps"),
                BinarySearchSteps = PositiveOr(o.BinarySearchSteps, 9, "--binary-search-steps"),
                Confidence = o.Confidence ?? 0,
                InitialConst = o.InitialConst ?? 1e-3,
                LearningRate = o.LearningRate ?? 1e-2,
            },
            "deepfool" => new DeepFoolAttack(threat)
            {
                Steps = PositiveOr(o.Steps, 50, "--steps"),
                Overshoot = o.Overshoot ?? 0.02,
                Candidates = o.Candidates ?? 10,
            },
            "square" => new SquareAttack(threat)
            {
                Queries = PositiveOr(o.Queries, 5000, "--queries"),
                PInit = o.PInit ?? 0.8,
            },
            _ => throw Unknown(name),
        };
        if (o.Targeted && key != "apgd-t")
        {
            if (key == "deepfool") throw new InputException("--targeted: deepfool is an untargeted attack");
            attack = new TargetedAttack(attack, TargetSelection.Parse(o.TargetMode, PositiveOr(o.TargetCount, 9, "--target-count")));
        }
        return attack;
    }

    /// <summary>
    /// The attacks of a preset ("fast", "standard"), a single attack name, or a comma-separated list of names.
    /// Presets ignore <see cref="AttackOptions.Targeted"/> (APGD-T is their targeted member) and drop Square under L1,
    /// which it does not support.
    /// </summary>
    public static IReadOnlyList<IAttack> Preset(string name, ThreatModel threat, AttackOptions? options = null)
    {
        var o = options ?? AttackOptions.Default;
        var key = Normalise(name);
        var untargeted = o with { Targeted = false };
        return key switch
        {
            "fast" => [Create("apgd-ce", threat, untargeted), Create("apgd-t", threat, untargeted)],
            "standard" => threat.Norm == Norm.L1
                ? [Create("apgd-ce", threat, untargeted), Create("apgd-t", threat, untargeted)]
                : [Create("apgd-ce", threat, untargeted), Create("apgd-t", threat, untargeted), Create("square", threat, untargeted)],
            _ => key.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Select(n => Create(n, threat, o)).ToArray() is { Length: > 0 } list ? list : throw Unknown(name),
        };
    }

    /// <summary>The worst case over <see cref="Preset"/>'s attacks.</summary>
    public static WorstCaseEnsemble Ensemble(string name, ThreatModel threat, AttackOptions? options = null) =>
        new(threat, Preset(name, threat, options));

    private static int PositiveOr(int? value, int fallback, string option) => value switch
    {
        null => fallback,
        >= 1 => value.Value,
        _ => throw new InputException($"{option}: must be ≥ 1, got {value}"),
    };

    private static ProjectedGradientAttack Configure(ProjectedGradientAttack preset, AttackOptions o, string key)
    {
        if (key is "fgsm" or "fgm" && o.Steps is { } s && s != 1)
            throw new InputException($"--steps: {key} takes exactly one step; use bim or pgd for {s} steps");
        return preset with
        {
            AttackName = key,
            Restarts = PositiveOr(o.Restarts, preset.Restarts, "--restarts"),
            AbsoluteStepSize = o.StepSize ?? preset.AbsoluteStepSize,
            RelativeStepSize = o.RelativeStepSize ?? preset.RelativeStepSize,
            Objective = o.Loss is null ? preset.Objective : Objectives.Parse(o.Loss),
            EarlyStop = o.EarlyStop,
            Momentum = key == "mi-fgsm" ? preset.Momentum : o.Momentum ?? preset.Momentum,
            L1Sparsity = o.L1Sparsity ?? L1Geometry.DefaultSparsity,
        };
    }

    private static AutoPgdAttack Apgd(ThreatModel threat, AttackOptions o, IAttackObjective objective, int targets) => new(threat)
    {
        Steps = PositiveOr(o.Steps, 100, "--steps"),
        Restarts = PositiveOr(o.Restarts, 1, "--restarts"),
        Objective = objective,
        TargetCount = targets,
        L1Sparsity = o.L1Sparsity ?? L1Geometry.DefaultSparsity,
    };
}
