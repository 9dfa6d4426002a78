using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Geometry;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Certification;

/// <summary>
/// An L2 attack on the smoothed classifier (Salman et al. 2019, "SmoothAdv"): PGD on the cross-entropy of the
/// Monte-Carlo soft smoothed classifier, −log((1/m)·Σᵢ softmax(f(x′ + δᵢ))_y) with m fresh Gaussian samples δᵢ per step,
/// steps of α along the normalised gradient, projection onto the ε-ball and the input bounds. Certificates are checked
/// against it: a point certified at radius r must not be broken at ε = r. The gradient is taken with
/// torch.autograd.grad on the input (parameters are untouched); the model is in eval mode.
/// </summary>
public sealed record SmoothedPgdAttack(double Sigma, ThreatModel Threat)
{
    public int Steps { get; init; } = 20;
    /// <summary>Noise samples m per step.</summary>
    public int NoiseSamples { get; init; } = 32;
    /// <summary>α = RelativeStepSize·ε (2.5/steps: enough to cross the ball).</summary>
    public double? RelativeStepSize { get; init; }

    public double StepSize => (RelativeStepSize ?? 2.5 / Steps) * Threat.Epsilon;

    public IReadOnlyDictionary<string, object> Parameters => new Dictionary<string, object>
    {
        ["attack"] = "smoothadv-pgd", ["norm"] = Threat.Norm.Name(), ["eps"] = Threat.Epsilon, ["sigma"] = Sigma, ["steps"] = Steps,
        ["noise_samples"] = NoiseSamples, ["step_size"] = StepSize,
    };

    /// <summary>Adversarial inputs [B, ...] inside the ball and the bounds (checked; a violation throws).</summary>
    public Tensor Run(IGradientClassifier model, Tensor inputs, Tensor labels, Generator? generator = null)
    {
        Threat.Validate();
        if (Threat.Norm != Norm.L2) throw new ParameterException(nameof(Threat), $"the smoothed-classifier attack is L2 (randomized smoothing certifies L2), got {Threat.Norm.Name()}");
        if (Steps < 1) throw new ParameterException(nameof(Steps), $"must be ≥ 1, got {Steps}");
        if (NoiseSamples < 1) throw new ParameterException(nameof(NoiseSamples), $"must be ≥ 1, got {NoiseSamples}");
        using var mode = model.EvalMode();
        using var outer = NewDisposeScope();
        var x = inputs.detach();
        var geometry = Geometries.For(Norm.L2);
        var bounds = Threat.Bounds;
        long b = x.shape[0];
        var shape = x.shape.Skip(1).ToArray();
        var adv = x.clone();
        if (Threat.Epsilon == 0) return Finish(x, adv);
        var y = labels.to(ScalarType.Int64);
        for (int step = 0; step < Steps; step++)
        {
            using var scope = NewDisposeScope();
            Tensor grad;
            using (enable_grad())
            {
                var leaf = adv.detach().requires_grad_(true);
                var noise = randn([b * NoiseSamples, .. shape], generator: generator).to(x.device) * Keep(Sigma);
                var noisy = leaf.repeat_interleave(NoiseSamples, 0) + noise;
                var probabilities = nn.functional.softmax(model.Logits(noisy), 1).reshape(b, NoiseSamples, -1).mean([1L]);
                var loss = -probabilities.gather(1, y.unsqueeze(1)).clamp_min(Keep(1e-20)).log().sum();
                grad = autograd.grad([loss], [leaf])[0];
            }
            using (no_grad())
            {
                var moved = adv + geometry.Direction(grad, adv, bounds) * Keep(StepSize);
                var next = (x + geometry.Project(moved - x, Threat.Epsilon)).clamp(Keep(bounds.Lower), Keep(bounds.Upper)).MoveToOuterDisposeScope();
                adv.Dispose();
                adv = next;
            }
        }
        return Finish(x, adv);
    }

    private Tensor Finish(Tensor x, Tensor adv)
    {
        // Project a hair inside the ball: x + δ rounds to float32, which in L2 over many pixels can add ~1e-6 to ‖δ‖.
        var contained = ThreatModelCheck.Contain(x, adv, Threat with { Epsilon = Threat.Epsilon * (1 - 1e-4) });
        using (var distance = Geometries.For(Norm.L2).Distance(contained.to(ScalarType.Float64) - x.to(ScalarType.Float64)))
            ThreatModelCheck.Verify(x, contained, distance, Threat);
        return contained.MoveToOuterDisposeScope();
    }
}
