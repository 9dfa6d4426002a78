using Robustness.Certification;
using Robustness.Core;
using Robustness.Core.Graphs;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Defenses;

/// <summary>
/// Interval bound propagation training (Gowal et al. 2018): loss κ·CE(z(x), y) + (1 − κ)·CE(ẑ(x, ε), y), where ẑ are
/// the worst-case logits of the L∞ ball (upper bounds of z_j − z_y with the last layer folded in, ẑ_y = 0). ε follows
/// the trainer's schedule — 0 during the warm-up (<see cref="TrainingOptions.EpsWarmupEpochs"/>), then a linear ramp
/// (<see cref="TrainingOptions.EpsRampEpochs"/>) — and κ goes from <see cref="KappaStart"/> to <see cref="KappaEnd"/>
/// with the same ramp (κ = κ₀ + (κ₁ − κ₀)·ε_t/ε). The bounds are plain float32 tensor code over the network's
/// description, so backward differentiates through them. Batch norm layers are bounded with their running statistics.
/// The "adversarial" training accuracy is the fraction of the batch verified at the current ε.
/// </summary>
public sealed record IbpObjective(double Epsilon) : ITrainingObjective
{
    public double KappaStart { get; init; } = 1.0;
    public double KappaEnd { get; init; } = 0.5;

    public string Name => "ibp";
    public Norm Norm => Norm.Linf;

    public IReadOnlyDictionary<string, object> Parameters => new Dictionary<string, object>
    {
        ["eps"] = Epsilon, ["norm"] = Norm.Name(), ["kappa_start"] = KappaStart, ["kappa_end"] = KappaEnd, ["bounds"] = "ibp, last layer folded",
    };

    /// <summary>κ when the schedule is at ε_t.</summary>
    public double Kappa(double epsilonNow) =>
        KappaStart + (KappaEnd - KappaStart) * (Epsilon > 0 ? Math.Clamp(epsilonNow / Epsilon, 0, 1) : 1);

    public TrainingStepResult Compute(IGradientClassifier model, Tensor inputs, Tensor labels, TrainingStepContext context)
    {
        if (!(Epsilon > 0) || double.IsInfinity(Epsilon)) throw new ParameterException(nameof(Epsilon), $"IBP training needs a finite ε > 0, got {Epsilon}");
        if (model.Spec.MultiLabel) throw new InputException("ibp training: the bounds are on the margins of one top-1 class; a multi-label model has one decision per label (train it with pgd or trades)");
        if (!(KappaStart >= 0 && KappaStart <= 1)) throw new ParameterException(nameof(KappaStart), $"must be in [0, 1], got {KappaStart}");
        if (!(KappaEnd >= 0 && KappaEnd <= 1)) throw new ParameterException(nameof(KappaEnd), $"must be in [0, 1], got {KappaEnd}");
        var graph = NetworkDescriptions.Of(model, "ibp");
        var logits = model.Logits(inputs);
        var clean = nn.functional.cross_entropy(logits, labels);
        double kappa = Kappa(context.Epsilon);
        if (context.Epsilon <= 0 && kappa >= 1)
            return new TrainingStepResult(clean, logits.detach(), null); // warm-up: the bounds would not enter the loss
        var box = Interval.LinfBall(inputs, context.Epsilon, model.Spec.Bounds);
        var worst = new IntervalBoundPropagation().WorstCaseLogits(graph, box, labels);
        var robust = nn.functional.cross_entropy(worst, labels);
        var loss = clean * Keep(kappa) + robust * Keep(1 - kappa);
        return new TrainingStepResult(loss, logits.detach(), worst.detach());
    }
}

/// <summary>
/// Clean accuracy and IBP-verified accuracy (float64 bounds with the float32 rounding slack, as `robust certify`
/// computes them) on the held-out split; the verified accuracy is reported as the robust validation accuracy, so the
/// best epoch is the one that verifies most.
/// </summary>
public sealed class IntervalValidator(double epsilon, int batchSize = 256) : IValidator
{
    /// <summary>IBP, or the better of IBP and CROWN-IBP (for CROWN-IBP training).</summary>
    public BoundMethod Method { get; init; } = BoundMethod.Ibp;

