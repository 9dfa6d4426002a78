using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Models.Formats.Onnx.Operators;

/// <summary>Convolution, pooling and the matrix products (1–3 spatial dimensions).</summary>
internal static class ConvolutionOps
{
    public static IEnumerable<OnnxOperator> Operators =>
    [
        new("Conv", Conv),
        new("MaxPool", MaxPool),
        new("AveragePool", AveragePool),
        new("GlobalAveragePool", n => Global(n, max: false)),
        new("GlobalMaxPool", n => Global(n, max: true)),
        new("Gemm", Gemm),
        new("MatMul", n => { n.AllowOnly(); return [OnnxValue.Of(n.F(0).matmul(n.F(1)))]; }),
    ];

    /// <summary>Per-axis window geometry of a Conv or pool node.</summary>
    private sealed record Window(long[] Kernel, long[] Strides, long[] Dilations, long[] Begin, long[] End)
    {
        public bool Symmetric => Begin.SequenceEqual(End);
        public bool Padded => Begin.Any(p => p != 0) || End.Any(p => p != 0);

        /// <summary>torch's pad list: last axis first, (begin, end) each.</summary>
        public long[] TorchPads()
        {
            var pads = new long[2 * Begin.Length];
            for (int i = 0; i < Begin.Length; i++)
            {
                int axis = Begin.Length - 1 - i;
                pads[2 * i] = Begin[axis];
                pads[2 * i + 1] = End[axis];
            }
            return pads;
        }
    }

