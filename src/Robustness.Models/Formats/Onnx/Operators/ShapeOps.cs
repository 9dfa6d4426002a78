using Robustness.Core;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Models.Formats.Onnx.Operators;

/// <summary>Shape, indexing and layout operators; most run on the host when their inputs are shape values.</summary>
internal static class ShapeOps
{
    public static IEnumerable<OnnxOperator> Operators =>
    [
        new("Shape", Shape, HostCapable: true),
        new("Gather", Gather, HostCapable: true),
        new("Reshape", Reshape, HostCapable: true),
        new("Flatten", Flatten, HostCapable: true),
        new("Transpose", Transpose, HostCapable: true),
        new("Concat", Concat, HostCapable: true),
        new("Squeeze", Squeeze, HostCapable: true),
        new("Unsqueeze", Unsqueeze, HostCapable: true),
        new("Slice", Slice, HostCapable: true),
        new("Cast", Cast, HostCapable: true),
        new("ConstantOfShape", ConstantOfShape, HostCapable: true),
    ];

    /// <summary>The input's shape as a host value (no device sync); opset 15 adds start/end.</summary>
    private static OnnxValue[] Shape(OnnxNode n)
    {
        n.AllowOnly(n.Opset >= 15 ? ["start", "end"] : []);
        var shape = n.Input(0).Shape;
        long rank = shape.Length;
        long Clamp(long v) => Math.Clamp(v < 0 ? v + rank : v, 0, rank);
        long start = Clamp(n.Int("start", 0)), end = Clamp(n.Int("end", rank));
        var dims = shape.Skip((int)start).Take((int)Math.Max(0, end - start)).ToArray();
        return [OnnxValue.HostInts(dims, [dims.Length])];
    }

    private static OnnxValue[] Gather(OnnxNode n)
    {
        n.AllowOnly("axis");
        var data = n.T(0);
        var axis = n.Axis(n.Int("axis", 0), data.dim());
        long size = data.shape[axis];
        var indicesValue = n.Input(1);
        if (indicesValue.IsFloat) throw n.Error("indices must be integers");
        Tensor indices;
        if (indicesValue.Ints is { } host)
        {
            var fixedUp = host.Select(i => i < 0 ? i + size : i).ToArray();
            if (fixedUp.Any(i => i < 0 || i >= size)) throw n.Error($"an index is out of range for axis {axis} of size {size}");
            indices = tensor(fixedUp, ScalarType.Int64, data.device);
        }
        else
        {
            using var raw = indicesValue.Tensor(n.Device).to(ScalarType.Int64).flatten();
            using var negative = raw.lt(Keep(0));
            using var shifted = raw + Keep(size);
            indices = where(negative, shifted, raw);
        }
        using (indices)
        {
            using var picked = data.index_select(axis, indices.flatten());
            var outShape = data.shape.Take((int)axis).Concat(indicesValue.Shape).Concat(data.shape.Skip((int)axis + 1)).ToArray();
            return [OnnxValue.Of(picked.reshape(outShape))];
        }
    }

