using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Defenses;

/// <summary>What an objective needs to know about the current iteration.</summary>
/// <param name="Epsilon">ε at this iteration (after the ramp).</param>
/// <param name="Generator">Randomness for attack starts and noise; checkpointed with the run.</param>
/// <param name="AttackModel">What the inner attack differentiates when it is not the model itself (a bf16 view of the
/// current weights, <see cref="TrainingOptions.AttackPrecision"/>); the loss is always taken on the model.</param>
public sealed record TrainingStepContext(double Epsilon, Generator Generator, int Epoch, long Iteration, IGradientClassifier? AttackModel = null)
{
    /// <summary>Which replay of the minibatch this is (0 … <see cref="ITrainingObjective.Replays"/> − 1).</summary>
    public int Replay { get; init; }
    /// <summary>The objective's run state (<see cref="ITrainingObjective.CreateState"/>).</summary>
    public IObjectiveState? State { get; init; }
}

/// <summary>An objective's mutable state over a run, saved in and restored from the run's checkpoints (exact resume).</summary>
public interface IObjectiveState : IDisposable
{
    IEnumerable<KeyValuePair<string, Tensor>> Save();
    void Load(IReadOnlyDictionary<string, Tensor> tensors);
}

/// <summary>
/// The loss of one batch (a scalar with its graph, ready for backward) and, for the accuracy display, the logits on
/// clean and on attacked/noisy inputs when the objective has them. All tensors belong to the caller's scope.
/// </summary>
public sealed record TrainingStepResult(Tensor Loss, Tensor? CleanLogits, Tensor? AdversarialLogits);

/// <summary>The training loss of a batch: clean cross-entropy, an adversarial loss, TRADES, noise, ...</summary>
public interface ITrainingObjective
{
    /// <summary>"standard", "pgd", "fgsm-rs", "trades", "gaussian".</summary>
    string Name { get; }
    Norm Norm { get; }
    /// <summary>The full training ε (0 when the objective does not attack).</summary>
    double Epsilon { get; }
    /// <summary>Every setting that shapes the loss, for provenance.</summary>
    IReadOnlyDictionary<string, object> Parameters { get; }
    /// <summary>
    /// True where reduced-precision (bf16) attack passes were measured to keep PGD-20 robust accuracy within 0.5
    /// points of float32 (docs/performance.md): PGD-AT on tiny-cnn, 75.29 % vs 75.34 %. FGSM-RS lost 0.58 points
    /// (73.99 % vs 74.57 %) and TRADES was not measured, so the trainer refuses bf16 there.
    /// </summary>
    bool ReducedPrecisionValidated => false;
    /// <summary>Optimizer steps per minibatch (free adversarial training replays each minibatch m times); 1 otherwise.</summary>
    int Replays => 1;
    /// <summary>Mutable state the objective carries through the run (free AT's perturbation), checkpointed with it; null when none.</summary>
    IObjectiveState? CreateState(Device device) => null;
    /// <summary>Called after the loss's backward pass and before the optimizer step (gradients of the state are available).</summary>
    void AfterBackward(TrainingStepContext context) { }
    /// <summary>The model is in train mode when called.</summary>
    TrainingStepResult Compute(IGradientClassifier model, Tensor inputs, Tensor labels, TrainingStepContext context);
}

/// <summary>The model's supervised loss on clean inputs: cross-entropy, or BCE with logits for sigmoid outputs
/// (<see cref="ClassificationLosses.For"/>).</summary>
public sealed record StandardObjective : ITrainingObjective
{
    public string Name => "standard";
    public Norm Norm => Norm.Linf;
    public double Epsilon => 0;
    public IReadOnlyDictionary<string, object> Parameters => new Dictionary<string, object>();

    public TrainingStepResult Compute(IGradientClassifier model, Tensor inputs, Tensor labels, TrainingStepContext context)
    {
        var logits = model.Logits(inputs);
        return new TrainingStepResult(ClassificationLosses.For(model.Spec).Mean(logits, labels), logits.detach(), null);
    }
}

