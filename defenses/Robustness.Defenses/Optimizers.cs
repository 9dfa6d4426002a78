using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Defenses;

/// <summary>
/// A first-order optimizer over a fixed parameter list whose whole state is a set of named tensors, so a checkpoint
/// can store it exactly. We keep our own SGD and Adam (same update rules as PyTorch's) rather than TorchSharp's
/// optimizers because their state cannot be read back and restored bit for bit.
/// </summary>
public interface IParameterOptimizer : IDisposable
{
    string Name { get; }
    /// <summary>One update with learning rate <paramref name="learningRate"/> from the parameters' current gradients.</summary>
    void Step(double learningRate);
    /// <summary>One update from <paramref name="gradients"/> (by parameter name; parameters left out are not updated)
    /// instead of the parameters' own gradients: the float32 step of a mixed-precision backward pass.</summary>
    void Step(double learningRate, IReadOnlyDictionary<string, Tensor> gradients);
    /// <summary>The state to checkpoint (momentum buffers, moments, step count), keyed by stable names.</summary>
    IReadOnlyDictionary<string, Tensor> State();
    /// <summary>Copies a checkpointed state back in place.</summary>
    void LoadState(IReadOnlyDictionary<string, Tensor> state);
}

public static class ParameterOptimizers
{
    /// <summary>The optimizer of <paramref name="options"/> over the trainable parameters of <paramref name="module"/>
    /// (which must already be on its device).</summary>
    public static IParameterOptimizer Create(nn.Module module, TrainingOptions options)
    {
        var parameters = module.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        return options.Optimizer switch
        {
            OptimizerKind.Sgd => new SgdOptimizer(parameters, options.Momentum, options.WeightDecay, options.Nesterov),
            OptimizerKind.Adam => new AdamOptimizer(parameters, options.AdamBeta1, options.AdamBeta2, options.AdamEpsilon, options.WeightDecay),
            _ => throw new ArgumentOutOfRangeException(nameof(options)),
        };
    }

    internal static void CopyState(IReadOnlyDictionary<string, Tensor> source, string key, Tensor destination)
    {
        if (!source.TryGetValue(key, out var t))
            throw new InvalidDataException($"optimizer state '{key}' missing from the checkpoint");
        if (!t.shape.SequenceEqual(destination.shape))
            throw new InvalidDataException($"optimizer state '{key}' has shape [{string.Join(",", t.shape)}], expected [{string.Join(",", destination.shape)}]");
        using var _ = no_grad();
        destination.copy_(t); // copy_ converts dtype and device itself (to() may alias its source)
    }
}

/// <summary>
/// SGD with momentum, L2 weight decay and optional Nesterov momentum, as torch.optim.SGD with dampening 0:
/// g ← ∇ + λθ; b ← μb + g; g ← g + μb (Nesterov) or b; θ ← θ − ηg. Buffers start at zero, which equals
/// PyTorch's "first step copies the gradient" for dampening 0.
/// </summary>
public sealed class SgdOptimizer : IParameterOptimizer
{
    private readonly List<(string Name, Tensor Parameter)> _parameters;
    private readonly Tensor[] _momentum;
    private readonly double _mu, _weightDecay;
    private readonly bool _nesterov;

    public SgdOptimizer(IEnumerable<(string name, TorchSharp.Modules.Parameter parameter)> parameters, double momentum = 0.9, double weightDecay = 0, bool nesterov = false)
    {
        _parameters = parameters.Select(p => (p.name, (Tensor)p.parameter)).ToList();
        _mu = momentum;
        _weightDecay = weightDecay;
        _nesterov = nesterov;
        _momentum = momentum > 0 ? _parameters.Select(p => zeros_like(p.Parameter).DetachFromDisposeScope()).ToArray() : [];
    }

    public string Name => "sgd";

    public void Step(double learningRate) => Update(learningRate, i => _parameters[i].Parameter.grad);

    public void Step(double learningRate, IReadOnlyDictionary<string, Tensor> gradients) =>
        Update(learningRate, i => gradients.GetValueOrDefault(_parameters[i].Name));

