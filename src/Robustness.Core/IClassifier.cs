using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Core;

/// <summary>Maps inputs in <see cref="ModelSpec.Bounds"/> (pixel space) to logits. Enough for score-based attacks.</summary>
public interface IClassifier
{
    ModelSpec Spec { get; }
    Device Device { get; }
    /// <summary>Logits [N, K] for inputs [N, ...InputShape]; gradients flow when grad mode is on.</summary>
    Tensor Logits(Tensor inputs);
}

/// <summary>A classifier whose logits are differentiable with respect to the input (white-box attacks need this).</summary>
public interface IGradientClassifier : IClassifier
{
    /// <summary>The whole pixel→logits pipeline, normalisation included.</summary>
    nn.Module<Tensor, Tensor> Module { get; }

    /// <summary>Puts the model in eval mode until the returned scope is disposed, then restores the previous mode.</summary>
    IDisposable EvalMode() => new ModeScope(Module, training: false);
    IDisposable TrainMode() => new ModeScope(Module, training: true);
}

/// <summary>
/// A view of a float32 classifier whose gradient passes run in reduced precision (e.g. bf16). Passes without grad —
/// every verdict — come from <see cref="FullPrecision"/>. The evaluator uses this to check that reduced precision did
/// not weaken the attacks.
/// </summary>
public interface IReducedPrecisionClassifier : IGradientClassifier, IDisposable
{
    IGradientClassifier FullPrecision { get; }
    /// <summary>"bf16", ...</summary>
    string Precision { get; }
    /// <summary>Copies the full-precision model's current weights, buffers and mode into the view (the trainer calls
    /// it before each batch's attack).</summary>
    void Refresh();
}

/// <summary>Sets a module's train/eval mode and restores the previous mode on dispose.</summary>
public sealed class ModeScope : IDisposable
{
    private readonly nn.Module _module;
    private readonly bool _previous;

    public ModeScope(nn.Module module, bool training)
    {
        _module = module;
        _previous = module.training;
        module.train(training);
    }

    public void Dispose() => _module.train(_previous);
}

/// <summary>
/// A TorchSharp network wrapped as a classifier. <see cref="Network"/> carries the PyTorch-compatible
/// parameter names; <see cref="Module"/> is the pixel→logits pipeline (normalisation in front, if any).
/// </summary>
public sealed class TorchClassifier : IGradientClassifier, IDisposable
{
    public TorchClassifier(nn.Module<Tensor, Tensor> network, ModelSpec spec, Device? device = null, nn.Module<Tensor, Tensor>? pipeline = null)
    {
        Network = network;
        Module = pipeline ?? network;
        Spec = spec;
        Device = device ?? CPU;
        Module.to(Device);
    }

    public nn.Module<Tensor, Tensor> Network { get; }
    public nn.Module<Tensor, Tensor> Module { get; }
    public ModelSpec Spec { get; }
    public Device Device { get; }

    /// <summary>The pipeline's logits; 4-D batches enter in channels-last layout (<see cref="Layout"/>), the fast
    /// convolution path, whatever layout the caller holds them in. The values do not depend on the layout.</summary>
    public Tensor Logits(Tensor inputs) => Module.call(Layout.ChannelsLastView(inputs));

    public long ParameterCount => Network.parameters().Sum(p => p.numel());

    public void Dispose() => Module.Dispose();
}