/// <summary>Helpers the adversarial objectives share.</summary>
internal static class ObjectiveMath
{
    /// <summary>
    /// Clean logits for the accuracy display only: eval mode (BatchNorm statistics untouched), no graph, on the first
    /// <paramref name="sample"/> inputs of the (shuffled) batch — an unbiased estimate of the clean training accuracy
    /// at a fraction of a forward pass; null when <paramref name="sample"/> is 0. The trainer scores the rows it gets.
    /// </summary>
    public static Tensor? CleanLogitsForDisplay(IGradientClassifier model, Tensor inputs, int sample)
    {
        if (sample <= 0) return null;
        using var mode = model.EvalMode();
        using var _ = no_grad();
        var rows = Math.Min(sample, inputs.shape[0]);
        return model.Logits(rows < inputs.shape[0] ? inputs.narrow(0, 0, rows) : inputs).detach();
    }

    /// <summary>Default of the objectives' <c>CleanAccuracySample</c>: a quarter of a batch of 128.</summary>
    public const int DefaultCleanAccuracySample = 32;

    /// <summary>The attack's step size at ramped ε: the step keeps its ratio to ε so the ramp shrinks both.</summary>
    public static double ScaledStep(double fullStep, double fullEpsilon, double epsilon) =>
        fullEpsilon > 0 ? fullStep * epsilon / fullEpsilon : 0;

    public static void CheckEpsilon(double eps, string parameter = "Epsilon")
    {
        if (!(eps > 0) || double.IsInfinity(eps)) throw new ParameterException(parameter, $"adversarial training needs a finite ε > 0, got {eps}");
    }
}

/// <summary>
/// Madry et al. (2018) PGD adversarial training: the inner maximisation is PGD with a random start, K steps of size α,
/// run through <see cref="IAttack"/> (eval mode by default, so BatchNorm statistics are not polluted by attack
/// iterates; <see cref="KeepModelMode"/> attacks the model in train mode as the original code does). The loss is
/// (1 − r)·CE(clean) + r·CE(adversarial) with r = <see cref="AdvRatio"/> (1 = adversarial only). For a multi-label model
/// both the loss and the inner attack's objective are the binary cross-entropy against the true label set (the "ce"
/// objective follows the multi-hot labels, <see cref="CrossEntropyObjective"/>); <see cref="LabelFocus"/> can point the
/// inner attack at single decisions instead, as the per-label stages of a multi-label evaluation do.
/// </summary>
public sealed record PgdAdversarialObjective(double Epsilon, Norm Norm = Norm.Linf) : ITrainingObjective
{
    /// <summary>K = 7 (Madry et al.'s CIFAR-10 setting; the recipe of the shipped PGD-trained models).</summary>
    public int Steps { get; init; } = 7;
    /// <summary>α at full ε; null = 2.5·ε/K (enough to cross the ball). Scaled with ε during the ramp.</summary>
    public double? StepSize { get; init; }
    public double AdvRatio { get; init; } = 1.0;
    public bool KeepModelMode { get; init; }
    /// <summary>When <see cref="AdvRatio"/> = 1: how many inputs of each batch get an eval-mode clean forward pass for
    /// the clean-accuracy display (0 = none; the batch size or more = all).</summary>
    public int CleanAccuracySample { get; init; } = ObjectiveMath.DefaultCleanAccuracySample;
    /// <summary>Multi-label models: which decisions the inner attack goes after (ignored for single-label models).</summary>
    public LabelFocus LabelFocus { get; init; } = LabelFocus.All;

    public string Name => "pgd";
    public double Alpha => StepSize ?? 2.5 * Epsilon / Steps;
    public bool ReducedPrecisionValidated => true;

    public IReadOnlyDictionary<string, object> Parameters => new Dictionary<string, object>
    {
        ["eps"] = Epsilon, ["norm"] = Norm.Name(), ["steps"] = Steps, ["step_size"] = Alpha,
        ["adv_ratio"] = AdvRatio, ["attack_mode"] = KeepModelMode ? "train" : "eval", ["label_focus"] = LabelFocus.Name(),
    };