    private void Update(double learningRate, Func<int, Tensor?> gradientOf)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        for (int i = 0; i < _parameters.Count; i++)
        {
            var p = _parameters[i].Parameter;
            var g = gradientOf(i);
            if (g is null) continue;
            if (_weightDecay != 0) g = g.add(p, Keep(_weightDecay));
            if (_mu > 0)
            {
                var buf = _momentum[i];
                buf.mul_(Keep(_mu)).add_(g);
                g = _nesterov ? g.add(buf, Keep(_mu)) : buf;
            }
            p.add_(g, Keep(-learningRate));
        }
    }

    public IReadOnlyDictionary<string, Tensor> State() =>
        _momentum.Select((b, i) => (Key: $"momentum.{_parameters[i].Name}", b)).ToDictionary(p => p.Key, p => p.b);

    public void LoadState(IReadOnlyDictionary<string, Tensor> state)
    {
        for (int i = 0; i < _momentum.Length; i++)
            ParameterOptimizers.CopyState(state, $"momentum.{_parameters[i].Name}", _momentum[i]);
    }

    public void Dispose()
    {
        foreach (var b in _momentum) b.Dispose();
    }
}

/// <summary>
/// Adam (Kingma &amp; Ba 2015) as torch.optim.Adam with L2 weight decay added to the gradient:
/// m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; θ ← θ − η·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε).
/// </summary>
public sealed class AdamOptimizer : IParameterOptimizer
{
    private readonly List<(string Name, Tensor Parameter)> _parameters;
    private readonly Tensor[] _m, _v;
    private readonly double _beta1, _beta2, _eps, _weightDecay;
    private long _step;

    public AdamOptimizer(IEnumerable<(string name, TorchSharp.Modules.Parameter parameter)> parameters, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0)
    {
        _parameters = parameters.Select(p => (p.name, (Tensor)p.parameter)).ToList();
        (_beta1, _beta2, _eps, _weightDecay) = (beta1, beta2, eps, weightDecay);
        _m = _parameters.Select(p => zeros_like(p.Parameter).DetachFromDisposeScope()).ToArray();
        _v = _parameters.Select(p => zeros_like(p.Parameter).DetachFromDisposeScope()).ToArray();
    }

    public string Name => "adam";

    public void Step(double learningRate) => Update(learningRate, i => _parameters[i].Parameter.grad);

    public void Step(double learningRate, IReadOnlyDictionary<string, Tensor> gradients) =>
        Update(learningRate, i => gradients.GetValueOrDefault(_parameters[i].Name));

    private void Update(double learningRate, Func<int, Tensor?> gradientOf)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        _step++;
        double bc1 = 1 - Math.Pow(_beta1, _step);
        double bc2Sqrt = Math.Sqrt(1 - Math.Pow(_beta2, _step));
        for (int i = 0; i < _parameters.Count; i++)
        {
            var p = _parameters[i].Parameter;
            var g = gradientOf(i);
            if (g is null) continue;
            if (_weightDecay != 0) g = g.add(p, Keep(_weightDecay));
            _m[i].mul_(Keep(_beta1)).add_(g, Keep(1 - _beta1));
            _v[i].mul_(Keep(_beta2)).addcmul_(g, g, Keep(1 - _beta2));
            var denom = _v[i].sqrt().div_(Keep(bc2Sqrt)).add_(Keep(_eps));
            p.addcdiv_(_m[i], denom, Keep(-learningRate / bc1));
        }
    }

    public IReadOnlyDictionary<string, Tensor> State()
    {
        var d = new Dictionary<string, Tensor>();
        for (int i = 0; i < _parameters.Count; i++)
        {
            d[$"exp_avg.{_parameters[i].Name}"] = _m[i];
            d[$"exp_avg_sq.{_parameters[i].Name}"] = _v[i];
        }
        // The step count as a tensor so all optimizer state travels the same way (disposed by the caller's scope).
        d["step"] = tensor(_step);
        return d;
    }

    public void LoadState(IReadOnlyDictionary<string, Tensor> state)
    {
        for (int i = 0; i < _parameters.Count; i++)
        {
            ParameterOptimizers.CopyState(state, $"exp_avg.{_parameters[i].Name}", _m[i]);
            ParameterOptimizers.CopyState(state, $"exp_avg_sq.{_parameters[i].Name}", _v[i]);
        }
        if (!state.TryGetValue("step", out var step)) throw new InvalidDataException("optimizer state 'step' missing from the checkpoint");
        _step = step.to(ScalarType.Int64).item<long>();
    }

    public void Dispose()
    {
        foreach (var t in _m) t.Dispose();
        foreach (var t in _v) t.Dispose();
    }
}
