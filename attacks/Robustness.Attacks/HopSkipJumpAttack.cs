using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks;

/// <summary>
/// HopSkipJump (Chen, Jordan &amp; Wainwright 2020), decision-based: it needs only the model's top-1 label. From an
/// adversarial start (blended uniform noise) it repeats the paper's Algorithm 2: a binary search to the decision
/// boundary (to θ = γ/d^{3/2} for L2, γ/d² for L∞), an estimate of the boundary's normal from the labels of
/// B_t = B_0·√t random probes at radius δ_t (+1 adversarial, −1 not, the mean subtracted as a baseline), and a
/// geometric step along it (ξ = ‖x_t − x*‖/√t, halved until the point is adversarial). L∞ steps along the sign of the
/// estimate. It is a minimum-norm attack: it runs until the query budget is spent (or, with <see cref="EarlyStop"/>,
/// until the point is inside ε) and reports the distance of its closest adversarial; the sealed final step then
/// projects into the ε-ball, so success at ε needs that distance ≤ ε. Every query is charged to the sample's budget.
/// </summary>
public sealed record HopSkipJumpAttack(ThreatModel Threat) : AttackBase(Threat)
{
    /// <summary>Queries per sample, everything included (start, binary searches, probes, step searches).</summary>
    public int Queries { get; init; } = 10_000;
    /// <summary>B_0: probes of the first gradient estimate (the paper's 100); iteration t uses B_0·√t.</summary>
    public int InitialEvaluations { get; init; } = 100;
    /// <summary>Upper bound on the probes of one estimate (the paper's 10⁴).</summary>
    public int MaxEvaluations { get; init; } = 10_000;
    /// <summary>γ of the binary-search threshold θ (the paper's 1).</summary>
    public double Gamma { get; init; } = 1.0;
    /// <summary>Uniform noise images tried per sample for the adversarial start (ART's 100).</summary>
    public int InitTries { get; init; } = 100;
    /// <summary>Stop a sample once its adversarial is inside ε (saves queries; its minimum norm is then not the best).</summary>
    public bool EarlyStop { get; init; }

    public override string Name => "hopskipjump";
    public override ModelAccess Needs => ModelAccess.Labels;

    public override IReadOnlyDictionary<string, object> Parameters => Describe(Threat,
        ("queries", Queries), ("initial_evaluations", InitialEvaluations), ("max_evaluations", MaxEvaluations),
        ("gamma", Gamma), ("init_tries", InitTries), ("early_stop", EarlyStop), ("step_size_search", "geometric"));

    /// <summary>θ for inputs of dimension d.</summary>
    public double Theta(long d) => Threat.Norm == Norm.L2 ? Gamma / (Math.Sqrt(d) * d) : Gamma / ((double)d * d);

    protected override Perturbation Perturb(IClassifier model, Tensor inputs, AttackTargets targets, AttackContext context)
    {
        if (Threat.Norm is not (Norm.L2 or Norm.Linf)) throw new ParameterException("Norm", "hopskipjump supports the l2 and linf norms");
        if (targets.Labels.dim() != 1) throw new InputException("attack 'hopskipjump': needs class labels, not multi-hot labels");
        if (targets.Targeted) throw new ParameterException("Targeted", "hopskipjump is untargeted here (a targeted run needs a starting image of the target class)");
        if (Queries < 1) throw new ParameterException(nameof(Queries), $"must be ≥ 1, got {Queries}");
        if (InitialEvaluations < 1) throw new ParameterException(nameof(InitialEvaluations), $"must be ≥ 1, got {InitialEvaluations}");
        if (MaxEvaluations < InitialEvaluations) throw new ParameterException(nameof(MaxEvaluations), $"must be ≥ {nameof(InitialEvaluations)} ({InitialEvaluations}), got {MaxEvaluations}");
        if (!(Gamma > 0) || double.IsInfinity(Gamma)) throw new ParameterException(nameof(Gamma), $"must be a finite number > 0, got {Gamma}");
        if (InitTries < 1) throw new ParameterException(nameof(InitTries), $"must be ≥ 1, got {InitTries}");
        var ledger = new QueryLedger((int)inputs.shape[0], Queries);
        if (Threat.Epsilon == 0 || inputs.shape[0] == 0) return Perturbation.Counted(inputs, ledger);

        using var noGrad = no_grad();
        var flat = inputs.reshape(inputs.shape[0], -1);
        var oracle = new DecisionOracle(model, flat, inputs.shape.Skip(1).ToArray(), targets, ledger, Threat.Bounds);
        var search = new HopSkipJumpSearch(this, oracle, flat, context);
        var (best, distance) = search.Run();
        var minimum = tensor(distance, dtype: ScalarType.Float64).to(inputs.device);
        return Perturbation.Counted(best.reshape(inputs.shape), ledger, minimum);
    }
}