    public TrainingStepResult Compute(IGradientClassifier model, Tensor inputs, Tensor labels, TrainingStepContext context)
    {
        ObjectiveMath.CheckEpsilon(Epsilon);
        if (Steps < 1) throw new ParameterException("Steps", $"PGD training needs at least 1 step, got {Steps}");
        if (!Enum.IsDefined(LabelFocus)) throw new ParameterException(nameof(LabelFocus), $"unknown label focus {(int)LabelFocus}");
        if (!(AdvRatio >= 0 && AdvRatio <= 1)) throw new ParameterException("AdvRatio", $"must be in [0, 1], got {AdvRatio}");
        var attack = new ProjectedGradientAttack(new ThreatModel(Norm, context.Epsilon, model.Spec.Bounds))
        {
            Steps = Steps,
            AbsoluteStepSize = ObjectiveMath.ScaledStep(Alpha, Epsilon, context.Epsilon),
            Start = Starts.Uniform,
            EarlyStop = false,
        };
        var attackContext = new AttackContext(context.Generator, KeepModelMode: KeepModelMode);
        var adversarial = LabelFocus == LabelFocus.All || labels.dim() != 2
            ? attack.Craft(context.AttackModel ?? model, inputs, new AttackTargets(labels), attackContext)
            : CraftFocused(attack, context.AttackModel ?? model, inputs, labels, attackContext, LabelFocus);
        var supervised = ClassificationLosses.For(model.Spec);
        var advLogits = model.Logits(adversarial);
        var advLoss = supervised.Mean(advLogits, labels);
        if (AdvRatio >= 1)
        {
            var clean = ObjectiveMath.CleanLogitsForDisplay(model, inputs, CleanAccuracySample);
            return new TrainingStepResult(advLoss, clean, advLogits.detach());
        }
        var cleanLogits = model.Logits(inputs);
        var loss = supervised.Mean(cleanLogits, labels) * Keep(1 - AdvRatio) + advLoss * Keep(AdvRatio);
        return new TrainingStepResult(loss, cleanLogits.detach(), advLogits.detach());
    }

    /// <summary>
    /// Multi-label inner attack on single decisions: per sample, the decision with the smallest clean margin s·z (the
    /// one closest to flipping, found in the attack's mode without a graph) is the only one the goal asks to flip
    /// (<see cref="MultiLabelTargets.FlipOnly"/>). <see cref="LabelFocus.Mixed"/> attacks the first half of the
    /// (shuffled) batch on the whole label set and the second half so.
    /// </summary>
    private static Tensor CraftFocused(ProjectedGradientAttack attack, IGradientClassifier attacked, Tensor inputs, Tensor labels,
        AttackContext context, LabelFocus focus)
    {
        long n = inputs.shape[0], whole = focus == LabelFocus.Mixed ? n / 2 : 0;
        var x = inputs.narrow(0, whole, n - whole);
        var y = labels.narrow(0, whole, n - whole);
        Tensor goal;
        using (context.KeepModelMode ? null : attacked.EvalMode())
        using (no_grad())
        {
            var (margins, _) = Objectives.LabelMargins(attacked.Logits(x), new AttackTargets(y));
            goal = MultiLabelTargets.FlipOnly(y, margins.argmin(1));
        }
        if (whole == 0) return attack.Craft(attacked, x, new AttackTargets(y, goal), context);
        var rest = attack.Craft(attacked, inputs.narrow(0, 0, whole), new AttackTargets(labels.narrow(0, 0, whole)), context);
        return cat([rest, attack.Craft(attacked, x, new AttackTargets(y, goal), context)], 0);
    }
}

/// <summary>Which decisions of a multi-label model the PGD-AT inner attack goes after.</summary>
public enum LabelFocus
{
    /// <summary>The binary cross-entropy of the whole label set: every decision at once (the sample-level attack).</summary>
    All,
    /// <summary>Per sample, only the decision with the smallest clean margin, flipped alone.</summary>
    Weakest,
    /// <summary>Half of each batch <see cref="All"/>, the other half <see cref="Weakest"/>.</summary>
    Mixed,
}

public static class LabelFocusNames
{
    public static readonly IReadOnlyList<string> Names = ["all", "weakest", "mixed"];

