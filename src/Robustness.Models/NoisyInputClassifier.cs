using System.Globalization;
using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Models;

/// <summary>
/// A randomised classifier: x ↦ f(x + σ·z), z ~ N(0, I) drawn afresh in every forward pass — in eval mode too — from
/// torch's global generator (seeded by the run). The Gaussian-noise defense as deployed (Lecuyer et al. 2019; the
/// base classifier of randomized smoothing), and the model to evaluate with EOT (the <c>rand</c> attack preset): every
/// single forward pass is one random draw, so one gradient is a noisy estimate. Gradients flow through the noise to
/// the input. The noisy input is not clipped to the bounds. <see cref="ModelSpec.Extra"/> records σ under
/// <c>input_noise_std</c>.
/// </summary>
public sealed class NoisyInputClassifier : IGradientClassifier
{
    public NoisyInputClassifier(IGradientClassifier inner, double sigma)
    {
        if (!(sigma > 0) || double.IsInfinity(sigma)) throw new ParameterException("InputNoise", $"must be a finite number > 0, got {sigma}");
        Inner = inner;
        Sigma = sigma;
        Module = new NoiseThen(inner, sigma);
        var extra = new Dictionary<string, string>(inner.Spec.Extra) { ["input_noise_std"] = sigma.ToString("G", CultureInfo.InvariantCulture) };
        Spec = inner.Spec with { Extra = extra };
    }

    public IGradientClassifier Inner { get; }
    public double Sigma { get; }
    public ModelSpec Spec { get; }
    public Device Device => Inner.Device;
    /// <summary>Noise, then the inner pipeline; its mode is the inner model's.</summary>
    public nn.Module<Tensor, Tensor> Module { get; }

    public Tensor Logits(Tensor inputs) => Module.call(inputs);

    public IDisposable EvalMode() => Inner.EvalMode();
    public IDisposable TrainMode() => Inner.TrainMode();

    private sealed class NoiseThen : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> inner;
        private readonly IClassifier _classifier;
        private readonly double _sigma;

        public NoiseThen(IGradientClassifier classifier, double sigma) : base("noisy_input")
        {
            inner = classifier.Module;
            _classifier = classifier;
            _sigma = sigma;
            RegisterComponents();
        }

        public override Tensor forward(Tensor input)
        {
            using var scope = NewDisposeScope();
            var noise = randn(input.shape, dtype: input.dtype, device: input.device) * Keep(_sigma);
            return _classifier.Logits(input + noise).MoveToOuterDisposeScope();
        }
    }
}
