using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Core;

/// <summary>
/// What a model lets an attack see, weakest first: only its top-1 label (a deployed API), its scores (logits, no
/// gradients), or input gradients as well (white-box). Attacks declare the access they need (<see
/// cref="Attacking.IAttack.Needs"/>); a model gives <see cref="ModelAccesses.Of"/>.
/// </summary>
public enum ModelAccess
{
    Labels = 0,
    Scores = 1,
    Gradients = 2,
}

public static class ModelAccesses
{
    /// <summary>Gradients for an <see cref="IGradientClassifier"/>, the declared access of an <see cref="IQueryClassifier"/>,
    /// scores for any other classifier.</summary>
    public static ModelAccess Of(IClassifier model) => model switch
    {
        IQueryClassifier q => q.Access,
        IGradientClassifier => ModelAccess.Gradients,
        _ => ModelAccess.Scores,
    };

    /// <summary>"labels", "scores", "gradients".</summary>
    public static string Name(this ModelAccess access) => access switch
    {
        ModelAccess.Labels => "labels",
        ModelAccess.Scores => "scores",
        _ => "gradients",
    };

    /// <summary>What an attack with this need asks of a model, for messages: "input gradients", "scores", "labels".</summary>
    public static string Describe(this ModelAccess access) => access switch
    {
        ModelAccess.Labels => "only the top-1 label",
        ModelAccess.Scores => "scores (logits)",
        _ => "input gradients",
    };
}

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
/// A classifier that only answers queries: its scores (<see cref="ModelAccess.Scores"/>, e.g. a model served by ONNX
/// Runtime) or only its top-1 label (<see cref="ModelAccess.Labels"/>, what a deployed API returns). No gradients
/// ever flow through it. For a label-only model <see cref="IClassifier.Logits"/> returns the label one-hot (1 for
/// the predicted class, 0 elsewhere), so every verdict (argmax) is the model's own while no score leaks.
/// </summary>
public interface IQueryClassifier : IClassifier
{
    /// <summary><see cref="ModelAccess.Scores"/> or <see cref="ModelAccess.Labels"/>.</summary>
    ModelAccess Access { get; }
    /// <summary>Samples answered so far, over every call (attacks, clean passes, verdicts): one query per row.</summary>
    long QueriesAnswered { get; }
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

/// <summary>
/// Any classifier seen through a query interface: its scores only, or only its top-1 label. Every call runs the
/// wrapped model without gradients in eval mode (restored afterwards) and counts one query per row. Does not own the
/// wrapped model.
/// </summary>
public sealed class QueryOnlyClassifier : IQueryClassifier
{
    private readonly IClassifier _inner;
    private long _answered;

    private QueryOnlyClassifier(IClassifier inner, ModelAccess access)
    {
        if (access == ModelAccess.Gradients) throw new ArgumentOutOfRangeException(nameof(access), "a query-only view gives scores or labels");
        _inner = inner;
        Access = ModelAccesses.Of(inner) < access ? ModelAccesses.Of(inner) : access;
    }

    /// <summary>Only the scores of <paramref name="model"/> (no gradients).</summary>
    public static QueryOnlyClassifier ScoresOnly(IClassifier model) => new(model, ModelAccess.Scores);

    /// <summary>Only the top-1 label of <paramref name="model"/>.</summary>
    public static QueryOnlyClassifier LabelOnly(IClassifier model) => new(model, ModelAccess.Labels);

    public ModelAccess Access { get; }
    public ModelSpec Spec => _inner.Spec;
    public Device Device => _inner.Device;
    public long QueriesAnswered => Interlocked.Read(ref _answered);
    /// <summary>The wrapped model.</summary>
    public IClassifier Inner => _inner;

    public Tensor Logits(Tensor inputs)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var mode = _inner is IGradientClassifier g ? g.EvalMode() : null;
        var scores = _inner.Logits(inputs.detach()).detach();
        Interlocked.Add(ref _answered, inputs.shape[0]);
        if (Access == ModelAccess.Labels)
            scores = nn.functional.one_hot(scores.argmax(1), scores.shape[1]).to(ScalarType.Float32);
        return scores.MoveToOuterDisposeScope();
    }
}