    public static string Name(this LabelFocus focus) => focus.ToString().ToLowerInvariant();

    public static LabelFocus Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "all" => LabelFocus.All,
        "weakest" => LabelFocus.Weakest,
        "mixed" => LabelFocus.Mixed,
        _ => throw new ParameterException(nameof(LabelFocus), $"unknown label focus '{name}' (valid: {string.Join(", ", Names)})"),
    };
}

/// <summary>
/// "Fast is better than free" (Wong, Rice &amp; Kolter 2020): FGSM from a uniform random start in the ε-ball with
/// α = 1.25·ε, i.e. a one-step <see cref="ProjectedGradientAttack"/>. The attack's sealed final step projects δ back
/// into [−ε, ε], which is what the paper does. Prone to catastrophic overfitting: the trainer watches for it.
/// </summary>
public sealed record FgsmRsObjective(double Epsilon, Norm Norm = Norm.Linf) : ITrainingObjective
{
    /// <summary>α / ε; 1.25 in the paper.</summary>
    public double AlphaFactor { get; init; } = 1.25;
    public bool KeepModelMode { get; init; }
    /// <summary>How many inputs of each batch get an eval-mode clean forward pass for the display (0 = none).</summary>
    public int CleanAccuracySample { get; init; } = ObjectiveMath.DefaultCleanAccuracySample;

    public string Name => "fgsm-rs";

    public IReadOnlyDictionary<string, object> Parameters => new Dictionary<string, object>
    {
        ["eps"] = Epsilon, ["norm"] = Norm.Name(), ["steps"] = 1, ["step_size"] = AlphaFactor * Epsilon,
        ["alpha_factor"] = AlphaFactor, ["attack_mode"] = KeepModelMode ? "train" : "eval",
    };

    public TrainingStepResult Compute(IGradientClassifier model, Tensor inputs, Tensor labels, TrainingStepContext context)
    {
        ObjectiveMath.CheckEpsilon(Epsilon);
        if (!(AlphaFactor > 0)) throw new ParameterException("AlphaFactor", $"must be > 0, got {AlphaFactor}");
        var attack = new ProjectedGradientAttack(new ThreatModel(Norm, context.Epsilon, model.Spec.Bounds))
        {
            AttackName = "fgsm-rs",
            Steps = 1,
            AbsoluteStepSize = AlphaFactor * context.Epsilon,
            Start = Starts.Uniform,
            EarlyStop = false,
        };
        var adversarial = attack.Craft(context.AttackModel ?? model, inputs, new AttackTargets(labels), new AttackContext(context.Generator, KeepModelMode: KeepModelMode));
        var advLogits = model.Logits(adversarial);
        var clean = ObjectiveMath.CleanLogitsForDisplay(model, inputs, CleanAccuracySample);
        return new TrainingStepResult(ClassificationLosses.For(model.Spec).Mean(advLogits, labels), clean, advLogits.detach());
    }
}

/// <summary>
/// TRADES (Zhang et al. 2019): CE(f(x), y) + β·KL(softmax f(x) ‖ softmax f(x′)), where x′ maximises the KL term
/// by K steps of size α from x + 0.001·N(0, I) (<see cref="TradesInnerAttack"/>, in eval mode as the reference
/// code does). The KL is the batch mean of the per-sample sums; gradients flow through both softmaxes.
/// Multi-label models (K sigmoid outputs): the supervised term is the BCE against the true set and the robustness term
/// is, per class, the binary cross-entropy between the clean and the adversarial probabilities minus the clean
/// entropy — the Bernoulli KL, zero where they agree — summed over the classes; the inner attack maximises it
/// (<see cref="BernoulliKlObjective"/>).
/// </summary>
public sealed record TradesObjective(double Epsilon, Norm Norm = Norm.Linf) : ITrainingObjective
{
    public double Beta { get; init; } = 6.0;
    public int Steps { get; init; } = 10;
    /// <summary>α at full ε; null = 2.5·ε/K. Scaled with ε during the ramp.</summary>
    public double? StepSize { get; init; }
    public bool KeepModelMode { get; init; }

    public string Name => "trades";
    public double Alpha => StepSize ?? 2.5 * Epsilon / Steps;

