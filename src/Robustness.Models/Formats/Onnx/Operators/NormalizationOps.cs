using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Models.Formats.Onnx.Operators;

/// <summary>Normalisation, softmax, reductions and padding.</summary>
internal static class NormalizationOps
{
    public static IEnumerable<OnnxOperator> Operators =>
    [
        new("BatchNormalization", BatchNormalization),
        new("LayerNormalization", LayerNormalization),
        new("Softmax", n => Softmax(n, log: false)),
        new("LogSoftmax", n => Softmax(n, log: true)),
        new("ReduceMean", ReduceMean),
        new("Pad", Pad),
    ];

    /// <summary>Inference form: (x − mean)/√(var + ε)·scale + B with the stored statistics.</summary>
    private static OnnxValue[] BatchNormalization(OnnxNode n)
    {
        n.AllowOnly("epsilon", "momentum", "training_mode", "spatial");
        if (n.Int("training_mode", 0) != 0) throw n.Error("training_mode is 1; only inference batch normalisation is executed");
        if (n.Int("spatial", 1) != 1) throw n.Error("spatial = 0 is not supported");
        var x = n.F(0);
        if (x.dim() < 2) throw n.Error($"input has rank {x.dim()}, expected N×C×…");
        long channels = x.shape[1];
        var (scale, bias, mean, variance) = (n.F(1), n.F(2), n.F(3), n.F(4));
        foreach (var (t, name) in new[] { (scale, "scale"), (bias, "B"), (mean, "mean"), (variance, "var") })
            if (t.dim() != 1 || t.shape[0] != channels) throw n.Error($"{name} has shape {OnnxTensors.Dims(t.shape)}, expected [{channels}]");
        // The statistics are constants of the graph (parameters only because every float initializer is one).
        using var fixedMean = mean.detach();
        using var fixedVariance = variance.detach();
        return [OnnxValue.Of(nn.functional.batch_norm(x, fixedMean, fixedVariance, scale, bias, training: false, eps: n.Float("epsilon", 1e-5f)))];
    }

    /// <summary>Opset 17: normalise over axes [axis, rank); Scale and B broadcast to the normalised shape.</summary>
    private static OnnxValue[] LayerNormalization(OnnxNode n)
    {
        n.AllowOnly("axis", "epsilon", "stash_type");
        var x = n.F(0);
        long axis = n.Axis(n.Int("axis", -1), x.dim());
        var dims = Enumerable.Range((int)axis, (int)(x.dim() - axis)).Select(i => (long)i).ToArray();
        using var mean = x.mean(dims, keepdim: true);
        using var centred = x - mean;
        using var squared = centred.square();
        using var variance = squared.mean(dims, keepdim: true);
        using var std = (variance + Keep(n.Float("epsilon", 1e-5f))).sqrt();
        var y = centred / std * n.F(1);
        if (n.Has(2)) y = y + n.F(2);
        return [OnnxValue.Of(y)];
    }

    /// <summary>Before opset 13 the input is coerced to 2-D at axis (default 1); from 13 on, one axis (default −1).</summary>
    private static OnnxValue[] Softmax(OnnxNode n, bool log)
    {
        n.AllowOnly("axis");
        var x = n.F(0);
        if (n.Opset >= 13)
        {
            long axis = n.Axis(n.Int("axis", -1), x.dim());
            return [OnnxValue.Of(log ? x.log_softmax(axis) : x.softmax(axis))];
        }
        long a = n.Int("axis", 1);
        if (a < 0) a += x.dim();
        if (a < 0 || a > x.dim()) throw n.Error($"axis {n.Int("axis", 1)} is out of range for a rank-{x.dim()} input");
        long outer = x.shape.Take((int)a).Aggregate(1L, (p, q) => p * q);
        long inner = x.shape.Skip((int)a).Aggregate(1L, (p, q) => p * q);
        using var flat = x.reshape(outer, inner);
        using var y = log ? flat.log_softmax(1) : flat.softmax(1);
        return [OnnxValue.Of(y.reshape(x.shape))];
    }

    /// <summary>Opsets ≤ 17: axes is an attribute (all axes when absent), keepdims defaults to 1.</summary>
    private static OnnxValue[] ReduceMean(OnnxNode n)
    {
        n.AllowOnly("axes", "keepdims");
        var x = n.F(0);
        bool keep = n.Int("keepdims", 1) != 0;
        var axes = n.Ints("axes");
        var dims = axes is null
            ? Enumerable.Range(0, (int)x.dim()).Select(i => (long)i).ToArray()
            : axes.Select(a => n.Axis(a, x.dim())).Distinct().ToArray();
        return [OnnxValue.Of(x.mean(dims, keepdim: keep))];
    }

    /// <summary>Pad: pads (and the constant) are attributes before opset 11 and inputs from 11 on.</summary>
    private static OnnxValue[] Pad(OnnxNode n)
    {
        var x = n.F(0);
        long[] pads;
        double value;
        if (n.Opset < 11)
        {
            n.AllowOnly("mode", "pads", "value");
            pads = n.Ints("pads") ?? throw n.Error("attribute 'pads' is required");
            value = n.Float("value", 0f);
        }
        else
        {
            n.AllowOnly("mode");
            pads = n.HostInts(1);
            value = 0;
            if (n.Has(2))
            {
                var c = n.Input(2);
                if (c.Count != 1) throw n.Error("constant_value must be a scalar");
                value = c.ReadReals()[0];
            }
        }
        long rank = x.dim();
        if (pads.Length != 2 * rank) throw n.Error($"pads has {pads.Length} values for a rank-{rank} input, expected {2 * rank}");
        var mode = n.String("mode") ?? "constant";
        var torchPads = new List<long>();
        for (long axis = rank - 1; axis >= 0; axis--) torchPads.AddRange([pads[axis], pads[axis + rank]]);
        if (mode == "constant") return [OnnxValue.Of(nn.functional.pad(x, torchPads.ToArray(), PaddingModes.Constant, value))];
        var torchMode = mode switch
        {
            "reflect" => PaddingModes.Reflect,
            "edge" => PaddingModes.Replicate,
            _ => throw n.Error($"mode '{mode}' is not one of constant, reflect, edge"),
        };
        if (pads.Any(p => p < 0)) throw n.Error($"negative pads with mode '{mode}' are not supported");
        // torch pads the trailing 1–3 axes in these modes: everything before must be unpadded.
        int padded = (int)Math.Min(3, rank - 2);
        for (long axis = 0; axis < rank - padded; axis++)
            if (pads[axis] != 0 || pads[axis + rank] != 0)
                throw n.Error($"mode '{mode}' padding of axis {axis} (batch or channel) is not supported");
        if (padded < 1) throw n.Error($"mode '{mode}' needs an input of rank ≥ 3");
        return [OnnxValue.Of(nn.functional.pad(x, torchPads.Take(2 * padded).ToArray(), torchMode))];
    }
}
