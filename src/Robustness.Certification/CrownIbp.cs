using Robustness.Core.Graphs;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using static Robustness.Core.TorchScalars;

namespace Robustness.Certification;

/// <summary>
/// CROWN-IBP (Zhang et al. 2020): interval bounds for every intermediate layer, then one backward linear bound pass
/// (CROWN, Zhang et al. 2018) from the margin specification z_y − z_j to the input. Each ReLU with pre-activation
/// bounds l &lt; 0 &lt; u is relaxed by the chord u(z − l)/(u − l) from above and by αz from below, α = 1 when u ≥ −l
/// else 0 (the adaptive choice of the paper); stable neurons are exact. The coefficients Λ of every node are
/// accumulated in reverse topological order, so residual Adds just pass Λ to both inputs. Affine layers pass Λ through
/// Wᵀ (a transposed convolution for Conv2d). Like <see cref="IntervalBoundPropagation"/> it is differentiable tensor code
/// (CROWN-IBP training backpropagates through it) and, with a slack, sound for the float32 network: each rounded layer
/// is an exact layer plus an error e with |e| ≤ E (the same forward-error bound IBP widens by), so the backward pass
/// subtracts |Λ|·E at every such layer. Max-pooling, tanh and sigmoid have no relaxation here: for graphs with them
/// <see cref="MarginLowerBounds"/> returns null and callers use the IBP bounds alone.
/// </summary>
public sealed record CrownIbp
{
    public FloatingPointSlack Slack { get; init; } = FloatingPointSlack.None;

    /// <summary>Why the graph cannot be bounded by CROWN, or null when it can.</summary>
    public static string? Unsupported(NetworkGraph graph) =>
        graph.Nodes.FirstOrDefault(n => n.Op is MaxPool2dOp or TanhOp or SigmoidOp) is { } bad
            ? $"node {bad.Name} ({bad.Op.Kind}) has no linear relaxation in CROWN" : null;

