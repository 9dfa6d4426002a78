using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Core.Graphs;

/// <summary>
/// One primitive layer of a <see cref="NetworkGraph"/>. Parameter tensors are the network's live tensors (not copies),
/// so a computation over the description — interval bounds in IBP training — differentiates into the weights.
/// Channel-wise ops act on axis 1 of [N, C] and [N, C, H, W] tensors, as PyTorch's do.
/// </summary>
public abstract record GraphOp
{
    /// <summary>"linear", "conv2d", "relu", ... (stable names for messages and reports).</summary>
    public abstract string Kind { get; }
    /// <summary>How many inputs the op takes (Add takes two, every other op one).</summary>
    public virtual int Arity => 1;
}

/// <summary>y = x·Wᵀ + b on [N, in] inputs (Weight [out, in], Bias [out] or none).</summary>
public sealed record LinearOp(Tensor Weight, Tensor? Bias) : GraphOp
{
    public override string Kind => "linear";
}

/// <summary>2-D convolution (Weight [out, in/groups, kH, kW]), PyTorch's semantics with explicit zero padding.</summary>
public sealed record Conv2dOp(Tensor Weight, Tensor? Bias, long[] Stride, long[] Padding, long[] Dilation, long Groups = 1) : GraphOp
{
    public override string Kind => "conv2d";
}

public sealed record ReluOp : GraphOp
{
    public static ReluOp Instance { get; } = new();
    public override string Kind => "relu";
}

public sealed record TanhOp : GraphOp
{
    public static TanhOp Instance { get; } = new();
    public override string Kind => "tanh";
}

public sealed record SigmoidOp : GraphOp
{
    public static SigmoidOp Instance { get; } = new();
    public override string Kind => "sigmoid";
}

public sealed record MaxPool2dOp(long[] Kernel, long[] Stride, long[] Padding) : GraphOp
{
    public override string Kind => "maxpool2d";
}

/// <summary>Average pooling; zero padding counts towards the average (PyTorch's default count_include_pad).</summary>
public sealed record AvgPool2dOp(long[] Kernel, long[] Stride, long[] Padding) : GraphOp
{
    public override string Kind => "avgpool2d";
}

/// <summary>Mean over H and W: [N, C, H, W] → [N, C, 1, 1] (adaptive average pooling to 1×1).</summary>
public sealed record GlobalAvgPoolOp : GraphOp
{
    public static GlobalAvgPoolOp Instance { get; } = new();
    public override string Kind => "global-avgpool";
}

/// <summary>Row-major flatten of every axis after the batch axis (PyTorch's flatten(1)).</summary>
public sealed record FlattenOp : GraphOp
{
    public static FlattenOp Instance { get; } = new();
    public override string Kind => "flatten";
}

/// <summary>
/// Batch normalisation with its running statistics: (x − mean)/√(var + eps)·γ + β per channel. The description is
/// the network's eval-mode function (a network in train mode normalises with batch statistics instead).
/// </summary>
public sealed record BatchNormOp(Tensor? Weight, Tensor? Bias, Tensor RunningMean, Tensor RunningVar, double Eps) : GraphOp
{
    public override string Kind => "batchnorm";

    /// <summary>The per-channel (scale, shift) of the eval-mode function, differentiable in γ and β.</summary>
    public (Tensor Scale, Tensor Shift) Affine()
    {
        var inv = (RunningVar + Keep(Eps)).rsqrt();
        var scale = Weight is null ? inv : Weight * inv;
        var shift = -RunningMean * scale;
        if (Bias is not null) shift = shift + Bias;
        return (scale, shift);
    }
}

/// <summary>y = x·Scale + Shift per channel (Scale and Shift [C], or one value for every channel): input normalisation.</summary>
public sealed record ChannelAffineOp(Tensor Scale, Tensor Shift) : GraphOp
{
    public override string Kind => "channel-affine";
}

