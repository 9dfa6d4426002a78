using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models;

/// <summary>Reduced-precision gradient views of zoo models (the <see cref="IReducedPrecisionViews"/> the trainer and CLI use).</summary>
public sealed class Bf16Views : IReducedPrecisionViews
{
    public static Bf16Views Instance { get; } = new();

    public IReducedPrecisionClassifier Create(IGradientClassifier model, GradientPrecision precision) => precision switch
    {
        GradientPrecision.Bf16 when model is TorchClassifier tc => new Bf16GradientClassifier(tc),
        GradientPrecision.Bf16 => throw new ParameterException("Precision", $"bf16 needs a zoo model (the bf16 copy is rebuilt from its architecture), not a {model.GetType().Name}"),
        _ => throw new ParameterException("Precision", $"no reduced-precision view for {precision.Name()}"),
    };

    /// <summary>The bf16 view of <paramref name="model"/> the attacks should differentiate, or null for float32 (use the model).</summary>
    public static Bf16GradientClassifier? ViewOf(TorchClassifier model, GradientPrecision precision) =>
        precision == GradientPrecision.Bf16 ? new Bf16GradientClassifier(model) : null;
}

/// <summary>
/// A float32 classifier whose gradient passes run in bfloat16 (TorchSharp 0.107 has no autocast; this is the manual
/// equivalent for attack steps). While grad mode is on, inputs are cast to bf16, go through a bf16 copy of the
/// network, and the logits come back as float32, with gradients flowing through both casts. Under no_grad — every
/// pass that judges a point: the sealed final step of every attack, the evaluator's clean pass, restart and
/// best-point comparisons — the float32 model itself answers. So bf16 can only change which points an attack
/// proposes, never how they are scored: at worst it weakens the attack, which is why its robust accuracy must be
/// compared with float32 before it is trusted (docs/performance.md, `robust bench --bf16`).
/// The copy follows the source's weights only when <see cref="Refresh"/> is called (the trainer does so per batch).
/// </summary>
public sealed class Bf16GradientClassifier : IReducedPrecisionClassifier, IMixedPrecisionStep
{
    private readonly TorchClassifier _source;
    private readonly TorchClassifier _copy;
    private readonly List<(Tensor From, Tensor To)> _pairs;
    private readonly List<(string Name, TorchSharp.Modules.Parameter Parameter)> _parameters;

    public Bf16GradientClassifier(TorchClassifier source)
    {
        _source = source;
        if (!ModelZoo.Names.Contains(source.Spec.Arch))
            throw new InputException($"bf16: the copy is rebuilt from a zoo architecture ({string.Join(", ", ModelZoo.Names)}), but the model is '{source.Spec.Arch}'");
        var network = ModelZoo.Create(source.Spec.Arch, ModelZoo.OptionsFor(source.Spec));
        _copy = ModelZoo.Wrap(network, source.Spec, source.Device);
        _copy.Module.to(ScalarType.BFloat16);
        var from = source.Module.state_dict();
        _pairs = _copy.Module.state_dict().Select(kv => from.TryGetValue(kv.Key, out var f)
            ? (f, kv.Value)
            : throw new ArgumentException($"bf16 copy: the source model has no '{kv.Key}'")).ToList();
        _parameters = _copy.Module.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        ParametersConstructed = ConstructedParameters(source);
        _copy.Module.train(source.Module.training);
        Refresh();
    }

    public ModelSpec Spec => _source.Spec;
    public Device Device => _source.Device;
    /// <summary>The float32 pipeline: the model of record.</summary>
    public nn.Module<Tensor, Tensor> Module => _source.Module;
    public IGradientClassifier FullPrecision => _source;
    public string Precision => "bf16";
    /// <summary>How many <c>Parameter</c>s this wrapper constructed (for live-tensor accounting).</summary>
    public int ParametersConstructed { get; }

    /// <summary>Parameters a view of <paramref name="source"/> constructs: the copy's, and once more by its dtype
    /// change (TorchSharp 0.107 counts both for good; nothing native is held).</summary>
    public static int ConstructedParameters(TorchClassifier source) => 2 * source.Network.parameters().Count();

    public IDisposable EvalMode() => new Both(new ModeScope(_source.Module, false), new ModeScope(_copy.Module, false));
    public IDisposable TrainMode() => new Both(new ModeScope(_source.Module, true), new ModeScope(_copy.Module, true));

    public Tensor Logits(Tensor inputs)
    {
        if (!is_grad_enabled()) return _source.Logits(inputs);
        using var scope = NewDisposeScope();
        return _copy.Module.call(inputs.to(ScalarType.BFloat16)).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>Copies the source's current weights, buffers (BatchNorm statistics) and train/eval mode into the bf16 copy.</summary>
    public void Refresh()
    {
        using var _ = no_grad();
        foreach (var (from, to) in _pairs) to.copy_(from);
        _copy.Module.train(_source.Module.training);
    }

    /// <summary>The bf16 copy: a training step's backward pass through <see cref="Logits"/> leaves its gradients here.</summary>
    public nn.Module GradientModule => _copy.Module;

    public void ZeroGradients() => _copy.Module.zero_grad(set_to_none: true);

    public IReadOnlyDictionary<string, Tensor> Float32Gradients()
    {
        var grads = new Dictionary<string, Tensor>(_parameters.Count);
        foreach (var (name, p) in _parameters)
            if (p.grad is { } g) grads[name] = g.to(ScalarType.Float32);
        return grads;
    }

    public void Dispose() => _copy.Dispose();

    private sealed class Both(IDisposable a, IDisposable b) : IDisposable
    {
        public void Dispose()
        {
            b.Dispose();
            a.Dispose();
        }
    }
}
