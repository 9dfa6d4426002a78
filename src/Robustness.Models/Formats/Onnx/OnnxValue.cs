using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Formats.Onnx;

/// <summary>
/// A value flowing through the graph: a device tensor, and for integer (and small float) values also a host copy.
/// Shape arithmetic (Shape → Gather → Concat → Reshape, the pattern exporters emit for <c>x.view(x.size(0), -1)</c>)
/// then runs on the host without a device sync; a host value becomes a tensor only when a tensor operation needs it.
/// </summary>
internal sealed class OnnxValue
{
    private Tensor? _tensor;

    private OnnxValue(Tensor? tensor, long[]? ints, double[]? reals, long[] shape, ScalarType dtype, bool constant)
    {
        _tensor = tensor;
        Ints = ints;
        Reals = reals;
        Shape = shape;
        DType = dtype;
        IsConstant = constant;
    }

    /// <summary>Host copy of an integer or bool value (row-major), or null.</summary>
    public long[]? Ints { get; }
    /// <summary>Host copy of a small floating-point value, or null.</summary>
    public double[]? Reals { get; }
    public long[] Shape { get; }
    public ScalarType DType { get; }
    /// <summary>Owned by the graph (initializers, Constant nodes): never disposed by a forward pass.</summary>
    public bool IsConstant { get; }
    public bool IsFloat => DType is ScalarType.Float32 or ScalarType.Float64 or ScalarType.Float16 or ScalarType.BFloat16;
    public long Count => Shape.Aggregate(1L, (a, b) => a * b);

    public static OnnxValue Of(Tensor tensor, bool constant = false) =>
        new(tensor, null, null, tensor.shape, tensor.dtype, constant);

    public static OnnxValue HostInts(long[] values, long[] shape, ScalarType dtype = ScalarType.Int64) =>
        new(null, values, null, shape, dtype, constant: false);

    /// <summary>A graph-owned tensor with host copies for small values (so ops read attributes-like inputs without syncs).</summary>
    public static OnnxValue Constant(Tensor tensor, long[]? ints, double[]? reals) =>
        new(tensor, ints, reals, tensor.shape, tensor.dtype, constant: true);

    /// <summary>The device tensor (made from the host copy on first use, on <paramref name="device"/>).</summary>
    public Tensor Tensor(Device device)
    {
        if (_tensor is not null) return _tensor;
        if (Ints is null) throw new InvalidOperationException("value has neither a tensor nor host data");
        var t = tensor(Ints, Shape, ScalarType.Int64, device);
        _tensor = DType == ScalarType.Int64 ? t : ConvertAndDispose(t, DType);
        // Owned by this value (released after its last reader), not by whichever node's scope first asked for it.
        _tensor.DetachFromDisposeScope();
        return _tensor;
    }

    /// <summary>The value's integers on the host (read from the device if there is no host copy).</summary>
    public long[] ReadInts()
    {
        if (Ints is not null) return Ints;
        if (_tensor is null) throw new InvalidOperationException("value has neither a tensor nor host data");
        using var cpu = _tensor.to(ScalarType.Int64).cpu();
        return cpu.data<long>().ToArray();
    }

    public double[] ReadReals()
    {
        if (Reals is not null) return Reals;
        if (Ints is not null) return Ints.Select(v => (double)v).ToArray();
        using var cpu = _tensor!.to(ScalarType.Float64).cpu();
        return cpu.data<double>().ToArray();
    }

    /// <summary>Takes a node's output out of the node's dispose scope: the executor owns it from here.</summary>
    public void DetachFromScope() => _tensor?.DetachFromDisposeScope();

    /// <summary>The result of a node run on the CPU for shape arithmetic: small integers stay on the host,
    /// anything else moves to <paramref name="device"/>.</summary>
    public OnnxValue ToHostOr(Device device)
    {
        if (Ints is not null || _tensor is null) return this;
        if (!IsFloat && Count <= 1024)
        {
            using var cpu = _tensor.to(ScalarType.Int64).cpu();
            var host = HostInts(cpu.data<long>().ToArray(), Shape, DType);
            Release();
            return host;
        }
        if (_tensor.device.type == device.type && _tensor.device.index == device.index) return this;
        var moved = Of(_tensor.to(device));
        moved.DetachFromScope();
        Release();
        return moved;
    }

    /// <summary>Releases a per-pass tensor (constants are kept).</summary>
    public void Release()
    {
        if (IsConstant) return;
        _tensor?.Dispose();
        _tensor = null;
    }

    private static Tensor ConvertAndDispose(Tensor t, ScalarType dtype)
    {
        var converted = t.to(dtype);
        t.Dispose();
        return converted;
    }
}