/// <summary>Elementwise sum of two inputs of the same shape (residual connections).</summary>
public sealed record AddOp : GraphOp
{
    public static AddOp Instance { get; } = new();
    public override string Kind => "add";
    public override int Arity => 2;
}

/// <summary>A layer and the nodes it reads: indices of earlier nodes, or <see cref="NetworkGraph.Input"/>.</summary>
public sealed record GraphNode(string Name, GraphOp Op, IReadOnlyList<int> Inputs);

/// <summary>
/// A network as a directed acyclic graph of primitive layers in topological order: node i reads only the network
/// input or nodes before it, and the last node is the output (logits). A zoo architecture describes itself with one
/// (<see cref="IDescribedNetwork"/>); so can any other executor (an imported graph) that maps onto these ops.
/// Certification propagates bounds through it; <see cref="GraphExecutor"/> runs it as an ordinary forward pass.
/// </summary>
public sealed class NetworkGraph
{
    /// <summary>The index that stands for the network input in <see cref="GraphNode.Inputs"/>.</summary>
    public const int Input = -1;

    public NetworkGraph(IReadOnlyList<GraphNode> nodes)
    {
        if (nodes.Count == 0) throw new ArgumentException("a network graph needs at least one node");
        for (int i = 0; i < nodes.Count; i++)
        {
            var n = nodes[i];
            if (n.Inputs.Count != n.Op.Arity)
                throw new ArgumentException($"node {i} ({n.Name}, {n.Op.Kind}) has {n.Inputs.Count} inputs, the op takes {n.Op.Arity}");
            foreach (var j in n.Inputs)
                if (j < Input || j >= i)
                    throw new ArgumentException($"node {i} ({n.Name}) reads node {j}: inputs must be the network input (−1) or an earlier node");
        }
        Nodes = nodes;
    }

    public IReadOnlyList<GraphNode> Nodes { get; }
    public GraphNode Output => Nodes[^1];

    /// <summary>This graph followed by <paramref name="next"/> (next's input is this graph's output).</summary>
    public NetworkGraph Then(NetworkGraph next)
    {
        int offset = Nodes.Count;
        var nodes = Nodes.ToList();
        nodes.AddRange(next.Nodes.Select(n => n with { Inputs = n.Inputs.Select(j => j == Input ? offset - 1 : j + offset).ToArray() }));
        return new NetworkGraph(nodes);
    }

    /// <summary>How many times each node's output is read (the output node counts once, for the caller).</summary>
    public int[] Consumers()
    {
        var uses = new int[Nodes.Count];
        foreach (var n in Nodes)
            foreach (var j in n.Inputs)
                if (j >= 0) uses[j]++;
        uses[^1]++;
        return uses;
    }

    public override string ToString() => string.Join(" → ", Nodes.Select(n => n.Op.Kind));
}

/// <summary>Builds a graph node by node; <see cref="Then"/> appends a layer reading the previous node.</summary>
public sealed class NetworkGraphBuilder
{
    private readonly List<GraphNode> _nodes = [];

    /// <summary>The last node added (the network input before any).</summary>
    public int Last => _nodes.Count - 1;

    public int Add(string name, GraphOp op, params int[] inputs)
    {
        _nodes.Add(new GraphNode(name, op, inputs));
        return _nodes.Count - 1;
    }

    public int Then(string name, GraphOp op) => Add(name, op, Last);

    public NetworkGraph Build() => new(_nodes.ToArray());
}

/// <summary>A network that can say, layer by layer, what function it computes (for interval bound propagation).</summary>
public interface IDescribedNetwork
{
    /// <summary>The graph of the module's eval-mode function over its live parameters.</summary>
    NetworkGraph Describe();
}

/// <summary>Graph ops from TorchSharp modules (the module's live parameters and hyperparameters).</summary>
public static class Layers
{
    public static LinearOp Linear(Linear m) => new(m.weight!, m.bias);

