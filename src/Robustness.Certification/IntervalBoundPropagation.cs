using Robustness.Core;
using Robustness.Core.Graphs;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using static Robustness.Core.TorchScalars;

namespace Robustness.Certification;

/// <summary>Elementwise bounds Lower ≤ v ≤ Upper on a batch of activations (same shape, same dtype).</summary>
public sealed record Interval(Tensor Lower, Tensor Upper) : IDisposable
{
    public Tensor Center => (Upper + Lower) * Keep(0.5);
    public Tensor Radius => (Upper - Lower) * Keep(0.5);

    /// <summary>max(|Lower|, |Upper|): the largest magnitude any value in the interval can have.</summary>
    public Tensor Magnitude => Lower.abs().maximum(Upper.abs());

    public void MoveToOuterDisposeScope()
    {
        Lower.MoveToOuterDisposeScope();
        Upper.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Lower.Dispose();
        Upper.Dispose();
    }

    /// <summary>The L∞ ball of radius ε around x, intersected with the input bounds: [max(x − ε, lo), min(x + ε, hi)].</summary>
    public static Interval LinfBall(Tensor x, double epsilon, Bounds bounds) =>
        new((x - Keep(epsilon)).clamp_min(Keep(bounds.Lower)), (x + Keep(epsilon)).clamp_max(Keep(bounds.Upper)));
}

/// <summary>
/// How much to widen intervals for floating-point rounding. The bounds of <see cref="IntervalBoundPropagation"/> hold
/// for the network evaluated in exact arithmetic; the classifier a user runs is evaluated in float32, whose every
/// layer rounds. With <see cref="Float32Network"/> each layer's interval is widened by a standard forward error bound
/// of that layer computed in float32 (Higham, Accuracy and Stability of Numerical Algorithms, §3.1): a dot product
/// of n terms plus a bias is off by at most γ(n+1)·(Σ|wᵢ||xᵢ| + |b|), γ(k) = k·u/(1 − k·u), u = 2⁻²⁴; we use
/// <see cref="SafetyFactor"/>·γ(n+1) (summation order, fused kernels, the bound computation's own rounding), and
/// bound Σ|wᵢ||xᵢ| by |W|·max(|l|, |u|). ReLU and max-pooling are exact. Verification uses this; training does not.
/// </summary>
public sealed record FloatingPointSlack(double UnitRoundoff, double SafetyFactor)
{
    public static FloatingPointSlack None { get; } = new(0, 0);
    public static FloatingPointSlack Float32Network { get; } = new(Math.Pow(2, -24), 4);

    public bool IsNone => UnitRoundoff == 0 || SafetyFactor == 0;

    /// <summary>The relative error bound of a sum of <paramref name="terms"/> products: SafetyFactor·γ(terms + 1).</summary>
    public double Relative(long terms)
    {
        if (IsNone) return 0;
        double k = terms + 1;
        return SafetyFactor * k * UnitRoundoff / (1 - k * UnitRoundoff);
    }
}

/// <summary>
/// Interval bound propagation (Gowal et al. 2018) through a <see cref="NetworkGraph"/>: affine layers in
/// centre/radius form (μ' = Wμ + b, r' = |W|r), monotone activations and pooling on the endpoints, residual Add as the
/// sum of intervals. Everything is ordinary differentiable tensor code, so IBP training backpropagates through it.
/// The dtype of the input interval is the arithmetic (float32 for training, float64 for verification).
/// </summary>
public sealed record IntervalBoundPropagation
{
    public FloatingPointSlack Slack { get; init; } = FloatingPointSlack.None;

    /// <summary>Bounds on the output of every node for inputs in <paramref name="input"/>; index i = node i.
    /// Tensors belong to the caller's dispose scope.</summary>
    public Interval[] Propagate(NetworkGraph graph, Interval input, int? count = null)
    {
        int n = count ?? graph.Nodes.Count;
        var values = new Interval[n];
        Interval At(int j) => j == NetworkGraph.Input ? input : values[j];
        for (int i = 0; i < n; i++)
        {
            var node = graph.Nodes[i];
            values[i] = Step(node, At(node.Inputs[0]), node.Op.Arity == 2 ? At(node.Inputs[1]) : null);
        }
        return values;
    }

    /// <summary>Bounds on the logits (the last node).</summary>
    public Interval Logits(NetworkGraph graph, Interval input) => Propagate(graph, input)[^1];

