using Robustness.Core;
using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Formats.Onnx;

/// <summary>
/// ONNX <c>TensorProto</c> → TorchSharp tensor, checked before anything is allocated: a data type we read, sane
/// dimensions, and exactly as many stored values (inline or in an external file inside the model's folder) as the
/// shape says. Floating-point data becomes float32 (the precision we execute in); integers become int64.
/// </summary>
internal static class OnnxTensors
{
    /// <summary>Far above any real classifier tensor (2^31 float32 values = 8 GiB), and below absurd claims.</summary>
    public const long MaxElements = 1L << 31;
    /// <summary>Values up to this count also get a host copy (shape inputs, scalars, small constants).</summary>
    private const long HostCopyLimit = 1024;

    private static readonly Dictionary<int, (string Name, int Size)> Types = new()
    {
        [(int)TensorProto.Types.DataType.Float] = ("float32", 4),
        [(int)TensorProto.Types.DataType.Double] = ("float64", 8),
        [(int)TensorProto.Types.DataType.Float16] = ("float16", 2),
        [(int)TensorProto.Types.DataType.Bfloat16] = ("bfloat16", 2),
        [(int)TensorProto.Types.DataType.Int64] = ("int64", 8),
        [(int)TensorProto.Types.DataType.Int32] = ("int32", 4),
        [(int)TensorProto.Types.DataType.Int16] = ("int16", 2),
        [(int)TensorProto.Types.DataType.Int8] = ("int8", 1),
        [(int)TensorProto.Types.DataType.Uint8] = ("uint8", 1),
        [(int)TensorProto.Types.DataType.Bool] = ("bool", 1),
    };

    public static bool IsKnownType(int dataType) => Types.ContainsKey(dataType);

    public static bool IsFloatType(int dataType) => dataType is (int)TensorProto.Types.DataType.Float or (int)TensorProto.Types.DataType.Double
        or (int)TensorProto.Types.DataType.Float16 or (int)TensorProto.Types.DataType.Bfloat16;

    public static string TypeName(int dataType) => Types.TryGetValue(dataType, out var t) ? t.Name : $"data type {dataType}";

    /// <summary>Number of elements for <paramref name="dims"/>, refusing negative or absurd dimensions.</summary>
    public static long ElementCount(IReadOnlyList<long> dims, string what, OnnxFile file)
    {
        long count = 1;
        foreach (var d in dims)
        {
            if (d < 0) throw new ModelFormatException($"{file.Path}: {what} has a negative dimension ({Dims(dims)})");
            if (d != 0 && count > MaxElements / d)
                throw new ModelFormatException($"{file.Path}: {what} has dimensions {Dims(dims)}, more than {MaxElements} elements");
            count *= d;
        }
        return count;
    }

    /// <summary>Reads a tensor as a graph constant on <paramref name="device"/>; <paramref name="what"/> names it in messages.</summary>
    public static OnnxValue Read(TensorProto t, string what, OnnxFile file, Device device)
    {
        if (!t.HasDataType || !Types.TryGetValue(t.DataType, out var type))
            throw new ModelFormatException($"{file.Path}: {what} has {(t.HasDataType ? $"an unknown or unsupported data type {t.DataType}" : "no data type")}");
        if (t.Segment is not null) throw new ModelFormatException($"{file.Path}: {what} is segmented, which we do not read");
        var dims = t.Dims.ToArray();
        long count = ElementCount(dims, what, file);
        long bytes = count * type.Size;
        if (bytes > Array.MaxLength)
            throw new ModelFormatException($"{file.Path}: {what} has dimensions {Dims(dims)}, {bytes} bytes, above the 2 GiB we read per tensor");

        bool external = t.HasDataLocation && t.DataLocation == TensorProto.Types.DataLocation.External;
        byte[]? raw = external ? ReadExternal(t, what, bytes, file) : t.HasRawData ? t.RawData.ToByteArray() : null;
        if (raw is not null && raw.LongLength != bytes)
            throw new ModelFormatException($"{file.Path}: {what} has shape {Dims(dims)} ({type.Name}, {bytes} bytes) but stores {raw.LongLength} bytes");
        if (raw is null)
        {
            long stored = StoredCount(t, type.Name);
            if (stored != count)
                throw new ModelFormatException($"{file.Path}: {what} has shape {Dims(dims)} ({count} values) but stores {stored}");
        }

        bool isFloat = IsFloatType(t.DataType);
        long[]? ints = null;
        double[]? reals = null;
        Tensor result;
        if (isFloat)
        {
            var values = raw is not null ? FloatsFromRaw(raw, t.DataType, count) : FloatsFromFields(t, count);
            result = tensor(values, dims, ScalarType.Float32, device);
            if (count <= HostCopyLimit) reals = values.Select(v => (double)v).ToArray();
        }
        else
        {
            var values = raw is not null ? IntsFromRaw(raw, t.DataType, count) : IntsFromFields(t, count);
            result = tensor(values, dims, ScalarType.Int64, device);
            if (t.DataType == (int)TensorProto.Types.DataType.Bool)
            {
                var b = result.to(ScalarType.Bool);
                result.Dispose();
                result = b;
            }
            if (count <= HostCopyLimit) ints = values;
        }
        return OnnxValue.Constant(result, ints, reals);
    }