    public IReadOnlyDictionary<string, object> Parameters => new Dictionary<string, object>
    {
        ["eps"] = Epsilon, ["norm"] = Norm.Name(), ["steps"] = Steps, ["step_size"] = Alpha, ["beta"] = Beta,
        ["attack_mode"] = KeepModelMode ? "train" : "eval",
    };

    public TrainingStepResult Compute(IGradientClassifier model, Tensor inputs, Tensor labels, TrainingStepContext context)
    {
        ObjectiveMath.CheckEpsilon(Epsilon);
        if (Steps < 1) throw new ParameterException("Steps", $"TRADES needs at least 1 step, got {Steps}");
        if (!(Beta >= 0) || double.IsInfinity(Beta)) throw new ParameterException("Beta", $"must be a finite number ≥ 0, got {Beta}");
        bool sigmoid = model.Spec.SigmoidOutputs;
        Tensor cleanProbabilities;
        using (KeepModelMode ? null : model.EvalMode())
        using (no_grad())
        {
            var logits = model.Logits(inputs);
            cleanProbabilities = (sigmoid ? logits.sigmoid() : nn.functional.softmax(logits, 1)).detach();
        }
        var attack = TradesInnerAttack.Create(new ThreatModel(Norm, context.Epsilon, model.Spec.Bounds), Steps,
            ObjectiveMath.ScaledStep(Alpha, Epsilon, context.Epsilon));
        if (sigmoid) attack = attack with { Objective = BernoulliKlObjective.Instance };
        var adversarial = attack.Craft(context.AttackModel ?? model, inputs, new AttackTargets(cleanProbabilities), new AttackContext(context.Generator, KeepModelMode: KeepModelMode));

        var cleanLogits = model.Logits(inputs);
        var advLogits = model.Logits(adversarial);
        var natural = ClassificationLosses.For(model.Spec).Mean(cleanLogits, labels);
        var robust = (sigmoid ? BernoulliKl(cleanLogits, advLogits) : KlDivergence(cleanLogits, advLogits)).mean();
        return new TrainingStepResult(natural + robust * Keep(Beta), cleanLogits.detach(), advLogits.detach());
    }

    /// <summary>
    /// Per-sample Σ_ℓ KL(Bern(σ(p_ℓ)) ‖ Bern(σ(q_ℓ))) from logits, [N]: the per-class binary cross-entropy between
    /// the clean and the adversarial probabilities minus the clean entropy. Gradients flow through both.
    /// </summary>
    public static Tensor BernoulliKl(Tensor pLogits, Tensor qLogits)
    {
        var p = pLogits.sigmoid();
        var logP = nn.functional.logsigmoid(pLogits);
        var log1mP = nn.functional.logsigmoid(-pLogits);
        var logQ = nn.functional.logsigmoid(qLogits);
        var log1mQ = nn.functional.logsigmoid(-qLogits);
        return (p * (logP - logQ) + (Keep(1) - p) * (log1mP - log1mQ)).sum(1);
    }

    /// <summary>Per-sample KL(softmax(p) ‖ softmax(q)) from logits, [N].</summary>
    public static Tensor KlDivergence(Tensor pLogits, Tensor qLogits)
    {
        var logP = nn.functional.log_softmax(pLogits, 1);
        var logQ = nn.functional.log_softmax(qLogits, 1);
        return (logP.exp() * (logP - logQ)).sum(1);
    }
}

/// <summary>
/// KL(p ‖ softmax(logits)) per sample, where p (float [N, K]) travels in <see cref="AttackTargets.Labels"/>:
/// the TRADES inner objective. Objectives are values, so soft labels are just another target.
/// </summary>
public sealed class KlDivergenceObjective : IAttackObjective
{
    public static KlDivergenceObjective Instance { get; } = new();
    public string Name => "kl";

    public Tensor Loss(Tensor logits, AttackTargets targets)
    {
        var p = targets.Labels;
        if (p.dim() != 2 || !p.is_floating_point())
            throw new ArgumentException("the KL objective needs clean probabilities [N, K] (float) as labels");
        return (p.xlogy(p) - p * nn.functional.log_softmax(logits, 1)).sum(1);
    }
}