    public static Conv2dOp Conv(Conv2d m)
    {
        if (m.padding_type is not null || m.padding_mode != PaddingModes.Zeros)
            throw new NotSupportedException("conv2d: only explicit zero padding can be described");
        return new Conv2dOp(m.weight!, m.bias, m.stride, m.padding ?? [0, 0], m.dilation, m.groups);
    }

    public static BatchNormOp BatchNorm(BatchNorm2d m) =>
        new(m.weight, m.bias, m.running_mean ?? throw new NotSupportedException("batchnorm without running statistics cannot be described"),
            m.running_var!, m.eps);

    public static MaxPool2dOp MaxPool(long kernel) => new([kernel, kernel], [kernel, kernel], [0, 0]);
}

/// <summary>Runs a <see cref="NetworkGraph"/> as a plain forward pass (the reference the description is tested against).</summary>
public static class GraphExecutor
{
    public static Tensor Forward(NetworkGraph graph, Tensor input)
    {
        using var scope = NewDisposeScope();
        var values = new Tensor[graph.Nodes.Count];
        Tensor At(int j) => j == NetworkGraph.Input ? input : values[j];
        for (int i = 0; i < graph.Nodes.Count; i++)
        {
            var node = graph.Nodes[i];
            var x = At(node.Inputs[0]);
            values[i] = node.Op switch
            {
                LinearOp l => nn.functional.linear(x, l.Weight, l.Bias),
                Conv2dOp c => nn.functional.conv2d(x, c.Weight, c.Bias, c.Stride, c.Padding, c.Dilation, c.Groups),
                ReluOp => x.relu(),
                TanhOp => x.tanh(),
                SigmoidOp => x.sigmoid(),
                MaxPool2dOp p => nn.functional.max_pool2d(x, p.Kernel, p.Stride, p.Padding),
                AvgPool2dOp p => nn.functional.avg_pool2d(x, p.Kernel, p.Stride, p.Padding),
                GlobalAvgPoolOp => nn.functional.adaptive_avg_pool2d(x, 1),
                FlattenOp => x.flatten(1),
                BatchNormOp b => ChannelAffine(x, b.Affine()),
                ChannelAffineOp a => ChannelAffine(x, (a.Scale, a.Shift)),
                AddOp => x + At(node.Inputs[1]),
                _ => throw new NotSupportedException($"graph op '{node.Op.Kind}' has no forward rule"),
            };
        }
        return values[^1].MoveToOuterDisposeScope();
    }

    /// <summary>x·scale + shift with [C] (or [1]) vectors broadcast along axis 1.</summary>
    public static Tensor ChannelAffine(Tensor x, (Tensor Scale, Tensor Shift) affine) =>
        x * ChannelView(affine.Scale, x) + ChannelView(affine.Shift, x);

    /// <summary>A [C] vector reshaped to broadcast along axis 1 of <paramref name="like"/>.</summary>
    public static Tensor ChannelView(Tensor v, Tensor like)
    {
        var shape = new long[Math.Max(like.dim(), 2)];
        Array.Fill(shape, 1L);
        shape[1] = v.numel();
        return v.view(shape);
    }
}

/// <summary>Finds the layer description of a classifier.</summary>
public static class NetworkDescriptions
{
    /// <summary>
    /// The graph of the classifier's whole pixel→logits pipeline (normalisation included), or an
    /// <see cref="InputException"/> "<paramref name="what"/>: model X does not describe its layers".
    /// </summary>
    public static NetworkGraph Of(IClassifier model, string what = "ibp")
    {
        if (model is IGradientClassifier { Module: IDescribedNetwork d }) return d.Describe();
        throw new InputException($"{what}: model {model.Spec.Arch} does not describe its layers (bound propagation needs a layer-level description, IDescribedNetwork)");
    }

    public static bool TryOf(IClassifier model, out NetworkGraph? graph)
    {
        graph = model is IGradientClassifier { Module: IDescribedNetwork d } ? d.Describe() : null;
        return graph is not null;
    }
}
