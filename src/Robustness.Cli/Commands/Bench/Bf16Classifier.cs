using Robustness.Core;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Cli.Commands.Bench;

/// <summary>
/// A bfloat16 copy of a float32 classifier for attack steps: inputs are cast to bf16 on the way in and logits back to
/// float32 on the way out, so the attack's iterate, projection and the sealed threat-model check stay in float32 and
/// only the network's arithmetic runs in bf16 (TorchSharp 0.107 has no autocast, so this is the manual equivalent).
/// Gradients flow through both casts. The copy does not follow later updates of the source's weights.
/// </summary>
public sealed class Bf16Classifier : IGradientClassifier, IDisposable
{
    private readonly TorchClassifier _copy;

    public Bf16Classifier(TorchClassifier source)
    {
        var network = ModelZoo.Create(source.Spec.Arch, ModelZoo.OptionsFor(source.Spec));
        _copy = ModelZoo.Wrap(TensorLedger.Constructed(network), source.Spec, source.Device);
        using (no_grad())
        {
            var from = source.Module.state_dict();
            foreach (var (key, dest) in _copy.Module.state_dict())
                dest.copy_(from[key]);
        }
        TensorLedger.Constructed(_copy.Module.to(ScalarType.BFloat16));
        _copy.Module.eval();
    }

    public ModelSpec Spec => _copy.Spec;
    public Device Device => _copy.Device;
    public nn.Module<Tensor, Tensor> Module => _copy.Module;

    public Tensor Logits(Tensor inputs)
    {
        using var scope = NewDisposeScope();
        return _copy.Module.call(inputs.to(ScalarType.BFloat16)).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    public void Dispose() => _copy.Dispose();
}
