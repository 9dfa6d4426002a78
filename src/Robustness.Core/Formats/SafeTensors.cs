using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Robustness.Core;

using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Core.Formats;

/// <summary>
/// The safetensors format: an 8-byte little-endian header length, a JSON header mapping tensor names to
/// <c>{dtype, shape, data_offsets}</c> (plus an optional <c>__metadata__</c> string map), then the raw little-endian
/// tensor bytes. Reading validates everything the header claims before allocating anything it sizes, so a
/// hostile or damaged file fails with a <see cref="ModelFormatException"/> naming the file.
/// </summary>
public static class SafeTensors
{
    /// <summary>Headers above this size are refused before being read (the reference implementation uses the same limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public const string MetadataKey = "__metadata__";

    public static StateDict Read(string path)
    {
        FileStream stream;
        try { stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        { throw new InputException($"{path}: file not found"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new InputException($"{path}: cannot read ({e.Message})"); }
        using (stream) return Read(stream, path);
    }

    /// <summary>Reads from a seekable stream; <paramref name="name"/> is the file name used in error messages.</summary>
    public static StateDict Read(Stream stream, string name)
    {
        TensorBytes.EnsureLittleEndian();
        if (!stream.CanSeek) throw new ArgumentException("safetensors reading needs a seekable stream", nameof(stream));
        long fileLength = stream.Length;
        if (fileLength < 8) throw Error(name, $"file is {fileLength} bytes, shorter than the 8-byte header length");

        Span<byte> lengthBytes = stackalloc byte[8];
        stream.Position = 0;
        ReadExactly(stream, lengthBytes, name);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        // A safetensors header is a JSON object: anything else after the length is some other kind of file.
        int first = fileLength > 8 ? stream.ReadByte() : -1;
        stream.Position = 8;
        if (first != '{')
            throw Error(name, "not a safetensors file (expected an 8-byte header length followed by a JSON header)");
        if (headerLength > MaxHeaderBytes)
            throw Error(name, $"header length {headerLength} exceeds the {MaxHeaderBytes / 1_000_000} MB limit");
        if ((long)headerLength > fileLength - 8)
            throw Error(name, $"header length {headerLength} is larger than the file ({fileLength} bytes)");
        if (headerLength < 2) throw Error(name, $"header length {headerLength} is too short for a JSON object");

        var headerBytes = new byte[headerLength];
        ReadExactly(stream, headerBytes, name);
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        var (entries, metadata) = ParseHeader(headerBytes, dataLength, name);

        // The data region must be covered exactly: no overlaps, no holes, nothing after the last tensor.
        var byOffset = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long expected = 0;
        foreach (var e in byOffset)
        {
            if (e.Begin < expected)
                throw Error(name, $"tensor '{e.Name}' data_offsets [{e.Begin},{e.End}] overlap another tensor's data");
            if (e.Begin > expected)
                throw Error(name, $"tensor '{e.Name}' data_offsets start at {e.Begin}, leaving a gap after byte {expected}");
            expected = e.End;
        }
        if (expected != dataLength)
            throw Error(name, $"tensors cover {expected} data bytes but the file has {dataLength} after the header");

        var tensors = new List<KeyValuePair<string, Tensor>>(entries.Count);
        try
        {
            foreach (var e in entries)
            {
                // Read straight into the tensor's memory: one copy from the file, no intermediate buffer.
                var tensor = empty(e.Shape, e.Type, CPU);
                tensors.Add(new(e.Name, tensor));
                if (e.End == e.Begin) continue;
                var target = tensor.bytes;
                stream.Position = dataStart + e.Begin;
                ReadExactly(stream, target, name);
                if (e.Type == ScalarType.Bool && target.IndexOfAnyExceptInRange((byte)0, (byte)1) is var bad and >= 0)
                    throw Error(name, $"tensor '{e.Name}' is BOOL but holds byte value {target[bad]}");
            }
            return new StateDict(tensors, metadata);
        }
        catch
        {
            foreach (var (_, t) in tensors) t.Dispose();
            throw;
        }
    }

    private sealed record Entry(string Name, ScalarType Type, long[] Shape, long Begin, long End);

    private static (List<Entry>, Dictionary<string, string>) ParseHeader(byte[] header, long dataLength, string name)
    {
        if (!System.Text.Unicode.Utf8.IsValid(header)) throw Error(name, "header is not valid UTF-8");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (JsonException e) { throw Error(name, $"header is not valid JSON ({FirstLine(e.Message)})"); }
        catch (ArgumentException e) { throw Error(name, $"header is not valid JSON ({FirstLine(e.Message)})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw Error(name, $"header is a JSON {doc.RootElement.ValueKind}, not an object");
            var entries = new List<Entry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw Error(name, $"header names '{property.Name}' twice");
                if (property.Name == MetadataKey)
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                        throw Error(name, $"{MetadataKey} is a JSON {property.Value.ValueKind}, not an object of strings");
                    foreach (var m in property.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw Error(name, $"{MetadataKey} value '{m.Name}' is a JSON {m.Value.ValueKind}, not a string");
                        if (!metadata.TryAdd(m.Name, m.Value.GetString()!))
                            throw Error(name, $"{MetadataKey} names '{m.Name}' twice");
                    }
                    continue;
                }
                entries.Add(ParseEntry(property, dataLength, name));
            }
            return (entries, metadata);
        }
    }

    private static Entry ParseEntry(JsonProperty property, long dataLength, string name)
    {
        var tensorName = property.Name;
        if (tensorName.Length == 0) throw Error(name, "header has a tensor with an empty name");
        var v = property.Value;
        if (v.ValueKind != JsonValueKind.Object)
            throw Error(name, $"tensor '{tensorName}' is a JSON {v.ValueKind}, not an object");
        if (!v.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Error(name, $"tensor '{tensorName}' has no dtype string");
        var dtype = dtypeElement.GetString()!;
        if (!ElementTypes.TryFromSafeTensors(dtype, out var type, out var elementSize))
            throw Error(name, $"tensor '{tensorName}' has unsupported dtype '{dtype}' (supported: {ElementTypes.Names})");

        if (!v.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Error(name, $"tensor '{tensorName}' has no shape array");
        var shape = new long[shapeElement.GetArrayLength()];
        if (shape.Length > 16) throw Error(name, $"tensor '{tensorName}' has {shape.Length} dimensions (at most 16 supported)");
        int i = 0;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var size) || size < 0)
                throw Error(name, $"tensor '{tensorName}' shape has an entry that is not a non-negative integer");
            shape[i++] = size;
        }

        if (!v.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw Error(name, $"tensor '{tensorName}' has no data_offsets pair");
        var pair = offsets.EnumerateArray().ToArray();
        if (pair[0].ValueKind != JsonValueKind.Number || !pair[0].TryGetInt64(out var begin) || begin < 0 ||
            pair[1].ValueKind != JsonValueKind.Number || !pair[1].TryGetInt64(out var end) || end < 0)
            throw Error(name, $"tensor '{tensorName}' data_offsets are not non-negative integers");
        if (end < begin) throw Error(name, $"tensor '{tensorName}' data_offsets [{begin},{end}] end before they begin");
        if (end > dataLength)
            throw Error(name, $"tensor '{tensorName}' data_offsets [{begin},{end}] run past the end of the data ({dataLength} bytes)");

        long needed;
        try { needed = checked(shape.Aggregate(1L, (a, b) => a * b) * elementSize); }
        catch (OverflowException) { throw Error(name, $"tensor '{tensorName}' shape [{string.Join(",", shape)}] is too large"); }
        if (needed != end - begin)
            throw Error(name, $"tensor '{tensorName}' has {end - begin} data bytes but {dtype} × [{string.Join(",", shape)}] needs {needed}");
        if (needed > int.MaxValue)
            throw Error(name, $"tensor '{tensorName}' has {needed} bytes; tensors above 2 GB are not supported");
        return new Entry(tensorName, type, shape, begin, end);
    }

    /// <summary>Writes tensors (in the given order) and metadata atomically.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        AtomicFile.Write(path, stream => Write(stream, list, metadata));
    }

