using System.Globalization;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Geometry;
using static Robustness.Attacks.AttackRegistry;

namespace Robustness.Attacks;

/// <summary>
/// The registered attacks. Every default is read from the attack records and preset constants (never repeated here):
/// <see cref="AttackEntry.Build"/> starts from a default-built record and overrides only what the options set, and
/// <see cref="AttackEntry.Defaults"/> describes that same record.
/// </summary>
internal static class AttackCatalogue
{
    public static IReadOnlyList<AttackEntry> Entries { get; } =
    [
        new("fgsm", "one step of size ε along the sign (L∞) / the norm's steepest direction (L2, L1), `fgm` — Goodfellow et al. 2015", "all",
            (t, o) => Configure(Presets.Fgsm(t), o, oneStep: true), _ => []),
        new("bim", "iterative FGSM from the clean point — Kurakin et al. 2017", "all",
            (t, o) => Configure(Presets.Bim(t, PositiveOr(o.Steps, Presets.BimSteps, nameof(o.Steps))), o),
            t => Pgd(Presets.Bim(t), relative: $"α = ε·{F(Presets.BimRelativeStepSize)}")),
        new("pgd", "projected gradient descent from a uniform random start in the ball; restarts keep, per sample, the best adversarial — Madry et al. 2018", "all",
            (t, o) => Configure(Presets.Pgd(t, PositiveOr(o.Steps, Presets.PgdSteps, nameof(o.Steps)), PositiveOr(o.Restarts, Presets.PgdRestarts, nameof(o.Restarts))), o),
            t => [.. Pgd(Presets.Pgd(t), relative: $"α = {F(Presets.PgdStepFactor)}·ε/steps"), new(nameof(AttackOptions.Restarts), $"{Presets.PgdRestarts} restart"),
                  new(nameof(AttackOptions.Loss), $"loss {Presets.Pgd(t).Objective.Name}"), new(nameof(AttackOptions.EarlyStop), "no early stop")]),
        new("mi-fgsm", "momentum iterative FGSM — Dong et al. 2018", "all",
            (t, o) => Configure(Presets.MiFgsm(t, PositiveOr(o.Steps, Presets.MiFgsmSteps, nameof(o.Steps)), o.Momentum ?? Presets.MiFgsmDecay), o),
            t => [.. Pgd(Presets.MiFgsm(t), relative: "α = ε/steps"), new(nameof(AttackOptions.Momentum), $"decay {F(Presets.MiFgsmDecay)}")]),
        new("apgd-ce", "Auto-PGD with cross-entropy: step-size halving at checkpoints, momentum 0.75, restart from the best point — Croce & Hein 2020", "all (L1 with the sparse L1 step)",
            (t, o) => Apgd(t, o, Objectives.CrossEntropy, 0), t => Apgd(new AutoPgdAttack(t))),
        new("apgd-dlr", "Auto-PGD with the DLR loss — Croce & Hein 2020", "all (L1 with the sparse L1 step)",
            (t, o) => Apgd(t, o, Objectives.Dlr, 0), t => Apgd(new AutoPgdAttack(t))),
        new("apgd-t", "targeted APGD with the targeted DLR loss over the top-k other classes — Croce & Hein 2020", "all",
            (t, o) => Apgd(t, o, Objectives.Dlr, PositiveOr(o.TargetCount, AutoPgdAttack.DefaultTargetCount, nameof(o.TargetCount))),
            t => [new(nameof(AttackOptions.TargetCount), $"{AutoPgdAttack.DefaultTargetCount} targets"), .. Apgd(new AutoPgdAttack(t)).Take(1).Select(d => d with { Text = d.Text + " each" })]),
        new("fab", "FAB, fast adaptive boundary attack: minimum norm along linearised boundaries, exact projections onto hyperplane ∩ box; reports the minimum norm found — Croce & Hein 2020", "all",
            (t, o) => Fab(t, o, 0), t => Fab(new FabAttack(t), targeted: false)),
        new("fab-t", "targeted FAB over the top-k other classes (AutoAttack's FAB-T), success judged as misclassification — Croce & Hein 2020", "all",
            (t, o) => Fab(t, o, PositiveOr(o.TargetCount, FabAttack.DefaultTargetCount, nameof(o.TargetCount))), t => Fab(new FabAttack(t), targeted: true)),
        new("cw", "Carlini–Wagner L2: tanh space, Adam, binary search over c; reports the minimum norm found — Carlini & Wagner 2017", "l2",
            (t, o) =>
            {
                var d = new CarliniWagnerL2Attack(t);
                return d with
                {
                    Steps = PositiveOr(o.Steps, d.Steps, nameof(o.Steps)),
                    BinarySearchSteps = PositiveOr(o.BinarySearchSteps, d.BinarySearchSteps, nameof(o.BinarySearchSteps)),
                    Confidence = o.Confidence ?? d.Confidence,
                    InitialConst = o.InitialConst ?? d.InitialConst,
                    LearningRate = o.LearningRate ?? d.LearningRate,
                    EotSamples = PositiveOr(o.EotSamples, d.EotSamples, nameof(o.EotSamples)),
                };
            },
            t =>
            {
                var d = new CarliniWagnerL2Attack(t with { Norm = Norm.L2 });
                return [new(nameof(AttackOptions.Steps), $"{d.Steps} steps"), new(nameof(AttackOptions.BinarySearchSteps), $"{d.BinarySearchSteps} binary-search steps"),
                    new(nameof(AttackOptions.Confidence), $"κ = {F(d.Confidence)}"), new(nameof(AttackOptions.InitialConst), $"c₀ = {F(d.InitialConst)}"),
                    new(nameof(AttackOptions.LearningRate), $"lr {F(d.LearningRate)}")];
            }),
        new("deepfool", "DeepFool, minimum norm, over the top-10 classes — Moosavi-Dezfooli et al. 2016", "l2, linf",
            (t, o) =>
            {
                var d = new DeepFoolAttack(t);
                return d with
                {
                    Steps = PositiveOr(o.Steps, d.Steps, nameof(o.Steps)),
                    Overshoot = o.Overshoot ?? d.Overshoot,
                    Candidates = o.Candidates ?? d.Candidates,
                    EotSamples = PositiveOr(o.EotSamples, d.EotSamples, nameof(o.EotSamples)),
                };
            },
            t =>
            {
                var d = new DeepFoolAttack(t);
                return [new(nameof(AttackOptions.Steps), $"{d.Steps} steps"), new(nameof(AttackOptions.Overshoot), $"overshoot {F(d.Overshoot)}")];
            }),
        new("square", "Square Attack: score-based (black-box), needs only logits — Andriushchenko et al. 2020", "linf, l2",
            (t, o) =>
            {
                var d = new SquareAttack(t);
                if (o.SquareHalvingFrom is < 0) throw new ParameterException(nameof(o.SquareHalvingFrom), $"must be ≥ 0 (0 = off), got {o.SquareHalvingFrom}");
                return d with
                {
                    Queries = PositiveOr(o.Queries, d.Queries, nameof(o.Queries)), PInit = o.PInit ?? d.PInit,
                    HalvingFrom = o.SquareHalvingFrom is { } h ? (h == 0 ? null : h) : d.HalvingFrom,
                };
            },
            t =>
            {
                var d = new SquareAttack(t);
                return [new(nameof(AttackOptions.Queries), $"{d.Queries} queries"), new(nameof(AttackOptions.PInit), $"p_init {F(d.PInit)}"),
                    new(nameof(AttackOptions.SquareHalvingFrom), "every standing sample gets the whole budget (no halving)")];
            }),
        new("hopskipjump", "HopSkipJump: decision-based (label only), binary search to the boundary, gradient-direction estimate from label queries, geometric step; minimum norm — Chen, Jordan & Wainwright 2020", "l2, linf",
            (t, o) =>
            {
                var d = new HopSkipJumpAttack(t);
                return d with { Queries = PositiveOr(o.Queries, d.Queries, nameof(o.Queries)), EarlyStop = o.EarlyStop };
            },
            t =>
            {
                var d = new HopSkipJumpAttack(t);
                return [new(nameof(AttackOptions.Queries), $"{d.Queries} queries"), new(null, $"B₀ = {d.InitialEvaluations} probes growing with √t (≤ {d.MaxEvaluations})"),
                    new(null, $"γ = {F(d.Gamma)}"), new(nameof(AttackOptions.EarlyStop), "runs the whole budget")];
            }),
        new("boundary", "Boundary attack: decision-based (label only), random walk along the boundary towards the input; minimum norm — Brendel et al. 2018", "l2",
            (t, o) =>
            {
                var d = new BoundaryAttack(t);
                return d with { Queries = PositiveOr(o.Queries, d.Queries, nameof(o.Queries)), EarlyStop = o.EarlyStop };
            },
            t =>
            {
                var d = new BoundaryAttack(t);
                return [new(nameof(AttackOptions.Queries), $"{d.Queries} queries"), new(null, $"spherical and source steps {F(d.SphericalStep)}, adapted ×{F(d.StepAdaptation)}")];
            }),
    ];