/// <summary>
/// Σ_ℓ KL(Bern(p_ℓ) ‖ Bern(σ(z_ℓ))) per sample, where the clean probabilities p (float [N, K]) travel in
/// <see cref="AttackTargets.Labels"/>: the TRADES inner objective for K sigmoid outputs (multi-label and one-vs-rest).
/// Equal to the per-class BCE between p and σ(z) minus the entropy of p.
/// </summary>
public sealed class BernoulliKlObjective : IAttackObjective
{
    public static BernoulliKlObjective Instance { get; } = new();
    public string Name => "bernoulli-kl";

    public Tensor Loss(Tensor logits, AttackTargets targets)
    {
        var p = targets.Labels;
        if (p.dim() != 2 || !p.is_floating_point())
            throw new ArgumentException("the Bernoulli KL objective needs clean probabilities [N, K] (float) as labels");
        var bce = nn.functional.binary_cross_entropy_with_logits(logits, p.to(logits.dtype), reduction: nn.Reduction.None);
        var entropy = -(p.xlogy(p) + (Keep(1) - p).xlogy(Keep(1) - p));
        return (bce - entropy).sum(1);
    }
}

/// <summary>
/// The TRADES inner maximisation as a configuration of the PGD engine: start at x + 0.001·N(0, I) (the KL has a zero
/// gradient at x itself), then K steps of α along the norm's steepest direction of the KL to the clean prediction
/// (<see cref="KlDivergenceObjective"/>, whose soft labels travel in the targets), projected and clamped.
/// </summary>
public static class TradesInnerAttack
{
    public const double StartStd = 0.001;

    public static ProjectedGradientAttack Create(ThreatModel threat, int steps, double stepSize) => new(threat)
    {
        AttackName = "trades-kl",
        Steps = steps,
        AbsoluteStepSize = stepSize,
        Start = Starts.Gaussian(StartStd),
        Objective = KlDivergenceObjective.Instance,
    };
}

/// <summary>
/// Gaussian data augmentation (Cohen et al. 2019), the base-classifier training of randomized smoothing:
/// CE on x + N(0, σ²I). The noise is not clipped to the bounds, as in the smoothing literature.
/// </summary>
public sealed record GaussianNoiseObjective(double Sigma) : ITrainingObjective
{
    public const double DefaultSigma = 0.1;
    /// <summary>How many inputs of each batch get an eval-mode clean forward pass for the display (0 = none).</summary>
    public int CleanAccuracySample { get; init; } = ObjectiveMath.DefaultCleanAccuracySample;
    public string Name => "gaussian";
    public Norm Norm => Norm.L2;
    public double Epsilon => 0;
    public IReadOnlyDictionary<string, object> Parameters => new Dictionary<string, object> { ["sigma"] = Sigma };

    public TrainingStepResult Compute(IGradientClassifier model, Tensor inputs, Tensor labels, TrainingStepContext context)
    {
        if (!(Sigma >= 0) || double.IsInfinity(Sigma)) throw new ParameterException("Sigma", $"must be a finite number ≥ 0, got {Sigma}");
        var noisy = inputs + randn(inputs.shape, dtype: inputs.dtype, generator: context.Generator).to(inputs.device) * Keep(Sigma);
        var logits = model.Logits(noisy);
        var clean = ObjectiveMath.CleanLogitsForDisplay(model, inputs, CleanAccuracySample);
        return new TrainingStepResult(ClassificationLosses.For(model.Spec).Mean(logits, labels), clean, logits.detach());
    }
}

/// <summary>
/// Free adversarial training (Shafahi et al. 2019): each minibatch is replayed m times; one backward pass per replay
/// gives the gradient w.r.t. the weights (the optimizer step) and w.r.t. the perturbation δ, which moves by ε along the
/// norm's steepest direction, is projected into the ε-ball, and is carried over to the next replay and the next
/// minibatch. With E epochs the model takes m·E steps per minibatch for the cost of about m·E plain epochs; the paper
/// trains for E/m epochs to match a plain run's budget. δ is part of the checkpoint, so resume stays exact.
/// </summary>
public sealed record FreeAdversarialObjective(double Epsilon, Norm Norm = Norm.Linf) : ITrainingObjective
{
    public const int DefaultReplays = 8;
    public int Replays { get; init; } = DefaultReplays;
    /// <summary>How many inputs of each batch get an eval-mode clean forward pass for the display (0 = none).</summary>
    public int CleanAccuracySample { get; init; } = ObjectiveMath.DefaultCleanAccuracySample;

