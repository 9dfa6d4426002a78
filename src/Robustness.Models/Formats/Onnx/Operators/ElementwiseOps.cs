using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Models.Formats.Onnx.Operators;

/// <summary>Element-wise arithmetic and activations (numpy broadcasting is torch's).</summary>
internal static class ElementwiseOps
{
    public static IEnumerable<OnnxOperator> Operators =>
    [
        new("Add", n => Binary(n, (a, b) => a + b), HostCapable: true),
        new("Sub", n => Binary(n, (a, b) => a - b), HostCapable: true),
        new("Mul", n => Binary(n, (a, b) => a * b), HostCapable: true),
        new("Div", Div, HostCapable: true),
        new("Pow", Pow),
        new("Sqrt", n => Unary(n, x => x.sqrt())),
        new("Erf", n => Unary(n, x => x.erf())),
        new("Relu", n => Unary(n, x => x.relu())),
        new("Sigmoid", n => Unary(n, x => x.sigmoid())),
        new("Tanh", n => Unary(n, x => x.tanh())),
        new("Neg", n => Unary(n, x => x.neg())),
        new("Exp", n => Unary(n, x => x.exp())),
        new("Abs", n => Unary(n, x => x.abs())),
        new("LeakyRelu", LeakyRelu),
        new("PRelu", PRelu),
        new("Clip", Clip),
        new("Identity", n => [OnnxValue.Of(n.T(0).alias())], HostCapable: true),
        new("Dropout", Dropout),
    ];

    private static OnnxValue[] Unary(OnnxNode n, Func<Tensor, Tensor> f)
    {
        n.AllowOnly();
        return [OnnxValue.Of(f(n.F(0)))];
    }

    /// <summary>Both inputs share a type in valid ONNX; host integers meeting a float tensor are promoted.</summary>
    private static OnnxValue[] Binary(OnnxNode n, Func<Tensor, Tensor, Tensor> f)
    {
        n.AllowOnly();
        var (a, b) = Operands(n);
        return [OnnxValue.Of(f(a, b))];
    }

    private static (Tensor, Tensor) Operands(OnnxNode n)
    {
        var a = n.Input(0);
        var b = n.Input(1);
        if (a.IsFloat == b.IsFloat) return (a.Tensor(n.Device), b.Tensor(n.Device));
        throw n.Error($"inputs have different element types ({a.DType}, {b.DType})");
    }

    /// <summary>Integer division truncates toward zero, as in ONNX Runtime.</summary>
    private static OnnxValue[] Div(OnnxNode n)
    {
        n.AllowOnly();
        var (a, b) = Operands(n);
        return [OnnxValue.Of(a.is_floating_point() ? a / b : a.div(b, RoundingMode.trunc))];
    }

    private static OnnxValue[] Pow(OnnxNode n)
    {
        n.AllowOnly();
        var x = n.F(0);
        var y = n.Input(1);
        // A constant scalar exponent (LayerNorm decompositions use 2.0) stays a scalar power: same values, cheaper backward.
        if (y.Count == 1 && (y.Reals ?? y.Ints?.Select(v => (double)v).ToArray()) is { } e)
            return [OnnxValue.Of(x.pow(Keep(e[0])))];
        var t = y.Tensor(n.Device);
        return [OnnxValue.Of(x.pow(t.is_floating_point() ? t : t.to(x.dtype)))];
    }

    private static OnnxValue[] LeakyRelu(OnnxNode n)
    {
        n.AllowOnly("alpha");
        return [OnnxValue.Of(nn.functional.leaky_relu(n.F(0), n.Float("alpha", 0.01f)))];
    }

    /// <summary>f(x) = x for x ≥ 0, slope·x otherwise; the slope broadcasts to x (numpy rules, not torch's channel rule).</summary>
    private static OnnxValue[] PRelu(OnnxNode n)
    {
        n.AllowOnly();
        var x = n.F(0);
        var slope = n.F(1);
        using var negative = x.lt(Keep(0));
        using var scaled = x * slope;
        return [OnnxValue.Of(where(negative, scaled, x))];
    }

    /// <summary>Clip: bounds are attributes before opset 11 and optional inputs from 11 on.</summary>
    private static OnnxValue[] Clip(OnnxNode n)
    {
        var x = n.F(0);
        if (n.Opset < 11)
        {
            n.AllowOnly("min", "max");
            return [OnnxValue.Of(x.clamp(Keep(n.Float("min", float.NegativeInfinity)), Keep(n.Float("max", float.PositiveInfinity))))];
        }
        n.AllowOnly();
        double? Bound(int i)
        {
            if (!n.Has(i)) return null;
            var v = n.Input(i);
            if (v.Count != 1) throw n.Error($"input {i} must be a scalar, has shape {OnnxTensors.Dims(v.Shape)}");
            return v.ReadReals()[0];
        }
        var lo = Bound(1);
        var hi = Bound(2);
        if (lo is null && hi is null) return [OnnxValue.Of(x.alias())];
        if (lo is not null && hi is not null && lo > hi)
        {
            // ONNX: every output is max when min > max.
            return [OnnxValue.Of(x.clamp(Keep(hi.Value), Keep(hi.Value)))];
        }
        return [OnnxValue.Of(lo is null ? x.clamp_max(Keep(hi!.Value)) : hi is null ? x.clamp_min(Keep(lo.Value)) : x.clamp(Keep(lo.Value), Keep(hi.Value)))];
    }

    /// <summary>Inference: the identity. A graph that asks for training-mode dropout is refused.</summary>
    private static OnnxValue[] Dropout(OnnxNode n)
    {
        n.AllowOnly("ratio", "seed");
        if (n.Has(2) && n.Input(2).ReadInts().Any(v => v != 0))
            throw n.Error("training_mode is true; only inference dropout (the identity) is executed");
        return [OnnxValue.Of(n.T(0).alias())];
    }
}
