using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Core.Formats;

/// <summary>
/// Tensors read from a file, in file order, with the file's string metadata. Owns the tensors: dispose it
/// (or take tensors out with <see cref="Detach"/>) when done.
/// </summary>
public sealed class StateDict : IDisposable
{
    private readonly List<KeyValuePair<string, Tensor>> _entries;
    private readonly Dictionary<string, Tensor> _byName;

    public StateDict(IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        _entries = tensors.ToList();
        _byName = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, tensor) in _entries)
            if (!_byName.TryAdd(name, tensor))
                throw new ArgumentException($"duplicate tensor name '{name}'", nameof(tensors));
        Metadata = metadata ?? new Dictionary<string, string>();
    }

    /// <summary>Tensor names in file order.</summary>
    public IReadOnlyList<string> Names => _entries.Select(e => e.Key).ToList();
    public IReadOnlyDictionary<string, Tensor> Tensors => _byName;
    public IReadOnlyList<KeyValuePair<string, Tensor>> Entries => _entries;
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public int Count => _entries.Count;

    public Tensor this[string name] => _byName[name];

    public void Deconstruct(out IReadOnlyDictionary<string, Tensor> tensors, out IReadOnlyDictionary<string, string> metadata)
    {
        tensors = _byName;
        metadata = Metadata;
    }

    /// <summary>Hands the tensors to the caller, who then owns and disposes them.</summary>
    public IReadOnlyList<KeyValuePair<string, Tensor>> Detach()
    {
        var result = _entries.ToList();
        _entries.Clear();
        _byName.Clear();
        return result;
    }

    public void Dispose()
    {
        foreach (var (_, t) in _entries) t.Dispose();
        _entries.Clear();
        _byName.Clear();
    }
}

/// <summary>Element types that model files carry, with their safetensors and PyTorch storage names.</summary>
public static class ElementTypes
{
    private static readonly (string SafeTensors, ScalarType Type, int Size)[] Table =
    [
        ("F64", ScalarType.Float64, 8),
        ("F32", ScalarType.Float32, 4),
        ("F16", ScalarType.Float16, 2),
        ("BF16", ScalarType.BFloat16, 2),
        ("I64", ScalarType.Int64, 8),
        ("I32", ScalarType.Int32, 4),
        ("I16", ScalarType.Int16, 2),
        ("I8", ScalarType.Int8, 1),
        ("U8", ScalarType.Byte, 1),
        ("BOOL", ScalarType.Bool, 1),
    ];

    public static bool TryFromSafeTensors(string name, out ScalarType type, out int size)
    {
        foreach (var row in Table)
            if (row.SafeTensors == name) { type = row.Type; size = row.Size; return true; }
        type = default; size = 0;
        return false;
    }

    public static string SafeTensorsName(ScalarType type)
    {
        foreach (var row in Table)
            if (row.Type == type) return row.SafeTensors;
        throw new NotSupportedException($"element type {type} has no safetensors name here");
    }

    public static int Size(ScalarType type)
    {
        foreach (var row in Table)
            if (row.Type == type) return row.Size;
        throw new NotSupportedException($"element type {type} is not supported in model files");
    }

    public static string Names => string.Join(", ", Table.Select(r => r.SafeTensors));
}

/// <summary>Moving raw little-endian bytes in and out of CPU tensors without per-element work.</summary>
public static class TensorBytes
{
    public static void EnsureLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("model files are little-endian; big-endian hosts are not supported");
    }

    /// <summary>A new CPU tensor of the given type and shape holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromBytes(ReadOnlySpan<byte> data, ScalarType type, long[] shape)
    {
        EnsureLittleEndian();
        var t = empty(shape, type, CPU);
        if (data.Length > 0) data.CopyTo(t.bytes);
        return t;
    }

    /// <summary>The bytes of a tensor in row-major order (copied to the CPU and made contiguous first).</summary>
    public static byte[] ToBytes(Tensor tensor)
    {
        EnsureLittleEndian();
        using var cpu = tensor.detach().cpu().contiguous();
        return cpu.bytes.ToArray();
    }
}
