using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Defenses;

/// <summary>
/// An exponential moving average of a module's weights, updated after every optimizer step (Polyak averaging; the
/// "model weight averaging" of Gowal et al. 2020, "Uncovering the limits of adversarial training", which adds robust
/// accuracy and damps robust overfitting). Floating-point parameters and buffers (BatchNorm running statistics) are
/// averaged; integer buffers (num_batches_tracked) follow the live model. The decay warms up as
/// min(d, (1 + t) / (10 + t)) after t updates, so early averages are not dominated by the random start.
/// The averages live on the model's device and are updated in place: no allocation and no host sync per step.
/// </summary>
public sealed class WeightAverage : IDisposable
{
    private readonly string[] _names;
    private readonly Tensor[] _live;
    private readonly Tensor[] _average;
    private readonly Tensor[] _backup;
    private readonly bool[] _floating;
    private bool _swapped;

    public WeightAverage(nn.Module module, double decay)
    {
        if (!(decay > 0 && decay < 1)) throw new ParameterException(nameof(TrainingOptions.WeightAverageDecay), $"must be in (0, 1), got {decay}");
        Decay = decay;
        var state = module.state_dict();
        _names = [.. state.Keys];
        _live = [.. state.Values];
        _floating = _live.Select(t => t.is_floating_point()).ToArray();
        using var _ = no_grad();
        _average = _live.Select(t => t.detach().clone().DetachFromDisposeScope()).ToArray();
        _backup = _live.Select(t => empty_like(t).DetachFromDisposeScope()).ToArray();
    }

    public double Decay { get; }

    /// <summary>The decay used for update number <paramref name="updates"/> (0-based count of earlier updates).</summary>
    public double DecayAt(long updates) => Math.Min(Decay, (1.0 + updates) / (10.0 + updates));

    /// <summary>average ← d·average + (1 − d)·weights, with d = <see cref="DecayAt"/>(<paramref name="updates"/>).</summary>
    public void Update(long updates)
    {
        if (_swapped) throw new InvalidOperationException("the averaged weights are swapped in; swap back before updating");
        double d = DecayAt(updates);
        using var _ = no_grad();
        for (int i = 0; i < _live.Length; i++)
        {
            if (_floating[i]) _average[i].mul_(Keep(d)).add_(_live[i].detach(), alpha: Keep(1 - d));
            else _average[i].copy_(_live[i]);
        }
    }

    /// <summary>Puts the averaged weights into the module, keeping the live ones aside for <see cref="SwapBack"/>.</summary>
    public void SwapIn()
    {
        if (_swapped) return;
        using var _ = no_grad();
        for (int i = 0; i < _live.Length; i++)
        {
            _backup[i].copy_(_live[i]);
            _live[i].copy_(_average[i]);
        }
        _swapped = true;
    }

    /// <summary>Puts the live (trained) weights back after <see cref="SwapIn"/>.</summary>
    public void SwapBack()
    {
        if (!_swapped) return;
        using var _ = no_grad();
        for (int i = 0; i < _live.Length; i++) _live[i].copy_(_backup[i]);
        _swapped = false;
    }

    /// <summary>The averages by state-dict key (the module's own tensors, not copies), for checkpoints.</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> State() => _names.Zip(_average, KeyValuePair.Create);

    /// <summary>Restores the averages of a checkpoint (keys as <see cref="State"/> wrote them).</summary>
    public void Load(IReadOnlyDictionary<string, Tensor> tensors)
    {
        using var _ = no_grad();
        for (int i = 0; i < _names.Length; i++)
        {
            if (!tensors.TryGetValue(_names[i], out var t))
                throw new InputException($"checkpoint: the weight average has no tensor '{_names[i]}' (was the run made without --ema?)");
            if (!t.shape.SequenceEqual(_average[i].shape))
                throw new InputException($"checkpoint: weight average '{_names[i]}' has shape [{string.Join(",", t.shape)}], the model has [{string.Join(",", _average[i].shape)}]");
            _average[i].copy_(t);
        }
    }

    public void Dispose()
    {
        foreach (var t in _average) t.Dispose();
        foreach (var t in _backup) t.Dispose();
    }
}