    private static Window WindowOf(OnnxNode n, Tensor x, long[] kernel)
    {
        int k = kernel.Length;
        if (x.dim() != k + 2) throw n.Error($"input has rank {x.dim()}, expected {k + 2} for a {k}-D kernel");
        var strides = n.Ints("strides") ?? Enumerable.Repeat(1L, k).ToArray();
        var dilations = n.Ints("dilations") ?? Enumerable.Repeat(1L, k).ToArray();
        if (strides.Length != k || dilations.Length != k) throw n.Error("strides or dilations do not match the kernel's rank");
        if (strides.Any(s => s < 1) || dilations.Any(d => d < 1) || kernel.Any(d => d < 1)) throw n.Error("kernel, strides and dilations must be positive");
        var autoPad = n.String("auto_pad") ?? "NOTSET";
        var begin = new long[k];
        var end = new long[k];
        switch (autoPad)
        {
            case "NOTSET":
                var pads = n.Ints("pads") ?? new long[2 * k];
                if (pads.Length != 2 * k) throw n.Error($"pads has {pads.Length} values, expected {2 * k}");
                if (pads.Any(p => p < 0)) throw n.Error("pads must not be negative");
                Array.Copy(pads, 0, begin, 0, k);
                Array.Copy(pads, k, end, 0, k);
                break;
            case "VALID":
                break;
            case "SAME_UPPER" or "SAME_LOWER":
                for (int i = 0; i < k; i++)
                {
                    long input = x.shape[i + 2];
                    long output = (input + strides[i] - 1) / strides[i];
                    long total = Math.Max(0, (output - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - input);
                    long small = total / 2;
                    (begin[i], end[i]) = autoPad == "SAME_UPPER" ? (small, total - small) : (total - small, small);
                }
                break;
            default:
                throw n.Error($"auto_pad '{autoPad}' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER");
        }
        return new Window(kernel, strides, dilations, begin, end);
    }

    private static OnnxValue[] Conv(OnnxNode n)
    {
        n.AllowOnly("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides");
        var x = n.F(0);
        var w = n.F(1);
        var bias = n.Has(2) ? n.F(2) : null;
        var kernel = w.shape.Skip(2).ToArray();
        if (n.Ints("kernel_shape") is { } declared && !declared.SequenceEqual(kernel))
            throw n.Error($"kernel_shape {OnnxTensors.Dims(declared)} does not match the weights {OnnxTensors.Dims(w.shape)}");
        if (kernel.Length is < 1 or > 3) throw n.Error($"{kernel.Length}-D convolution is not supported (1–3)");
        long group = n.Int("group", 1);
        if (group < 1 || x.shape[1] != w.shape[1] * group || w.shape[0] % group != 0)
            throw n.Error($"input channels {x.shape[1]}, weights {OnnxTensors.Dims(w.shape)} and group {group} do not fit");
        var win = WindowOf(n, x, kernel);
        var input = x;
        long[] padding = win.Begin;
        if (!win.Symmetric)
        {
            input = nn.functional.pad(x, win.TorchPads());
            padding = new long[kernel.Length];
        }
        if (kernel.Length == 1)
        {
            // 1-D as 2-D with a height of one.
            using var x2 = input.unsqueeze(2);
            using var w2 = w.unsqueeze(2);
            using var y2 = nn.functional.conv2d(x2, w2, bias, [1, win.Strides[0]], [0, padding[0]], [1, win.Dilations[0]], group);
            return [OnnxValue.Of(y2.squeeze(2))];
        }
        var y = kernel.Length == 2
            ? nn.functional.conv2d(input, w, bias, win.Strides, padding, win.Dilations, group)
            : nn.functional.conv3d(input, w, bias, win.Strides, padding, win.Dilations, group);
        return [OnnxValue.Of(y)];
    }

    private static OnnxValue[] MaxPool(OnnxNode n)
    {
        n.AllowOnly("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides");
        var x = n.F(0);
        var win = WindowOf(n, x, n.Ints("kernel_shape") ?? throw n.Error("attribute 'kernel_shape' is required"));
        bool ceil = n.Int("ceil_mode", 0) != 0;
        var input = x;
        var padding = win.Begin;
        bool torchPads = win.Symmetric && win.Begin.Select((p, i) => p <= ((win.Kernel[i] - 1) * win.Dilations[i] + 1) / 2).All(b => b);
        if (!torchPads)
        {
            if (ceil) throw n.Error("ceil_mode with asymmetric or large pads is not supported");
            input = nn.functional.pad(x, win.TorchPads(), value: double.NegativeInfinity);
            padding = new long[win.Kernel.Length];
        }
        return [OnnxValue.Of(Pool(input, win with { Begin = padding }, x.dim(), ceil,
            (t, k, s, p, d) => k.Length == 2 ? nn.functional.max_pool2d(t, k, s, p, d, ceil) : nn.functional.max_pool3d(t, k, s, p, d, ceil)))];
    }

    private static OnnxValue[] AveragePool(OnnxNode n)
    {
        n.AllowOnly("auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides");
        var x = n.F(0);
        var win = WindowOf(n, x, n.Ints("kernel_shape") ?? throw n.Error("attribute 'kernel_shape' is required"));
        bool ceil = n.Int("ceil_mode", 0) != 0;
        bool includePad = n.Int("count_include_pad", 0) != 0;
        Tensor Avg(Tensor t, Window w, bool include) => Pool(t, w, t.dim(), ceil, (u, k, s, p, _) => k.Length == 2
            ? nn.functional.avg_pool2d(u, k, s, p, ceil, include)
            : nn.functional.avg_pool3d(u, k, s, p, ceil, include));
        bool torchPads = win.Symmetric && win.Begin.Select((p, i) => p <= win.Kernel[i] / 2).All(b => b);
        if (torchPads) return [OnnxValue.Of(Avg(x, win, includePad))];
        if (ceil) throw n.Error("ceil_mode with asymmetric or large pads is not supported");
        var noPads = win with { Begin = new long[win.Kernel.Length], End = new long[win.Kernel.Length] };
        using var padded = nn.functional.pad(x, win.TorchPads());
        if (includePad) return [OnnxValue.Of(Avg(padded, noPads, true))];
        // Exclude padding from each window's count: mean over the padded input / share of real cells in the window.
        var maskShape = new long[x.dim()];
        Array.Fill(maskShape, 1L);
        for (int i = 2; i < x.dim(); i++) maskShape[i] = x.shape[i];
        using var ones = torch.ones(maskShape, x.dtype, x.device);
        using var mask = nn.functional.pad(ones, win.TorchPads());
        using var sums = Avg(padded, noPads, true);
        using var share = Avg(mask, noPads, true);
        return [OnnxValue.Of(sums / share)];
    }

    private delegate Tensor PoolFunction(Tensor input, long[] kernel, long[] strides, long[] padding, long[] dilations);

    /// <summary>Runs a 2-D or 3-D pool; 1-D runs as 2-D with a height of one.</summary>
    private static Tensor Pool(Tensor input, Window w, long rank, bool ceil, PoolFunction f)
    {
        if (w.Kernel.Length == 1)
        {
            using var x2 = input.unsqueeze(2);
            using var y2 = f(x2, [1, w.Kernel[0]], [1, w.Strides[0]], [0, w.Begin[0]], [1, w.Dilations[0]]);
            return y2.squeeze(2);
        }
        if (w.Kernel.Length > 3 || rank != w.Kernel.Length + 2) throw new ArgumentException("pool rank");
        return f(input, w.Kernel, w.Strides, w.Begin, w.Dilations);
    }

    private static OnnxValue[] Global(OnnxNode n, bool max)
    {
        n.AllowOnly();
        var x = n.F(0);
        if (x.dim() < 3) throw n.Error($"input has rank {x.dim()}, expected N×C×spatial");
        var dims = Enumerable.Range(2, (int)x.dim() - 2).Select(i => (long)i).ToArray();
        return [OnnxValue.Of(max ? x.amax(dims, keepdim: true) : x.mean(dims, keepdim: true))];
    }

    /// <summary>Y = alpha·A'·B' + beta·C, with A' = Aᵀ when transA, B' = Bᵀ when transB; C broadcasts.</summary>
    private static OnnxValue[] Gemm(OnnxNode n)
    {
        n.AllowOnly("alpha", "beta", "transA", "transB", "broadcast");
        var a = n.F(0);
        var b = n.F(1);
        if (a.dim() != 2 || b.dim() != 2) throw n.Error($"A and B must be matrices, got {OnnxTensors.Dims(a.shape)} and {OnnxTensors.Dims(b.shape)}");
        float alpha = n.Float("alpha", 1f), beta = n.Float("beta", 1f);
        bool transA = n.Int("transA", 0) != 0, transB = n.Int("transB", 0) != 0;
        var c = n.Has(2) ? n.F(2) : null;
        // The common Linear layer: one fused op.
        if (!transA && transB && alpha == 1f && (c is null || (beta == 1f && c.dim() == 1)))
            return [OnnxValue.Of(nn.functional.linear(a, b, c))];
        var lhs = transA ? a.t() : a;
        var rhs = transB ? b.t() : b;
        var y = lhs.matmul(rhs);
        if (alpha != 1f) y = y * Keep(alpha);
        if (c is not null && beta != 0f) y = beta == 1f ? y + c : y + c * Keep(beta);
        return [OnnxValue.Of(y)];
    }
}