    /// <summary>
    /// Lower bounds on the margins z_y − z_j for every class j ([N, K]; the entry j = y is 0). When the last layer is
    /// linear it is folded into the specification, as in the paper: the bound comes from the rows w_y − w_j applied to
    /// the interval of the layer's input, which is tighter than lower(z_y) − upper(z_j). With a slack the bound also
    /// covers the rounding of z_y and z_j in float32.
    /// </summary>
    public Tensor MarginLowerBounds(NetworkGraph graph, Interval input, Tensor labels)
    {
        var last = graph.Output;
        var classes = labels.to(ScalarType.Int64);
        if (last.Op is LinearOp l)
        {
            var values = Propagate(graph, input, graph.Nodes.Count - 1);
            var h = last.Inputs[0] == NetworkGraph.Input ? input : values[last.Inputs[0]];
            var dtype = h.Lower.dtype;
            var w = Cast(l.Weight, dtype);                                  // [K, H]
            var b = l.Bias is null ? zeros(w.shape[0], dtype: dtype, device: w.device) : Cast(l.Bias, dtype);
            var c = h.Center;                                               // [N, H]
            var r = h.Radius;
            var wy = w.index_select(0, classes);                            // [N, H]
            var diff = wy.unsqueeze(1) - w.unsqueeze(0);                    // [N, K, H]
            var centre = diff.bmm(c.unsqueeze(2)).squeeze(2);              // [N, K]
            var spread = diff.abs().bmm(r.unsqueeze(2)).squeeze(2);
            var bias = b.index_select(0, classes).unsqueeze(1) - b.unsqueeze(0);
            var margin = centre - spread + bias;
            if (!Slack.IsNone)
            {
                // Rounding of z_y and of z_j in the float32 network: γ(|w|·max|h| + |b|) for each.
                var m = h.Magnitude;
                var row = F.linear(m, w.abs()) + b.abs();                   // [N, K]
                var rel = Slack.Relative(w.shape[1]);
                margin = margin - (row.gather(1, classes.unsqueeze(1)) + row) * Keep(rel);
            }
            return ZeroAtLabel(margin, classes);
        }
        var z = Logits(graph, input);
        var lowerY = z.Lower.gather(1, classes.unsqueeze(1));
        return ZeroAtLabel(lowerY - z.Upper, classes);
    }

    /// <summary>
    /// Gowal et al.'s worst-case logits ẑ: ẑ_j = upper bound of z_j − z_y (j ≠ y), ẑ_y = 0. CE(ẑ, y) bounds the
    /// cross-entropy of every point in the input interval from above; the training objective mixes it with the clean CE.
    /// </summary>
    public Tensor WorstCaseLogits(NetworkGraph graph, Interval input, Tensor labels) => -MarginLowerBounds(graph, input, labels);

    private static Tensor ZeroAtLabel(Tensor margin, Tensor classes) =>
        margin.scatter(1, classes.unsqueeze(1), zeros(classes.shape[0], 1, dtype: margin.dtype, device: margin.device));

