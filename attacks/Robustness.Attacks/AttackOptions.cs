namespace Robustness.Attacks;

/// <summary>
/// Settings a caller (the CLI, a config file) may give any attack; null means the attack's own default (the record's
/// property initialiser or its preset constant — the one place defaults live). Options an attack does not use are
/// ignored, except where ignoring would mislead (e.g. several steps for FGSM). Validation errors name these properties.
/// </summary>
public sealed record AttackOptions
{
    public static AttackOptions Default { get; } = new();

    /// <summary>Iterations (PGD family, APGD, FAB, C&amp;W inner steps, DeepFool max steps).</summary>
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
    /// <summary>k for top-k targets, APGD-T and FAB-T (<see cref="AutoPgdAttack.DefaultTargetCount"/> by default, as in AutoAttack).</summary>
    public int? TargetCount { get; init; }
    /// <summary>Objective for the PGD family: "ce", "margin" or "dlr".</summary>
    public string? Loss { get; init; }
    /// <summary>Query budget per sample of the query-based attacks (Square, HopSkipJump, Boundary).</summary>
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
    /// <summary>Square: successive halving of the budget from this many queries on (<see cref="SquareAttack.HalvingFrom"/>;
    /// null = the attack's default, off; 0 = off even where a preset turns it on).</summary>
    public int? SquareHalvingFrom { get; init; }
    /// <summary>Expectation over Transformation: forward/backward passes whose input gradients every gradient attack
    /// averages per step (for randomised models); null = the attack's default (1; 20 in the <c>rand</c> preset).</summary>
    public int? EotSamples { get; init; }
    /// <summary>The white-box model transfer attacks craft on (<c>transfer:NAME</c>).</summary>
    public Surrogate? Surrogate { get; init; }
    /// <summary>Gradient attacks named without the <c>transfer:</c> prefix are crafted on <see cref="Surrogate"/> too
    /// (for a model under attack that gives no gradients, where that is the only way they can run).</summary>
    public bool TransferGradientAttacks { get; init; }
}