    public static void Write(Stream stream, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        TensorBytes.EnsureLittleEndian();
        var blobs = new List<(string Name, string Dtype, long[] Shape, byte[] Data)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            if (name.Length == 0 || name == MetadataKey) throw new ArgumentException($"invalid tensor name '{name}'", nameof(tensors));
            if (!names.Add(name)) throw new ArgumentException($"duplicate tensor name '{name}'", nameof(tensors));
            blobs.Add((name, ElementTypes.SafeTensorsName(tensor.dtype), tensor.shape, TensorBytes.ToBytes(tensor)));
        }

        using var headerStream = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerStream))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, dtype, shape, data) in blobs)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (var d in shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + data.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += data.Length;
            }
            json.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so the data starts aligned, as the reference writer does.
        while (headerStream.Length % 8 != 0) headerStream.WriteByte((byte)' ');

        Span<byte> length = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)headerStream.Length);
        stream.Write(length);
        headerStream.Position = 0;
        headerStream.CopyTo(stream);
        foreach (var blob in blobs) stream.Write(blob.Data);
    }

    private static void ReadExactly(Stream stream, Span<byte> buffer, string name)
    {
        try { stream.ReadExactly(buffer); }
        catch (EndOfStreamException) { throw Error(name, "file ends early"); }
    }

    private static string FirstLine(string message) => message.Split('\n')[0].Trim();

    private static ModelFormatException Error(string name, string what) => new($"{name}: {what}");
}