    /// <summary>The bytes of an external initializer (same checks as <see cref="Read"/>), for handing the graph to a
    /// reference runtime with its data inline, so that it opens no file itself.</summary>
    public static byte[] ExternalBytes(TensorProto t, OnnxFile file)
    {
        var what = $"initializer '{t.Name}'";
        if (!t.HasDataType || !Types.TryGetValue(t.DataType, out var type))
            throw new ModelFormatException($"{file.Path}: {what} has an unknown or unsupported data type {t.DataType}");
        long bytes = ElementCount(t.Dims.ToArray(), what, file) * type.Size;
        return ReadExternal(t, what, bytes, file);
    }

    private static long StoredCount(TensorProto t, string typeName) => t.DataType switch
    {
        (int)TensorProto.Types.DataType.Float => t.FloatData.Count,
        (int)TensorProto.Types.DataType.Double => t.DoubleData.Count,
        (int)TensorProto.Types.DataType.Int64 => t.Int64Data.Count,
        _ => t.Int32Data.Count, // int32, int16, int8, uint8, bool, float16, bfloat16 all live in int32_data
    };

    private static byte[] ReadExternal(TensorProto t, string what, long bytes, OnnxFile file)
    {
        string? location = null;
        long offset = 0, length = -1;
        foreach (var entry in t.ExternalData)
        {
            switch (entry.Key)
            {
                case "location": location = entry.Value; break;
                case "offset": offset = ParseLong(entry.Value, "offset", what, file); break;
                case "length": length = ParseLong(entry.Value, "length", what, file); break;
            }
        }
        if (location is null) throw new ModelFormatException($"{file.Path}: {what} says its data is external but gives no location");
        var path = file.ResolveExternal(location, t.Name);
        if (length < 0) length = bytes;
        if (length != bytes)
            throw new ModelFormatException($"{file.Path}: {what} needs {bytes} bytes but its external data is {length} bytes long");
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (offset < 0 || offset > stream.Length - length)
                throw new ModelFormatException($"{file.Path}: {what} reads bytes {offset}..{offset + length} of '{location}', which has {stream.Length}");
            var data = new byte[length];
            stream.Position = offset;
            stream.ReadExactly(data);
            return data;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        { throw new ModelFormatException($"{file.Path}: {what} keeps its data in '{location}', which does not exist"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new ModelFormatException($"{file.Path}: cannot read external data '{location}' of {what} ({e.Message})"); }
    }

    private static long ParseLong(string text, string key, string what, OnnxFile file) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v
            : throw new ModelFormatException($"{file.Path}: {what} has external-data {key} '{text}', not a non-negative integer");

    private static float[] FloatsFromRaw(byte[] raw, int dataType, long count)
    {
        var result = new float[count];
        switch (dataType)
        {
            case (int)TensorProto.Types.DataType.Float:
                MemoryMarshal.Cast<byte, float>(raw).CopyTo(result);
                break;
            case (int)TensorProto.Types.DataType.Double:
                for (long i = 0; i < count; i++) result[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(raw.AsSpan((int)(i * 8)));
                break;
            case (int)TensorProto.Types.DataType.Float16:
                for (long i = 0; i < count; i++) result[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(raw.AsSpan((int)(i * 2)));
                break;
            default: // bfloat16: the top half of a float32
                for (long i = 0; i < count; i++) result[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan((int)(i * 2))) << 16);
                break;
        }
        return result;
    }

    private static float[] FloatsFromFields(TensorProto t, long count) => t.DataType switch
    {
        (int)TensorProto.Types.DataType.Float => t.FloatData.ToArray(),
        (int)TensorProto.Types.DataType.Double => t.DoubleData.Select(d => (float)d).ToArray(),
        (int)TensorProto.Types.DataType.Float16 => t.Int32Data.Select(b => (float)BitConverter.UInt16BitsToHalf((ushort)b)).ToArray(),
        _ => t.Int32Data.Select(b => BitConverter.Int32BitsToSingle((b & 0xFFFF) << 16)).ToArray(),
    };

    private static long[] IntsFromRaw(byte[] raw, int dataType, long count)
    {
        var result = new long[count];
        var span = raw.AsSpan();
        for (long i = 0; i < count; i++)
        {
            result[i] = dataType switch
            {
                (int)TensorProto.Types.DataType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(span[(int)(i * 8)..]),
                (int)TensorProto.Types.DataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(span[(int)(i * 4)..]),
                (int)TensorProto.Types.DataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(span[(int)(i * 2)..]),
                (int)TensorProto.Types.DataType.Int8 => (sbyte)span[(int)i],
                (int)TensorProto.Types.DataType.Bool => span[(int)i] != 0 ? 1 : 0,
                _ => span[(int)i], // uint8
            };
        }
        return result;
    }

    private static long[] IntsFromFields(TensorProto t, long count) => t.DataType switch
    {
        (int)TensorProto.Types.DataType.Int64 => t.Int64Data.ToArray(),
        (int)TensorProto.Types.DataType.Bool => t.Int32Data.Select(v => v != 0 ? 1L : 0L).ToArray(),
        _ => t.Int32Data.Select(v => (long)v).ToArray(),
    };

    public static string Dims(IReadOnlyList<long> dims) => "[" + string.Join(",", dims) + "]";
}
