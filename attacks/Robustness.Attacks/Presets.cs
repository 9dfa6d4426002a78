using Robustness.Core;
using Robustness.Core.Attacking;

namespace Robustness.Attacks;

/// <summary>
/// The classic first-order attacks as configurations of the one <see cref="ProjectedGradientAttack"/> engine. Each
/// preset's defaults are the constants here; the registry, the CLI and the README's attack table read them.
/// </summary>
public static class Presets
{
    public const int BimSteps = 10;
    public const double BimRelativeStepSize = 0.25;
    public const int PgdSteps = 10;
    public const int PgdRestarts = 1;
    /// <summary>PGD's α = 2.5·ε/steps (Madry et al.): enough to cross the ball from any start.</summary>
    public const double PgdStepFactor = 2.5;
    public const int MiFgsmSteps = 10;
    public const double MiFgsmDecay = 1.0;

    /// <summary>FGSM (Goodfellow et al. 2015): one step of size ε from the clean point; for L2/L1 this is FGM.</summary>
    public static ProjectedGradientAttack Fgsm(ThreatModel threat) => new(threat)
    {
        AttackName = threat.Norm == Norm.Linf ? "fgsm" : "fgm",
        Steps = 1,
        Start = Starts.None,
        RelativeStepSize = 1.0,
    };

    /// <summary>BIM (Kurakin et al. 2017): iterative FGSM from the clean point, α = ε/4 by default.</summary>
    public static ProjectedGradientAttack Bim(ThreatModel threat, int steps = BimSteps, double relativeStepSize = BimRelativeStepSize) => new(threat)
    {
        AttackName = "bim",
        Steps = steps,
        Start = Starts.None,
        RelativeStepSize = relativeStepSize,
    };

    /// <summary>PGD (Madry et al. 2018): uniform random start in the ball, α = 2.5·ε/steps.</summary>
    public static ProjectedGradientAttack Pgd(ThreatModel threat, int steps = PgdSteps, int restarts = PgdRestarts) => new(threat)
    {
        AttackName = "pgd",
        Steps = steps,
        Restarts = restarts,
        Start = Starts.Uniform,
        RelativeStepSize = PgdStepFactor / Math.Max(1, steps),
    };

    /// <summary>MI-FGSM (Dong et al. 2018): momentum over L1-normalised gradients, α = ε/steps, no random start.</summary>
    public static ProjectedGradientAttack MiFgsm(ThreatModel threat, int steps = MiFgsmSteps, double decay = MiFgsmDecay) => new(threat)
    {
        AttackName = "mi-fgsm",
        Steps = steps,
        Start = Starts.None,
        RelativeStepSize = 1.0 / Math.Max(1, steps),
        Momentum = decay,
    };
}