    private Interval Step(GraphNode node, Interval x, Interval? second)
    {
        switch (node.Op)
        {
            case LinearOp l:
            {
                var dtype = x.Lower.dtype;
                var w = Cast(l.Weight, dtype);
                var b = l.Bias is null ? null : Cast(l.Bias, dtype);
                var wAbs = w.abs();
                var centre = x.Center;
                var mu = F.linear(centre, w, b);
                var r = F.linear(SlackedRadius(centre, x.Radius, w.shape[1], out var rel), wAbs);
                if (rel > 0 && b is not null) r = r + b.abs() * Keep(rel);
                return new Interval(mu - r, mu + r);
            }
            case Conv2dOp c:
            {
                var dtype = x.Lower.dtype;
                var w = Cast(c.Weight, dtype);
                var b = c.Bias is null ? null : Cast(c.Bias, dtype);
                var wAbs = w.abs();
                var centre = x.Center;
                var mu = F.conv2d(centre, w, b, c.Stride, c.Padding, c.Dilation, c.Groups);
                var r = F.conv2d(SlackedRadius(centre, x.Radius, w.shape[1] * w.shape[2] * w.shape[3], out var rel), wAbs, null, c.Stride, c.Padding, c.Dilation, c.Groups);
                if (rel > 0 && b is not null) r = r + GraphExecutor.ChannelView(b.abs(), r) * Keep(rel);
                return new Interval(mu - r, mu + r);
            }
            case ReluOp:
                return new Interval(x.Lower.relu(), x.Upper.relu());
            case TanhOp:
                return Widen(new Interval(x.Lower.tanh(), x.Upper.tanh()), 4);
            case SigmoidOp:
                return Widen(new Interval(x.Lower.sigmoid(), x.Upper.sigmoid()), 4);
            case MaxPool2dOp p:
                return new Interval(F.max_pool2d(x.Lower, p.Kernel, p.Stride, p.Padding), F.max_pool2d(x.Upper, p.Kernel, p.Stride, p.Padding));
            case AvgPool2dOp p:
                return Widen(new Interval(F.avg_pool2d(x.Lower, p.Kernel, p.Stride, p.Padding), F.avg_pool2d(x.Upper, p.Kernel, p.Stride, p.Padding)),
                    p.Kernel.Aggregate(1L, (a, k) => a * k));
            case GlobalAvgPoolOp:
                return Widen(new Interval(F.adaptive_avg_pool2d(x.Lower, 1), F.adaptive_avg_pool2d(x.Upper, 1)), x.Lower.shape[2] * x.Lower.shape[3]);
            case FlattenOp:
                return new Interval(x.Lower.flatten(1), x.Upper.flatten(1));
            case BatchNormOp bn:
                return ChannelAffine(x, bn.Affine());
            case ChannelAffineOp a:
                return ChannelAffine(x, (a.Scale, a.Shift));
            case AddOp:
            {
                var y = second!;
                var sum = new Interval(x.Lower + y.Lower, x.Upper + y.Upper);
                if (Slack.IsNone) return sum;
                var bound = (x.Magnitude + y.Magnitude) * Keep(Slack.Relative(1));
                return new Interval(sum.Lower - bound, sum.Upper + bound);
            }
            default:
                throw new NotSupportedException($"interval bounds: no rule for op '{node.Op.Kind}' (node {node.Name})");
        }
    }

    /// <summary>x·s + t per channel: centre s·μ + t, radius |s|·r.</summary>
    private Interval ChannelAffine(Interval x, (Tensor Scale, Tensor Shift) affine)
    {
        var dtype = x.Lower.dtype;
        var s = GraphExecutor.ChannelView(Cast(affine.Scale, dtype), x.Lower);
        var t = GraphExecutor.ChannelView(Cast(affine.Shift, dtype), x.Lower);
        var mu = x.Center * s + t;
        var r = x.Radius * s.abs();
        if (!Slack.IsNone)
            r = r + (x.Magnitude * s.abs() + t.abs()) * Keep(Slack.Relative(4));
        return new Interval(mu - r, mu + r);
    }

    /// <summary>
    /// The radius an affine layer's |W| is applied to: r + ρ·max(|l|, |u|) with ρ = the slack of a <paramref name="terms"/>-term
    /// dot product. |W|·r + ρ·(|W|·max(|l|, |u|) + |b|) = |W|·(r + ρ·max(|l|, |u|)) + ρ·|b|, so the rounding slack costs a
    /// few elementwise passes instead of a third convolution or matrix product (the caller adds ρ·|b|). With centre c and
    /// radius r ≥ 0, max(|c − r|, |c + r|) = |c| + r, so r + ρ·max(|l|, |u|) = (1 + ρ)·r + ρ·|c|.
    /// </summary>
    private Tensor SlackedRadius(Tensor centre, Tensor radius, long terms, out double rel)
    {
        rel = Slack.Relative(terms);
        return rel > 0 ? radius.mul(Keep(1 + rel)).add_(centre.abs().mul_(Keep(rel))) : radius;
    }

    /// <summary>Widens an interval computed by a rounded op of about <paramref name="terms"/> terms.</summary>
    private Interval Widen(Interval y, long terms)
    {
        if (Slack.IsNone) return y;
        var bound = y.Magnitude * Keep(Slack.Relative(terms));
        return new Interval(y.Lower - bound, y.Upper + bound);
    }

    /// <summary>The tensor in the propagation's dtype; a new handle either way (never the parameter's own handle,
    /// which a dispose scope must not release).</summary>
    internal static Tensor Cast(Tensor t, ScalarType dtype) => t.dtype == dtype ? t.alias() : t.to(dtype);
}