    /// <summary>
    /// Lower bounds on z_y − z_j ([N, K], 0 at j = y) for inputs in <paramref name="input"/>, or null when the graph has an
    /// op without a relaxation. <paramref name="intervals"/> are the IBP bounds of every node (computed when null).
    /// </summary>
    public Tensor? MarginLowerBounds(NetworkGraph graph, Interval input, Tensor labels, Interval[]? intervals = null)
    {
        if (Unsupported(graph) is not null) return null;
        var ibp = new IntervalBoundPropagation { Slack = Slack };
        intervals ??= ibp.Propagate(graph, input, graph.Nodes.Count - 1);
        var classes = labels.to(ScalarType.Int64);
        var dtype = input.Lower.dtype;
        long n = input.Lower.shape[0];
        Interval At(int j) => j == NetworkGraph.Input ? input : intervals[j];

        var lambda = new Dictionary<int, Tensor>();
        void Accumulate(int node, Tensor l) => lambda[node] = lambda.TryGetValue(node, out var existing) ? existing + l : l;

        // The specification: rows e_y − e_j, folded into the last layer when it is linear (as in IBP).
        Tensor bias;
        int start;
        var last = graph.Output;
        if (last.Op is LinearOp fc)
        {
            var w = IntervalBoundPropagation.Cast(fc.Weight, dtype);
            var b = fc.Bias is null ? zeros(w.shape[0], dtype: dtype, device: w.device) : IntervalBoundPropagation.Cast(fc.Bias, dtype);
            var diff = w.index_select(0, classes).unsqueeze(1) - w.unsqueeze(0);           // [N, K, H]
            bias = b.index_select(0, classes).unsqueeze(1) - b.unsqueeze(0);                 // [N, K]
            if (!Slack.IsNone)
            {
                var row = F.linear(At(last.Inputs[0]).Magnitude, w.abs()) + b.abs();        // [N, K]
                bias = bias - (row.gather(1, classes.unsqueeze(1)) + row) * Keep(Slack.Relative(w.shape[1]));
            }
            Accumulate(last.Inputs[0], diff);
            start = graph.Nodes.Count - 2;
        }
        else
        {
            long k = intervals.Length > 0 ? intervals[^1].Lower.shape[1] : input.Lower.shape[1];
            var full = ibp.Propagate(graph, input);
            var identity = eye(k, dtype: dtype, device: input.Lower.device);
            var spec = identity.index_select(0, classes).unsqueeze(1) - identity.unsqueeze(0); // [N, K, K]
            Accumulate(graph.Nodes.Count - 1, spec);
            bias = zeros(n, k, dtype: dtype, device: input.Lower.device);
            intervals = full;
            start = graph.Nodes.Count - 1;
        }

        for (int i = start; i >= 0; i--)
        {
            if (!lambda.TryGetValue(i, out var l)) continue;
            var node = graph.Nodes[i];
            var x = At(node.Inputs[0]);
            switch (node.Op)
            {
                case LinearOp op:
                {
                    var w = IntervalBoundPropagation.Cast(op.Weight, dtype);
                    if (op.Bias is not null) bias = bias + l.matmul(IntervalBoundPropagation.Cast(op.Bias, dtype));
                    if (!Slack.IsNone)
                    {
                        var e = F.linear(x.Magnitude, w.abs());
                        if (op.Bias is not null) e = e + op.Bias.to(dtype).abs();
                        bias = bias - (l.abs() * e.unsqueeze(1)).sum(-1) * Keep(Slack.Relative(w.shape[1]));
                    }
                    Accumulate(node.Inputs[0], l.matmul(w));
                    break;
                }
                case Conv2dOp op:
                {
                    var w = IntervalBoundPropagation.Cast(op.Weight, dtype);
                    long k = l.shape[1];
                    var outShape = l.shape.Skip(2).ToArray();                                  // C, H, W
                    var inShape = x.Lower.shape.Skip(1).ToArray();
                    if (op.Bias is not null)
                        bias = bias + l.sum([3L, 4L]).matmul(IntervalBoundPropagation.Cast(op.Bias, dtype));
                    if (!Slack.IsNone)
                    {
                        var e = F.conv2d(x.Magnitude, w.abs(), op.Bias?.to(dtype).abs(), op.Stride, op.Padding, op.Dilation, op.Groups);
                        bias = bias - (l.abs() * e.unsqueeze(1)).sum([2L, 3L, 4L]) * Keep(Slack.Relative(w.shape[1] * w.shape[2] * w.shape[3]));
                    }
                    var flat = l.reshape([n * k, .. outShape]);
                    var outputPadding = new long[2];
                    for (int d = 0; d < 2; d++)
                    {
                        long produced = (outShape[1 + d] - 1) * op.Stride[d] - 2 * op.Padding[d] + op.Dilation[d] * (w.shape[2 + d] - 1) + 1;
                        outputPadding[d] = inShape[1 + d] - produced;
                    }
                    var back = F.conv_transpose2d(flat, w, null, op.Stride, op.Padding, outputPadding, op.Dilation, op.Groups);
                    Accumulate(node.Inputs[0], back.reshape([n, k, .. inShape]));
                    break;
                }
                case ReluOp:
                {
                    var (lo, hi) = (x.Lower.unsqueeze(1), x.Upper.unsqueeze(1));
                    var active = lo.ge(Keep(0));
                    var unstable = lo.lt(Keep(0)).logical_and(hi.gt(Keep(0)));
                    var width = (hi - lo).clamp_min(Keep(1e-30));
                    var upperSlope = where(active, ones_like(hi), where(unstable, hi / width, zeros_like(hi)));
                    var upperIntercept = where(unstable, -lo * hi / width, zeros_like(hi));
                    var lowerSlope = where(active, ones_like(hi), where(unstable, hi.ge(-lo).to(dtype), zeros_like(hi)));
                    var positive = l.clamp_min(Keep(0));
                    var negative = l.clamp_max(Keep(0));
                    bias = bias + (negative * upperIntercept).flatten(2).sum(-1);
                    Accumulate(node.Inputs[0], positive * lowerSlope + negative * upperSlope);
                    break;
                }
                case FlattenOp:
                    Accumulate(node.Inputs[0], l.reshape([n, l.shape[1], .. x.Lower.shape.Skip(1)]));
                    break;
                case BatchNormOp bn:
                    ChannelAffine(bn.Affine(), node.Inputs[0], x, l, ref bias, Accumulate);
                    break;
                case ChannelAffineOp a:
                    ChannelAffine((a.Scale, a.Shift), node.Inputs[0], x, l, ref bias, Accumulate);
                    break;
                case AvgPool2dOp p:
                {
                    long k = l.shape[1], c = l.shape[2];
                    var inShape = x.Lower.shape.Skip(1).ToArray();
                    long area = p.Kernel[0] * p.Kernel[1];
                    if (!Slack.IsNone)
                    {
                        var e = F.avg_pool2d(x.Magnitude, p.Kernel, p.Stride, p.Padding);
                        bias = bias - (l.abs() * e.unsqueeze(1)).sum([2L, 3L, 4L]) * Keep(Slack.Relative(area));
                    }
                    var weight = full([c, 1, p.Kernel[0], p.Kernel[1]], Keep(1.0 / area), dtype: dtype, device: l.device);
                    var outputPadding = new long[2];
                    for (int d = 0; d < 2; d++)
                        outputPadding[d] = inShape[1 + d] - ((l.shape[3 + d] - 1) * p.Stride[d] - 2 * p.Padding[d] + p.Kernel[d]);
                    var back = F.conv_transpose2d(l.reshape([n * k, .. l.shape.Skip(2)]), weight, null, p.Stride, p.Padding, outputPadding, [1, 1], c);
                    Accumulate(node.Inputs[0], back.reshape([n, k, .. inShape]));
                    break;
                }
                case GlobalAvgPoolOp:
                {
                    var inShape = x.Lower.shape.Skip(1).ToArray();
                    long area = inShape[1] * inShape[2];
                    if (!Slack.IsNone)
                    {
                        var e = F.adaptive_avg_pool2d(x.Magnitude, 1);
                        bias = bias - (l.abs() * e.unsqueeze(1)).sum([2L, 3L, 4L]) * Keep(Slack.Relative(area));
                    }
                    Accumulate(node.Inputs[0], (l / Keep(area)).expand([n, l.shape[1], .. inShape]));
                    break;
                }
                case AddOp:
                {
                    if (!Slack.IsNone)
                    {
                        var e = x.Magnitude + At(node.Inputs[1]).Magnitude;
                        bias = bias - (l.abs() * e.unsqueeze(1)).flatten(2).sum(-1) * Keep(Slack.Relative(1));
                    }
                    Accumulate(node.Inputs[0], l);
                    Accumulate(node.Inputs[1], l);
                    break;
                }
                default:
                    return null;
            }
        }

        // At the input: min over the box of Λ·x = Λ·c − |Λ|·r.
        var lx = lambda[NetworkGraph.Input];
        var centre = input.Center.unsqueeze(1);
        var radius = input.Radius.unsqueeze(1);
        var margin = (lx * centre - lx.abs() * radius).flatten(2).sum(-1) + bias;
        return margin.scatter(1, classes.unsqueeze(1), zeros(n, 1, dtype: margin.dtype, device: margin.device));
    }

    private void ChannelAffine((Tensor Scale, Tensor Shift) affine, int input, Interval x, Tensor l, ref Tensor bias, Action<int, Tensor> accumulate)
    {
        var dtype = x.Lower.dtype;
        var s = IntervalBoundPropagation.Cast(affine.Scale, dtype);
        var t = IntervalBoundPropagation.Cast(affine.Shift, dtype);
        var like = x.Lower.unsqueeze(1);                                                       // [N, 1, C, ...]
        var shape = Enumerable.Repeat(1L, (int)like.dim()).ToArray();
        shape[2] = s.numel();
        var sv = s.view(shape);
        var tv = t.view(shape);
        bias = bias + (l * tv).flatten(2).sum(-1);
        if (!Slack.IsNone)
        {
            var e = x.Magnitude.unsqueeze(1) * sv.abs() + tv.abs();
            bias = bias - (l.abs() * e).flatten(2).sum(-1) * Keep(Slack.Relative(4));
        }
        accumulate(input, l * sv);
    }
}