    private static OnnxValue[] Reshape(OnnxNode n)
    {
        n.AllowOnly(n.Opset >= 14 ? ["allowzero"] : []);
        var data = n.T(0);
        var shape = n.HostInts(1).ToArray();
        bool allowZero = n.Int("allowzero", 0) != 0;
        if (shape.Count(d => d == -1) > 1) throw n.Error("more than one -1 in the target shape");
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] < -1) throw n.Error($"target shape {OnnxTensors.Dims(shape)} has a negative size");
            if (shape[i] == 0 && !allowZero)
            {
                if (i >= data.dim()) throw n.Error($"target shape {OnnxTensors.Dims(shape)} copies dimension {i}, which the rank-{data.dim()} input lacks");
                shape[i] = data.shape[i];
            }
        }
        try { return [OnnxValue.Of(data.reshape(shape))]; }
        catch (Exception e) when (e is not ModelFormatException)
        { throw n.Error($"cannot reshape {OnnxTensors.Dims(data.shape)} to {OnnxTensors.Dims(shape)}"); }
    }

    private static OnnxValue[] Flatten(OnnxNode n)
    {
        n.AllowOnly("axis");
        var data = n.T(0);
        long rank = data.dim();
        long axis = n.Int("axis", 1);
        if (axis < 0) axis += rank;
        if (axis < 0 || axis > rank) throw n.Error($"axis {n.Int("axis", 1)} is out of range for a rank-{rank} input");
        long outer = data.shape.Take((int)axis).Aggregate(1L, (a, b) => a * b);
        long inner = data.shape.Skip((int)axis).Aggregate(1L, (a, b) => a * b);
        return [OnnxValue.Of(data.reshape(outer, inner))];
    }

    private static OnnxValue[] Transpose(OnnxNode n)
    {
        n.AllowOnly("perm");
        var data = n.T(0);
        var perm = n.Ints("perm") ?? Enumerable.Range(0, (int)data.dim()).Reverse().Select(i => (long)i).ToArray();
        if (perm.Length != data.dim() || perm.Distinct().Count() != perm.Length || perm.Any(p => p < 0 || p >= data.dim()))
            throw n.Error($"perm {OnnxTensors.Dims(perm)} is not a permutation of the input's {data.dim()} axes");
        return [OnnxValue.Of(data.permute(perm))];
    }

    private static OnnxValue[] Concat(OnnxNode n)
    {
        n.AllowOnly("axis");
        var parts = Enumerable.Range(0, n.Inputs.Length).Where(n.Has).Select(n.T).ToArray();
        if (parts.Length == 0) throw n.Error("no inputs");
        var axis = n.Axis(n.Int("axis"), parts[0].dim());
        if (parts.Select(p => p.is_floating_point()).Distinct().Count() > 1) throw n.Error("inputs have different element types");
        return [OnnxValue.Of(cat(parts, axis))];
    }

    /// <summary>Axes: an attribute before opset 13, an optional input from 13 on.</summary>
    private static long[]? AxesOf(OnnxNode n, int inputIndex)
    {
        if (n.Opset < 13)
        {
            n.AllowOnly("axes");
            return n.Ints("axes");
        }
        n.AllowOnly();
        return n.Has(inputIndex) ? n.HostInts(inputIndex) : null;
    }

    private static OnnxValue[] Squeeze(OnnxNode n)
    {
        var data = n.T(0);
        var axes = AxesOf(n, 1);
        if (axes is null) return [OnnxValue.Of(data.shape.Any(d => d == 1) ? data.squeeze() : data.alias())];
        var normalized = axes.Select(a => n.Axis(a, data.dim())).Distinct().OrderDescending().ToArray();
        var result = data.alias();
        foreach (var a in normalized)
        {
            if (data.shape[a] != 1) throw n.Error($"cannot squeeze axis {a} of size {data.shape[a]}");
            var next = result.squeeze(a);
            result.Dispose();
            result = next;
        }
        return [OnnxValue.Of(result)];
    }

    private static OnnxValue[] Unsqueeze(OnnxNode n)
    {
        var data = n.T(0);
        var axes = AxesOf(n, 1) ?? throw n.Error("axes are required");
        long outRank = data.dim() + axes.Length;
        var normalized = axes.Select(a => n.Axis(a, outRank)).ToArray();
        if (normalized.Distinct().Count() != normalized.Length) throw n.Error("axes repeat");
        var result = data.alias();
        foreach (var a in normalized.Order())
        {
            var next = result.unsqueeze(a);
            result.Dispose();
            result = next;
        }
        return [OnnxValue.Of(result)];
    }

    /// <summary>Slice (opset ≥ 10): starts, ends, axes, steps as inputs, clamped as the spec says; negative steps too.</summary>
    private static OnnxValue[] Slice(OnnxNode n)
    {
        n.AllowOnly();
        var data = n.T(0);
        var starts = n.HostInts(1);
        var ends = n.HostInts(2);
        if (starts.Length != ends.Length) throw n.Error("starts and ends differ in length");
        var axes = n.Has(3) ? n.HostInts(3) : Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
        var steps = n.Has(4) ? n.HostInts(4) : Enumerable.Repeat(1L, starts.Length).ToArray();
        if (axes.Length != starts.Length || steps.Length != starts.Length) throw n.Error("starts, ends, axes and steps differ in length");
        var result = data.alias();
        for (int i = 0; i < starts.Length; i++)
        {
            long axis = n.Axis(axes[i], data.dim());
            long dim = data.shape[axis];
            long step = steps[i];
            if (step == 0) throw n.Error("a step is 0");
            long start = starts[i] < 0 ? starts[i] + dim : starts[i];
            long end = ends[i] < 0 ? ends[i] + dim : ends[i];
            Tensor next;
            if (step > 0)
            {
                start = Math.Clamp(start, 0, dim);
                end = Math.Clamp(end, 0, dim);
                next = result.slice(axis, start, Math.Max(start, end), step);
            }
            else
            {
                start = Math.Clamp(start, 0, dim - 1);
                end = Math.Clamp(end, -1, dim - 1);
                var picked = new List<long>();
                for (long j = start; j > end; j += step) picked.Add(j);
                using var index = tensor(picked.ToArray(), ScalarType.Int64, data.device);
                next = result.index_select(axis, index);
            }
            result.Dispose();
            result = next;
        }
        return [OnnxValue.Of(result)];
    }

    /// <summary>Cast: floating-point targets become float32 (the precision we execute in), integer targets int64.</summary>
    private static OnnxValue[] Cast(OnnxNode n)
    {
        n.AllowOnly("to", "saturate");
        var to = (int)n.Int("to");
        var target = to switch
        {
            _ when OnnxTensors.IsFloatType(to) => ScalarType.Float32,
            (int)TensorProto.Types.DataType.Bool => ScalarType.Bool,
            _ when OnnxTensors.IsKnownType(to) => ScalarType.Int64,
            _ => throw n.Error($"cast to {OnnxTensors.TypeName(to)} is not supported"),
        };
        return [OnnxValue.Of(n.T(0).to(target))];
    }

    private static OnnxValue[] ConstantOfShape(OnnxNode n)
    {
        n.AllowOnly("value");
        var shape = n.HostInts(0);
        if (shape.Any(d => d < 0)) throw n.Error($"shape {OnnxTensors.Dims(shape)} has a negative size");
        long count = shape.Aggregate(1L, (a, b) => b == 0 ? 0 : a > OnnxTensors.MaxElements / b ? OnnxTensors.MaxElements + 1 : a * b);
        if (count > OnnxTensors.MaxElements) throw n.Error($"shape {OnnxTensors.Dims(shape)} is too large");
        double value = 0;
        var dtype = ScalarType.Float32;
        if (n.TensorAttribute("value") is { } t)
        {
            var v = OnnxTensors.Read(t, $"attribute 'value' of node '{n.Name}'", n.File, CPU);
            using var tv = v.Tensor(CPU);
            if (v.Count != 1) throw n.Error("attribute 'value' must hold one element");
            dtype = v.IsFloat ? ScalarType.Float32 : v.DType == ScalarType.Bool ? ScalarType.Bool : ScalarType.Int64;
            value = v.ReadReals()[0];
        }
        return [OnnxValue.Of(full(shape, Keep(value), dtype, n.Device))];
    }
}