    public string Name => "free";

    public IReadOnlyDictionary<string, object> Parameters => new Dictionary<string, object>
    {
        ["eps"] = Epsilon, ["norm"] = Norm.Name(), ["replays"] = Replays, ["step_size"] = Epsilon,
    };

    public IObjectiveState? CreateState(Device device) => new FreePerturbation(device);

    public TrainingStepResult Compute(IGradientClassifier model, Tensor inputs, Tensor labels, TrainingStepContext context)
    {
        ObjectiveMath.CheckEpsilon(Epsilon);
        if (Replays < 1) throw new ParameterException(nameof(Replays), $"must be ≥ 1, got {Replays}");
        var delta = ((FreePerturbation)(context.State ?? throw new InvalidOperationException("free AT needs its state"))).For(inputs);
        var bounds = model.Spec.Bounds;
        var adversarial = (inputs + delta).clamp(Keep(bounds.Lower), Keep(bounds.Upper));
        var logits = model.Logits(adversarial);
        var clean = context.Replay == 0 ? ObjectiveMath.CleanLogitsForDisplay(model, inputs, CleanAccuracySample) : null;
        return new TrainingStepResult(ClassificationLosses.For(model.Spec).Mean(logits, labels), clean, logits.detach());
    }

    public void AfterBackward(TrainingStepContext context)
    {
        var state = (FreePerturbation)context.State!;
        // ε at this iteration (the ramp shrinks the ball and the step together).
        state.Step(Geometries.For(Norm), context.Epsilon);
    }
}

/// <summary>Free AT's carried-over perturbation: one δ of the batch shape (the last, smaller batch uses its first rows).</summary>
internal sealed class FreePerturbation(Device device) : IObjectiveState
{
    private Tensor? _delta;
    private Tensor? _leaf;

    /// <summary>δ for this batch as a leaf that collects its gradient in the backward pass.</summary>
    public Tensor For(Tensor inputs)
    {
        if (_delta is null || _delta.shape[0] < inputs.shape[0] || !_delta.shape.Skip(1).SequenceEqual(inputs.shape.Skip(1)))
        {
            _delta?.Dispose();
            _delta = zeros(inputs.shape, dtype: inputs.dtype, device: device).DetachFromDisposeScope();
        }
        _leaf?.Dispose();
        _leaf = _delta.narrow(0, 0, inputs.shape[0]).detach().requires_grad_(true).DetachFromDisposeScope();
        return _leaf;
    }

    /// <summary>δ ← Π_ε(δ + ε·direction(∇δ)) on the rows the last batch used.</summary>
    public void Step(IPerturbationGeometry geometry, double eps)
    {
        if (_leaf?.grad is not { } grad) return;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var moved = geometry.Project(_leaf + geometry.Direction(grad, _leaf, new Bounds(float.MinValue, float.MaxValue)) * Keep(eps), eps);
        _delta!.narrow(0, 0, moved.shape[0]).copy_(moved);
    }

    public IEnumerable<KeyValuePair<string, Tensor>> Save() =>
        _delta is null ? [] : [KeyValuePair.Create("delta", _delta)];

    public void Load(IReadOnlyDictionary<string, Tensor> tensors)
    {
        if (!tensors.TryGetValue("delta", out var d)) return;
        _delta?.Dispose();
        _delta = d.to(device).clone().DetachFromDisposeScope();
    }

    public void Dispose()
    {
        _leaf?.Dispose();
        _delta?.Dispose();
    }
}

