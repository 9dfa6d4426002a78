using Robustness.Core.Formats;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Formats;

/// <summary>
/// PyTorch's <c>torch.save</c> zip format (PyTorch ≥ 1.6): <c>&lt;archive&gt;/data.pkl</c> is a pickle of the state
/// dict whose tensors point, through persistent ids, at raw little-endian storages <c>&lt;archive&gt;/data/&lt;key&gt;</c>.
/// Reading goes through <see cref="RestrictedUnpickler"/>, so a file that tries to run code is refused.
/// </summary>
public static class PyTorchCheckpoint
{
    /// <summary>data.pkl of a state dict is ~100 bytes per tensor; anything near this size is not a state dict.</summary>
    private const long MaxPickleBytes = 64L << 20;

    /// <summary>Deflate cannot expand more than ~1032:1, so a storage claiming more than this is lying.</summary>
    private const long MaxExpansion = 1100;

    /// <summary>Wrapper keys under which training scripts commonly nest the state dict.</summary>
    private static readonly string[] WrapperKeys = ["state_dict", "model_state_dict", "model", "net", "network"];

    public static StateDict Read(string path)
    {
        FileStream stream;
        try { stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        { throw new InputException($"{path}: file not found"); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new InputException($"{path}: cannot read ({e.Message})"); }
        using (stream) return Read(stream, path);
    }

    /// <summary>Reads a state dict from a seekable stream; <paramref name="name"/> names it in error messages.</summary>
    public static StateDict Read(Stream stream, string name)
    {
        TensorBytes.EnsureLittleEndian();
        Span<byte> magic = stackalloc byte[4];
        stream.Position = 0;
        int got = stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        if (got < 4 || magic[0] != (byte)'P' || magic[1] != (byte)'K')
        {
            var legacy = got >= 2 && magic[0] == 0x80 && magic[1] <= 5;
            throw new ModelFormatException(legacy
                ? $"{name}: legacy (pre-1.6) torch.save format is not supported; re-save it with a current PyTorch"
                : $"{name}: not a PyTorch zip checkpoint (torch.save writes a zip file)");
        }
        stream.Position = 0;
        long fileLength = stream.Length;
        try
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            return ReadArchive(zip, name, fileLength);
        }
        catch (InvalidDataException e) { throw new ModelFormatException($"{name}: damaged zip archive ({e.Message})"); }
        catch (NotSupportedException e) { throw new ModelFormatException($"{name}: unsupported zip archive ({e.Message})"); }
        catch (EndOfStreamException) { throw new ModelFormatException($"{name}: file ends early"); }
        catch (IOException e) when (e is not FileNotFoundException) { throw new ModelFormatException($"{name}: damaged zip archive ({e.Message})"); }
    }