    public ValidationMetrics Validate(IGradientClassifier model, ImageDataset data, int epoch)
    {
        using var mode = model.EvalMode();
        var device = model.Device;
        using var cleanCorrect = zeros(1, ScalarType.Int64, device);
        using var verifiedCount = zeros(1, ScalarType.Int64, device);
        var verifier = new IntervalVerifier(epsilon) { Method = Method };
        var graph = NetworkDescriptions.Of(model, "ibp");
        foreach (var batch in data.Batches(batchSize, device))
        {
            using var scope = NewDisposeScope();
            using (batch)
            using (no_grad())
            {
                cleanCorrect.add_(model.Logits(batch.Inputs).argmax(1).eq(batch.Labels).sum());
                using var v = verifier.Verify(graph, model.Spec.Bounds, batch.Inputs, batch.Labels);
                verifiedCount.add_(v.Verified.sum());
            }
        }
        double n = Math.Max(1, data.Count);
        return new ValidationMetrics(cleanCorrect.item<long>() / n, verifiedCount.item<long>() / n, null);
    }
}

/// <summary>
/// CROWN-IBP training (Zhang et al. 2020): like <see cref="IbpObjective"/>, but the worst-case logits mix the CROWN-IBP
/// and the IBP margin bounds, ẑ = −(β·m_CROWN-IBP + (1 − β)·m_IBP), with β going from <see cref="BetaStart"/> to
/// <see cref="BetaEnd"/> and κ from <see cref="KappaStart"/> to <see cref="KappaEnd"/> over the ε ramp. The tight,
/// expensive CROWN bounds stabilise the early phase at small ε; IBP's take over as ε reaches its target.
/// </summary>
public sealed record CrownIbpObjective(double Epsilon) : ITrainingObjective
{
    public double KappaStart { get; init; } = 1.0;
    public double KappaEnd { get; init; } = 0.5;
    public double BetaStart { get; init; } = 1.0;
    public double BetaEnd { get; init; }

    public string Name => "crown-ibp";
    public Norm Norm => Norm.Linf;

    public IReadOnlyDictionary<string, object> Parameters => new Dictionary<string, object>
    {
        ["eps"] = Epsilon, ["norm"] = Norm.Name(), ["kappa_start"] = KappaStart, ["kappa_end"] = KappaEnd,
        ["beta_start"] = BetaStart, ["beta_end"] = BetaEnd, ["bounds"] = "β·CROWN-IBP + (1−β)·IBP, last layer folded",
    };

    private double Progress(double epsilonNow) => Epsilon > 0 ? Math.Clamp(epsilonNow / Epsilon, 0, 1) : 1;
    public double Kappa(double epsilonNow) => KappaStart + (KappaEnd - KappaStart) * Progress(epsilonNow);
    public double Beta(double epsilonNow) => BetaStart + (BetaEnd - BetaStart) * Progress(epsilonNow);

    public TrainingStepResult Compute(IGradientClassifier model, Tensor inputs, Tensor labels, TrainingStepContext context)
    {
        if (!(Epsilon > 0) || double.IsInfinity(Epsilon)) throw new ParameterException(nameof(Epsilon), $"CROWN-IBP training needs a finite ε > 0, got {Epsilon}");
        if (model.Spec.MultiLabel) throw new InputException("crown-ibp training: the bounds are on the margins of one top-1 class; a multi-label model has one decision per label (train it with pgd or trades)");
        foreach (var (name, v) in new[] { (nameof(KappaStart), KappaStart), (nameof(KappaEnd), KappaEnd), (nameof(BetaStart), BetaStart), (nameof(BetaEnd), BetaEnd) })
            if (!(v >= 0 && v <= 1)) throw new ParameterException(name, $"must be in [0, 1], got {v}");
        var graph = NetworkDescriptions.Of(model, "crown-ibp");
        if (CrownIbp.Unsupported(graph) is { } why) throw new InputException($"crown-ibp: model {model.Spec.Arch}: {why} (train it with --defense ibp)");
        var logits = model.Logits(inputs);
        var clean = nn.functional.cross_entropy(logits, labels);
        double kappa = Kappa(context.Epsilon), beta = Beta(context.Epsilon);
        if (context.Epsilon <= 0 && kappa >= 1) return new TrainingStepResult(clean, logits.detach(), null);
        var box = Interval.LinfBall(inputs, context.Epsilon, model.Spec.Bounds);
        var ibp = new IntervalBoundPropagation();
        var intervals = ibp.Propagate(graph, box, graph.Nodes.Count - 1);
        var margins = ibp.MarginLowerBounds(graph, box, labels);
        if (beta > 0)
            margins = margins * Keep(1 - beta) + new CrownIbp().MarginLowerBounds(graph, box, labels, intervals)! * Keep(beta);
        var worst = -margins;
        var loss = clean * Keep(kappa) + nn.functional.cross_entropy(worst, labels) * Keep(1 - kappa);
        return new TrainingStepResult(loss, logits.detach(), worst.detach());
    }
}
