using Robustness.Core;

namespace Robustness.Attacks;

/// <summary>The classic first-order attacks as configurations of the one <see cref="ProjectedGradientAttack"/> engine.</summary>
public static class Presets
{
    /// <summary>FGSM (Goodfellow et al. 2015): one step of size ε from the clean point; for L2/L1 this is FGM.</summary>
    public static ProjectedGradientAttack Fgsm(ThreatModel threat) => new(threat)
    {
        AttackName = threat.Norm == Norm.Linf ? "fgsm" : "fgm",
        Steps = 1,
        RandomStart = false,
        RelativeStepSize = 1.0,
    };

    /// <summary>BIM (Kurakin et al. 2017): iterative FGSM from the clean point, α = ε/4 by default.</summary>
    public static ProjectedGradientAttack Bim(ThreatModel threat, int steps = 10, double relativeStepSize = 0.25) => new(threat)
    {
        AttackName = "bim",
        Steps = steps,
        RandomStart = false,
        RelativeStepSize = relativeStepSize,
    };

    /// <summary>PGD (Madry et al. 2018): uniform random start in the ball, α = 2.5·ε/steps.</summary>
    public static ProjectedGradientAttack Pgd(ThreatModel threat, int steps = 10, int restarts = 1) => new(threat)
    {
        AttackName = "pgd",
        Steps = steps,
        Restarts = restarts,
        RandomStart = true,
        RelativeStepSize = 2.5 / Math.Max(1, steps),
    };

    /// <summary>MI-FGSM (Dong et al. 2018): momentum over L1-normalised gradients, α = ε/steps, no random start.</summary>
    public static ProjectedGradientAttack MiFgsm(ThreatModel threat, int steps = 10, double decay = 1.0) => new(threat)
    {
        AttackName = "mi-fgsm",
        Steps = steps,
        RandomStart = false,
        RelativeStepSize = 1.0 / Math.Max(1, steps),
        Momentum = decay,
    };
}