    private static StateDict ReadArchive(ZipArchive zip, string name, long fileLength)
    {
        var entries = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        foreach (var entry in zip.Entries) entries.TryAdd(entry.FullName, entry);

        var pickles = entries.Keys.Where(k => k.EndsWith("/data.pkl", StringComparison.Ordinal) && k.Count(c => c == '/') == 1).ToList();
        if (entries.Keys.Any(k => k.EndsWith("/constants.pkl", StringComparison.Ordinal)) || entries.Keys.Any(k => k.Contains("/code/", StringComparison.Ordinal)))
            throw new ModelFormatException($"{name}: this is a TorchScript archive (torch.jit.save), not a state dict; ModelLoader.Load (robust --model) loads it through libtorch");
        if (pickles.Count != 1)
            throw new ModelFormatException($"{name}: zip has {(pickles.Count == 0 ? "no" : pickles.Count.ToString())} '<archive>/data.pkl' entries; not a torch.save checkpoint");
        var prefix = pickles[0][..^"data.pkl".Length];
        var pickleEntry = entries[pickles[0]];
        var pickle = ReadEntry(pickleEntry, MaxPickleBytes, fileLength, name);

        var calls = new TensorCalls(entries, prefix, name, fileLength);
        try
        {
            var root = new RestrictedUnpickler(pickle, name, calls).Load();
            var dict = Unwrap(root, name);
            var result = new List<KeyValuePair<string, Tensor>>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (key, value) in dict.Items)
            {
                if (key is not string k) throw new ModelFormatException($"{name}: state dict has a {RestrictedUnpickler.Describe(key)} key; expected names");
                if (value is not Tensor t)
                    throw new ModelFormatException($"{name}: state dict entry '{k}' is a {RestrictedUnpickler.Describe(value)}, not a tensor");
                if (!seen.Add(k)) throw new ModelFormatException($"{name}: state dict names '{k}' twice");
                result.Add(new(k, t));
            }
            // nn.DataParallel saves every key under "module.".
            if (result.Count > 0 && result.All(e => e.Key.StartsWith("module.", StringComparison.Ordinal)))
                result = result.Select(e => new KeyValuePair<string, Tensor>(e.Key["module.".Length..], e.Value)).ToList();
            calls.DisposeAllExcept(result.Select(e => e.Value));
            return new StateDict(result);
        }
        catch
        {
            calls.DisposeAllExcept([]);
            throw;
        }
    }

    private static PickleDict Unwrap(object? root, string name)
    {
        if (root is not PickleDict dict)
            throw new ModelFormatException($"{name}: the checkpoint holds a {RestrictedUnpickler.Describe(root)}, not a state dict");
        if (dict.Items.All(e => e.Value is Tensor)) return dict;
        foreach (var key in WrapperKeys)
            if (dict.TryGet(key, out var inner) && inner is PickleDict nested && nested.Items.All(e => e.Value is Tensor))
                return nested;
        return dict; // reports the first non-tensor entry
    }

    private static byte[] ReadEntry(ZipArchiveEntry entry, long limit, long fileLength, string name)
    {
        long length = entry.Length;
        if (length > limit) throw new ModelFormatException($"{name}: '{entry.FullName}' is {length} bytes, above the {limit}-byte limit");
        CheckExpansion(entry, length, fileLength, name);
        var bytes = new byte[length];
        using var s = entry.Open();
        s.ReadExactly(bytes);
        return bytes;
    }

    private static void CheckExpansion(ZipArchiveEntry entry, long needed, long fileLength, string name)
    {
        if (needed > entry.CompressedLength * MaxExpansion + 4096 || entry.CompressedLength > fileLength)
            throw new ModelFormatException($"{name}: '{entry.FullName}' claims {needed} bytes from {entry.CompressedLength} stored bytes");
    }

    /// <summary>Storage types by their pickled class name: element type and size.</summary>
    private static readonly Dictionary<string, ScalarType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["torch.FloatStorage"] = ScalarType.Float32,
        ["torch.DoubleStorage"] = ScalarType.Float64,
        ["torch.HalfStorage"] = ScalarType.Float16,
        ["torch.BFloat16Storage"] = ScalarType.BFloat16,
        ["torch.LongStorage"] = ScalarType.Int64,
        ["torch.IntStorage"] = ScalarType.Int32,
        ["torch.ShortStorage"] = ScalarType.Int16,
        ["torch.CharStorage"] = ScalarType.Int8,
        ["torch.ByteStorage"] = ScalarType.Byte,
        ["torch.BoolStorage"] = ScalarType.Bool,
        ["torch.storage.UntypedStorage"] = ScalarType.Byte,
    };

    /// <summary>Resolves storages (persistent ids) and the allowed calls into tensors.</summary>
    private sealed class TensorCalls(Dictionary<string, ZipArchiveEntry> entries, string prefix, string name, long fileLength)
        : RestrictedUnpickler.IPickleCalls
    {
        private readonly Dictionary<string, Tensor> _storages = new(StringComparer.Ordinal);
        private readonly List<Tensor> _created = [];

        public object PersistentLoad(object? persistentId)
        {
            // ('storage', storage_type, key, location, numel)
            if (persistentId is not PickleTuple { Items: ["storage", PickleGlobal type, string key, string, long numel] })
                throw Error($"unexpected persistent id {RestrictedUnpickler.Describe(persistentId)}; expected ('storage', type, key, location, numel)");
            if (!StorageTypes.TryGetValue(type.FullName, out var dtype)) throw Error($"persistent id names {type.FullName}, not a storage type");
            if (key.Length == 0 || key.Length > 64 || !key.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
                throw Error("storage key is not a plain name");
            if (_storages.TryGetValue(key, out var cached))
            {
                if (cached.dtype != dtype) throw Error($"storage '{key}' is used with two element types");
                return cached;
            }
            if (!entries.TryGetValue($"{prefix}data/{key}", out var entry)) throw Error($"storage '{key}' is missing from the archive");
            int size = ElementTypes.Size(dtype);
            if (numel < 0 || numel > int.MaxValue / size) throw Error($"storage '{key}' claims {numel} elements");
            long bytes = numel * size;
            if (entry.Length < bytes) throw Error($"storage '{key}' has {entry.Length} bytes but {numel} × {dtype} needs {bytes}");
            CheckExpansion(entry, bytes, fileLength, name);

            var storage = empty([numel], dtype, CPU);
            _storages[key] = storage;
            _created.Add(storage);
            if (bytes > 0)
            {
                using var s = entry.Open();
                try { s.ReadExactly(storage.bytes); }
                catch (EndOfStreamException) { throw Error($"storage '{key}' ends early"); }
                if (dtype == ScalarType.Bool && storage.bytes.IndexOfAnyExceptInRange((byte)0, (byte)1) >= 0)
                    throw Error($"storage '{key}' is bool but holds bytes other than 0 and 1");
            }
            return storage;
        }

        public object Call(PickleGlobal function, object?[] args)
        {
            switch (function.FullName)
            {
                case "collections.OrderedDict":
                    {
                        var dict = new PickleDict();
                        if (args.Length == 0) return dict;
                        if (args is [List<object?> pairs])
                        {
                            foreach (var pair in pairs)
                            {
                                if (pair is not PickleTuple { Items: [var k, var v] }) throw Error("OrderedDict argument is not a list of pairs");
                                dict.Set(k, v);
                            }
                            return dict;
                        }
                        throw Error("OrderedDict is called with unexpected arguments");
                    }
                case "torch._utils._rebuild_tensor_v2":
                    {
                        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                        if (args.Length is < 4 or > 7 || args[0] is not Tensor storage || args[1] is not long offset ||
                            args[2] is not PickleTuple size || args[3] is not PickleTuple stride)
                            throw Error("_rebuild_tensor_v2 is called with unexpected arguments");
                        return Rebuild(storage, offset, Longs(size), Longs(stride));
                    }
                case "torch._utils._rebuild_parameter":
                    {
                        if (args.Length is < 1 or > 3 || args[0] is not Tensor t) throw Error("_rebuild_parameter is called with unexpected arguments");
                        return t;
                    }
                default:
                    throw Error($"{function.FullName} cannot be called");
            }
        }

        private long[] Longs(PickleTuple tuple)
        {
            if (tuple.Items.Length > 16) throw Error($"tensor has {tuple.Items.Length} dimensions (at most 16 supported)");
            var result = new long[tuple.Items.Length];
            for (int i = 0; i < result.Length; i++)
                result[i] = tuple.Items[i] is long v && v >= 0 ? v : throw Error("tensor size or stride is not a non-negative integer");
            return result;
        }

        private Tensor Rebuild(Tensor storage, long offset, long[] size, long[] stride)
        {
            if (size.Length != stride.Length) throw Error($"tensor has {size.Length} sizes but {stride.Length} strides");
            if (offset < 0) throw Error("tensor has a negative storage offset");
            long storageNumel = storage.shape[0];
            bool empty = size.Any(s => s == 0);
            if (!empty)
            {
                try
                {
                    long last = offset;
                    for (int i = 0; i < size.Length; i++) last = checked(last + (size[i] - 1) * stride[i]);
                    if (last >= storageNumel)
                        throw Error($"tensor of shape [{string.Join(",", size)}] reaches element {last} of a {storageNumel}-element storage");
                }
                catch (OverflowException) { throw Error($"tensor of shape [{string.Join(",", size)}] has overflowing strides"); }
            }
            else if (offset > storageNumel) throw Error($"tensor offset {offset} is past the end of a {storageNumel}-element storage");

            Tensor result;
            if (empty)
                result = torch.empty(size, storage.dtype, CPU);
            else
            {
                using var view = storage.as_strided(size, stride, offset);
                result = view.contiguous().clone();
            }
            _created.Add(result);
            return result;
        }

        public void DisposeAllExcept(IEnumerable<Tensor> keep)
        {
            var kept = new HashSet<Tensor>(keep, ReferenceEqualityComparer.Instance);
            foreach (var t in _created)
                if (!kept.Contains(t)) t.Dispose();
            _created.Clear();
            _storages.Clear();
        }

        private ModelFormatException Error(string what) => new($"{name}: {what}");
    }

    /// <summary>
    /// Writes a state dict as <c>torch.save</c> does (zip, protocol-2 pickle of an OrderedDict of
    /// <c>_rebuild_tensor_v2</c> calls, one raw storage per tensor), atomically. PyTorch loads it with
    /// <c>torch.load(path)</c>, including <c>weights_only=True</c>.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var list = tensors.ToList();
        var archive = ArchiveName(path);
        AtomicFile.Write(path, stream => Write(stream, list, archive));
    }

    public static void Write(Stream stream, IEnumerable<KeyValuePair<string, Tensor>> tensors, string archive = "archive")
    {
        TensorBytes.EnsureLittleEndian();
        var list = tensors.ToList();
        var pickle = new PickleWriter();
        pickle.Proto(2);
        pickle.Global("collections", "OrderedDict");
        pickle.EmptyTuple();
        pickle.Reduce();
        pickle.Mark();
        for (int i = 0; i < list.Count; i++)
        {
            var (key, tensor) = list[i];
            pickle.Unicode(key);
            pickle.Global("torch._utils", "_rebuild_tensor_v2");
            pickle.Mark();
            {
                pickle.Mark();
                pickle.Unicode("storage");
                pickle.Global("torch", StorageClass(tensor.dtype));
                pickle.Unicode(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                pickle.Unicode("cpu");
                pickle.Int(tensor.numel());
                pickle.Tuple();
                pickle.PersistentId();
                pickle.Int(0);
                WriteLongs(pickle, tensor.shape);
                WriteLongs(pickle, ContiguousStrides(tensor.shape));
                pickle.Bool(false);
                pickle.Global("collections", "OrderedDict");
                pickle.EmptyTuple();
                pickle.Reduce();
            }
            pickle.Tuple();
            pickle.Reduce();
        }
        pickle.SetItems();
        pickle.Stop();

        using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
        AddEntry(zip, $"{archive}/data.pkl", pickle.ToArray());
        AddEntry(zip, $"{archive}/byteorder", Encoding.ASCII.GetBytes("little"));
        for (int i = 0; i < list.Count; i++)
            AddEntry(zip, $"{archive}/data/{i}", TensorBytes.ToBytes(list[i].Value));
        AddEntry(zip, $"{archive}/version", Encoding.ASCII.GetBytes("3\n"));
    }

    private static void WriteLongs(PickleWriter pickle, long[] values)
    {
        pickle.Mark();
        foreach (var v in values) pickle.Int(v);
        pickle.Tuple();
    }

    private static long[] ContiguousStrides(long[] shape)
    {
        var strides = new long[shape.Length];
        long s = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { strides[i] = s; s *= Math.Max(shape[i], 1); }
        return strides;
    }

    private static string StorageClass(ScalarType type) => type switch
    {
        ScalarType.Float32 => "FloatStorage",
        ScalarType.Float64 => "DoubleStorage",
        ScalarType.Float16 => "HalfStorage",
        ScalarType.BFloat16 => "BFloat16Storage",
        ScalarType.Int64 => "LongStorage",
        ScalarType.Int32 => "IntStorage",
        ScalarType.Int16 => "ShortStorage",
        ScalarType.Int8 => "CharStorage",
        ScalarType.Byte => "ByteStorage",
        ScalarType.Bool => "BoolStorage",
        _ => throw new NotSupportedException($"element type {type} cannot be written to a PyTorch checkpoint here"),
    };

    /// <summary>torch.save names the archive folder after the file; any name loads.</summary>
    private static string ArchiveName(string path)
    {
        var stem = Path.GetFileNameWithoutExtension(path);
        var clean = new string(stem.Where(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-').ToArray());
        return clean.Length == 0 ? "archive" : clean;
    }

    private static void AddEntry(ZipArchive zip, string entryName, byte[] data)
    {
        var entry = zip.CreateEntry(entryName, CompressionLevel.NoCompression);
        entry.LastWriteTime = new DateTimeOffset(1980, 1, 1, 0, 0, 0, TimeSpan.Zero); // reproducible bytes
        using var s = entry.Open();
        s.Write(data);
    }

    /// <summary>Emits the few pickle opcodes a state dict needs.</summary>
    private sealed class PickleWriter
    {
        private readonly MemoryStream _out = new();

        public void Proto(byte version) { _out.WriteByte(0x80); _out.WriteByte(version); }
        public void Mark() => _out.WriteByte((byte)'(');
        public void Tuple() => _out.WriteByte((byte)'t');
        public void EmptyTuple() => _out.WriteByte((byte)')');
        public void Reduce() => _out.WriteByte((byte)'R');
        public void SetItems() => _out.WriteByte((byte)'u');
        public void PersistentId() => _out.WriteByte((byte)'Q');
        public void Stop() => _out.WriteByte((byte)'.');
        public void Bool(bool value) => _out.WriteByte(value ? (byte)0x88 : (byte)0x89);

        public void Global(string module, string name)
        {
            _out.WriteByte((byte)'c');
            _out.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
        }

        public void Unicode(string s)
        {
            var bytes = Encoding.UTF8.GetBytes(s);
            Span<byte> len = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)bytes.Length);
            _out.WriteByte((byte)'X');
            _out.Write(len);
            _out.Write(bytes);
        }

        public void Int(long value)
        {
            Span<byte> buffer = stackalloc byte[8];
            if (value is >= int.MinValue and <= int.MaxValue)
            {
                BinaryPrimitives.WriteInt32LittleEndian(buffer, (int)value);
                _out.WriteByte((byte)'J');
                _out.Write(buffer[..4]);
            }
            else
            {
                BinaryPrimitives.WriteInt64LittleEndian(buffer, value);
                _out.WriteByte(0x8a); // LONG1, 8 bytes two's complement
                _out.WriteByte(8);
                _out.Write(buffer);
            }
        }

        public byte[] ToArray() => _out.ToArray();
    }
}