/// <summary>What a defense is built from (<see cref="TrainingObjectives.Create"/>); null means the objective's own default.</summary>
public sealed record DefenseSettings
{
    public Norm Norm { get; init; } = Norm.Linf;
    public double Epsilon { get; init; } = 0.1;
    /// <summary>Inner attack steps (PGD-AT, TRADES).</summary>
    public int? Steps { get; init; }
    /// <summary>Inner attack step size α at full ε (PGD-AT, TRADES); for FGSM-RS the step α (its α/ε is the alpha factor).</summary>
    public double? StepSize { get; init; }
    public double? AdvRatio { get; init; }
    public double? Beta { get; init; }
    public double? Sigma { get; init; }
    /// <summary>Attack the model in its training mode instead of eval mode.</summary>
    public bool KeepModelMode { get; init; }
    /// <summary>Free AT: replays per minibatch.</summary>
    public int? Replays { get; init; }
    /// <summary>IBP / CROWN-IBP: final weight κ of the clean loss (default 0.5).</summary>
    public double? KappaEnd { get; init; }
    /// <summary>PGD-AT on a multi-label model: which decisions the inner attack goes after (default all).</summary>
    public LabelFocus? LabelFocus { get; init; }
}

public static class TrainingObjectives
{
    public static readonly IReadOnlyList<string> Names = ["standard", "pgd", "fgsm-rs", "free", "trades", "gaussian", "ibp", "crown-ibp"];

    /// <summary>The objective named <paramref name="name"/> ("none" is "standard"), with defaults from its record.</summary>
    public static ITrainingObjective Create(string name, DefenseSettings settings)
    {
        var key = name.Trim().ToLowerInvariant();
        if (key is not ("none" or "standard" or "gaussian"))
            new ThreatModel(settings.Norm, settings.Epsilon, Bounds.Unit).Validate();
        if (settings.Steps is <= 0) throw new ParameterException(nameof(settings.Steps), $"must be > 0, got {settings.Steps}");
        var (eps, norm, keep) = (settings.Epsilon, settings.Norm, settings.KeepModelMode);
        return key switch
        {
            "none" or "standard" => new StandardObjective(),
            "pgd" => new PgdAdversarialObjective(eps, norm) is var p
                ? p with { Steps = settings.Steps ?? p.Steps, StepSize = settings.StepSize ?? p.StepSize, AdvRatio = settings.AdvRatio ?? p.AdvRatio, KeepModelMode = keep, LabelFocus = settings.LabelFocus ?? p.LabelFocus } : null!,
            "fgsm-rs" => new FgsmRsObjective(eps, norm) is var f
                ? f with { AlphaFactor = settings.StepSize is { } a ? a / eps : f.AlphaFactor, KeepModelMode = keep } : null!,
            "free" => new FreeAdversarialObjective(eps, norm) is var fr
                ? fr with { Replays = settings.Replays ?? fr.Replays } : null!,
            "trades" => new TradesObjective(eps, norm) is var t
                ? t with { Steps = settings.Steps ?? t.Steps, StepSize = settings.StepSize ?? t.StepSize, Beta = settings.Beta ?? t.Beta, KeepModelMode = keep } : null!,
            "gaussian" => new GaussianNoiseObjective(settings.Sigma ?? GaussianNoiseObjective.DefaultSigma),
            "ibp" => norm == Norm.Linf
                ? new IbpObjective(eps) { KappaEnd = Kappa(settings.KappaEnd) }
                : throw new ParameterException("Norm", $"ibp bounds L∞ balls only, got {norm.Name()}"),
            "crown-ibp" => norm == Norm.Linf
                ? new CrownIbpObjective(eps) { KappaEnd = Kappa(settings.KappaEnd) }
                : throw new ParameterException("Norm", $"crown-ibp bounds L∞ balls only, got {norm.Name()}"),
            _ => throw new ParameterException("Defense", $"unknown defense '{name}' (valid: none, {string.Join(", ", Names)})"),
        };
    }

    private static double Kappa(double? kappa) => kappa switch
    {
        null => 0.5,
        >= 0 and <= 1 => kappa.Value,
        _ => throw new ParameterException("KappaEnd", $"must be in [0, 1], got {kappa.Value.ToString(System.Globalization.CultureInfo.InvariantCulture)}"),
    };
}