    private static string F(double v) => v.ToString("G", CultureInfo.InvariantCulture);

    private static AttackDefault[] Pgd(ProjectedGradientAttack d, string relative) =>
        [new(nameof(AttackOptions.Steps), $"{d.Steps} steps"), new(nameof(AttackOptions.RelativeStepSize), relative)];

    private static AttackDefault[] Apgd(AutoPgdAttack d) =>
        [new(nameof(AttackOptions.Steps), $"{d.Steps} steps"), new(null, $"initial step {F(d.InitialRelativeStepSize)}ε"), new(nameof(AttackOptions.Restarts), $"{d.Restarts} restart")];

    private static ProjectedGradientAttack Configure(ProjectedGradientAttack preset, AttackOptions o, bool oneStep = false)
    {
        if (oneStep && o.Steps is { } s && s != 1)
            throw new ParameterException(nameof(o.Steps), $"{preset.Name} takes exactly one step; use bim or pgd for {s} steps");
        return preset with
        {
            Restarts = PositiveOr(o.Restarts, preset.Restarts, nameof(o.Restarts)),
            AbsoluteStepSize = o.StepSize ?? preset.AbsoluteStepSize,
            RelativeStepSize = o.RelativeStepSize ?? preset.RelativeStepSize,
            Objective = o.Loss is null ? preset.Objective
                : Objectives.Parse(o.Loss) is HingeObjective ? new HingeObjective(o.Confidence ?? 0) : Objectives.Parse(o.Loss),
            EarlyStop = o.EarlyStop,
            Momentum = preset.Momentum > 0 ? preset.Momentum : o.Momentum ?? preset.Momentum,
            L1Sparsity = o.L1Sparsity ?? preset.L1Sparsity,
            EotSamples = PositiveOr(o.EotSamples, preset.EotSamples, nameof(o.EotSamples)),
        };
    }

    private static AutoPgdAttack Apgd(ThreatModel threat, AttackOptions o, IAttackObjective objective, int targets)
    {
        var d = new AutoPgdAttack(threat);
        return d with
        {
            Steps = PositiveOr(o.Steps, d.Steps, nameof(o.Steps)),
            Restarts = PositiveOr(o.Restarts, d.Restarts, nameof(o.Restarts)),
            Objective = objective,
            TargetCount = targets,
            L1Sparsity = o.L1Sparsity ?? d.L1Sparsity,
            EotSamples = PositiveOr(o.EotSamples, d.EotSamples, nameof(o.EotSamples)),
        };
    }

    private static FabAttack Fab(ThreatModel threat, AttackOptions o, int targets)
    {
        var d = new FabAttack(threat);
        return d with
        {
            Steps = PositiveOr(o.Steps, d.Steps, nameof(o.Steps)),
            Restarts = PositiveOr(o.Restarts, d.Restarts, nameof(o.Restarts)),
            TargetCount = targets,
            EotSamples = PositiveOr(o.EotSamples, d.EotSamples, nameof(o.EotSamples)),
        };
    }

    private static AttackDefault[] Fab(FabAttack d, bool targeted) =>
        [.. targeted ? [new AttackDefault(nameof(AttackOptions.TargetCount), $"{FabAttack.DefaultTargetCount} targets")] : Array.Empty<AttackDefault>(),
         new(nameof(AttackOptions.Steps), $"{d.Steps} steps" + (targeted ? " each" : "")), new(nameof(AttackOptions.Restarts), $"{d.Restarts} restart"),
         new(null, $"α_max {F(d.AlphaMax)}, η {F(d.Eta)}, β {F(d.Beta)}")];
}
