using Robustness.Core;
using System.Buffers.Binary;
using System.Text;

namespace Robustness.Models.Formats;

/// <summary>A global that the restricted unpickler allows (a name only: nothing is imported or called).</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public string FullName => $"{Module}.{Name}";
    public override string ToString() => FullName;
}

/// <summary>A pickled tuple.</summary>
internal sealed record PickleTuple(object?[] Items)
{
    public override string ToString() => $"tuple({Items.Length})";
}

/// <summary>A pickled dict or OrderedDict, in insertion order.</summary>
internal sealed class PickleDict
{
    private readonly List<KeyValuePair<object?, object?>> _items = [];
    private readonly Dictionary<object, int> _index = [];

    public IReadOnlyList<KeyValuePair<object?, object?>> Items => _items;

    public void Set(object? key, object? value)
    {
        // Only primitive keys are looked up for replacement; anything else keeps pickle's append order.
        if (key is string or long or double or bool)
        {
            if (_index.TryGetValue(key, out var at)) { _items[at] = new(key, value); return; }
            _index[key] = _items.Count;
        }
        _items.Add(new(key, value));
    }

    public bool TryGet(string key, out object? value)
    {
        if (_index.TryGetValue(key, out var at)) { value = _items[at].Value; return true; }
        value = null;
        return false;
    }
}

/// <summary>
/// A pickle interpreter for PyTorch checkpoints that refuses everything but data. Python's unpickler imports
/// and calls whatever the file names (<c>os.system</c>, <c>builtins.eval</c>...), so loading an untrusted .pt file
/// with it runs the file's code. This one knows a fixed allowlist of names (OrderedDict, the tensor rebuild
/// functions, the storage types) and treats them as tags: it never resolves a name to code, never calls
/// anything, and rejects any other name at the opcode that mentions it, before reading further.
/// Calls to allowed names are interpreted by <see cref="IPickleCalls"/>; persistent ids (tensor storages) by the caller.
/// </summary>
internal sealed class RestrictedUnpickler
{
    public static readonly IReadOnlySet<string> AllowedGlobals = new HashSet<string>(StringComparer.Ordinal)
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter",
        "torch.FloatStorage", "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage",
        "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage",
        "torch.ByteStorage", "torch.BoolStorage",
        "torch.storage.UntypedStorage",
    };

    /// <summary>Interprets REDUCE on an allowed global and BINPERSID.</summary>
    public interface IPickleCalls
    {
        object Call(PickleGlobal function, object?[] arguments);
        object PersistentLoad(object? persistentId);
    }

    private const int MaxDepthItems = 10_000_000;

    private readonly byte[] _data;
    private readonly string _name;
    private readonly IPickleCalls _calls;
    private int _pos;
    private List<object?> _stack = [];
    private readonly Stack<List<object?>> _marks = new();
    private readonly Dictionary<long, object?> _memo = [];

    private sealed class MarkObject;

    public RestrictedUnpickler(byte[] data, string name, IPickleCalls calls)
    {
        _data = data;
        _name = name;
        _calls = calls;
    }

    public object? Load()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Error("pickle ends without a STOP opcode");
            int at = _pos;
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: // PROTO
                    {
                        int protocol = ReadByte();
                        if (protocol > 5) throw Error($"unsupported pickle protocol {protocol}");
                        break;
                    }
                case 0x95: // FRAME: a length hint only
                    ReadBytes(8);
                    break;
                case (byte)'.': // STOP
                    if (_marks.Count != 0) throw Error("pickle stops inside an unclosed MARK");
                    if (_stack.Count != 1) throw Error($"pickle stops with {_stack.Count} values on the stack, expected 1");
                    return _stack[0];
                case (byte)'(': // MARK
                    if (_marks.Count > 10_000) throw Error("pickle nests MARKs too deeply");
                    _marks.Push(_stack);
                    _stack = [];
                    break;
                case (byte)')': Push(new PickleTuple([])); break; // EMPTY_TUPLE
                case (byte)'}': Push(new PickleDict()); break;    // EMPTY_DICT
                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)'N': Push(null); break;                // NONE
                case 0x88: Push(true); break;                     // NEWTRUE
                case 0x89: Push(false); break;                    // NEWFALSE
                case (byte)'K': Push((long)ReadByte()); break;    // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2))); break; // BININT2
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))); break;  // BININT
                case 0x8a: // LONG1
                    {
                        int n = ReadByte();
                        Push(ReadLittleEndianSigned(ReadBytes(n)));
                        break;
                    }
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break; // BINFLOAT
                case (byte)'X': Push(ReadUtf8(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))); break; // BINUNICODE
                case 0x8c: Push(ReadUtf8((ulong)ReadByte())); break; // SHORT_BINUNICODE
                case 0x8d: Push(ReadUtf8((ulong)ReadLength8())); break; // BINUNICODE8
                case (byte)'U': Push(ReadLatin1(ReadByte())); break; // SHORT_BINSTRING (Python 2 str)
                case (byte)'T': Push(ReadLatin1(BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4)))); break; // BINSTRING
                case (byte)'C': Push(ReadBytes(ReadByte()).ToArray()); break; // SHORT_BINBYTES
                case (byte)'B': Push(ReadBytes(CheckedLength(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))).ToArray()); break; // BINBYTES
                case (byte)'t': Push(new PickleTuple(PopMark().ToArray())); break; // TUPLE
                case 0x85: Push(new PickleTuple([Pop()])); break; // TUPLE1
                case 0x86: { var b = Pop(); var a = Pop(); Push(new PickleTuple([a, b])); break; } // TUPLE2
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new PickleTuple([a, b, c])); break; } // TUPLE3
                case (byte)'l': Push(PopMark()); break; // LIST
                case (byte)'d': // DICT
                    {
                        var items = PopMark();
                        var dict = new PickleDict();
                        SetItems(dict, items);
                        Push(dict);
                        break;
                    }
                case (byte)'a': // APPEND
                    {
                        var value = Pop();
                        AsList(Peek()).Add(value);
                        break;
                    }
                case (byte)'e': // APPENDS
                    {
                        var items = PopMark();
                        AsList(Peek()).AddRange(items);
                        break;
                    }
                case (byte)'s': // SETITEM
                    {
                        var value = Pop();
                        var key = Pop();
                        AsDict(Peek()).Set(key, value);
                        break;
                    }
                case (byte)'u': // SETITEMS
                    {
                        var items = PopMark();
                        SetItems(AsDict(Peek()), items);
                        break;
                    }
                case (byte)'0': Pop(); break; // POP
                case (byte)'1': PopMark(); break; // POP_MARK
                case (byte)'2': Push(Peek()); break; // DUP
                case (byte)'q': Memoize(ReadByte()); break; // BINPUT
                case (byte)'r': Memoize(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))); break; // LONG_BINPUT
                case 0x94: Memoize(_memo.Count); break; // MEMOIZE
                case (byte)'h': Push(FromMemo(ReadByte())); break; // BINGET
                case (byte)'j': Push(FromMemo(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))); break; // LONG_BINGET
                case (byte)'c': // GLOBAL
                    {
                        var module = ReadLine();
                        var name = ReadLine();
                        Push(Allow(module, name));
                        break;
                    }
                case 0x93: // STACK_GLOBAL
                    {
                        var name = Pop();
                        var module = Pop();
                        if (module is not string m || name is not string n) throw Error("STACK_GLOBAL operands are not strings");
                        Push(Allow(m, n));
                        break;
                    }
                case (byte)'R': // REDUCE
                    {
                        var args = Pop();
                        var function = Pop();
                        if (function is not PickleGlobal global) throw Error($"REDUCE calls a {Describe(function)}, not an allowed global");
                        if (args is not PickleTuple tuple) throw Error($"REDUCE arguments are a {Describe(args)}, not a tuple");
                        Push(_calls.Call(global, tuple.Items));
                        break;
                    }
                case (byte)'Q': // BINPERSID
                    Push(_calls.PersistentLoad(Pop()));
                    break;
                case (byte)'b': // BUILD
                    {
                        var state = Pop();
                        var target = Peek();
                        // An OrderedDict state dict carries `_metadata` (per-module versions) as instance state: not needed.
                        if (target is not PickleDict) throw Error($"BUILD on a {Describe(target)} is not supported");
                        _ = state;
                        break;
                    }
                default:
                    throw Error($"unsupported pickle opcode 0x{op:x2} at byte {at} (only plain data and tensors are allowed)");
            }
        }
    }

    private PickleGlobal Allow(string module, string name)
    {
        var full = $"{module}.{name}";
        if (!AllowedGlobals.Contains(full))
            throw Error($"refusing to load: the pickle references {Printable(full)} (only tensors and dicts are allowed)");
        return new PickleGlobal(module, name);
    }

    private static string Printable(string s)
    {
        var clean = new string(s.Select(c => char.IsControl(c) ? '?' : c).ToArray());
        return clean.Length > 120 ? clean[..120] + "…" : clean;
    }

    private void SetItems(PickleDict dict, List<object?> items)
    {
        if (items.Count % 2 != 0) throw Error("SETITEMS has an odd number of items");
        for (int i = 0; i < items.Count; i += 2) dict.Set(items[i], items[i + 1]);
    }

    private List<object?> AsList(object? target) =>
        target as List<object?> ?? throw Error($"APPEND to a {Describe(target)}, not a list");

    private PickleDict AsDict(object? target) =>
        target as PickleDict ?? throw Error($"SETITEM on a {Describe(target)}, not a dict");

    private void Push(object? value)
    {
        if (_stack.Count >= MaxDepthItems) throw Error("pickle stack grows too large");
        _stack.Add(value);
    }

    private object? Pop()
    {
        if (_stack.Count == 0) throw Error("pickle pops from an empty stack");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object? Peek()
    {
        if (_stack.Count == 0) throw Error("pickle reads from an empty stack");
        return _stack[^1];
    }

    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Error("pickle closes a MARK that was never opened");
        var items = _stack;
        _stack = _marks.Pop();
        return items;
    }

    private void Memoize(long index)
    {
        if (_memo.Count >= _data.Length) throw Error("pickle memo grows too large");
        _memo[index] = Peek();
    }

    private object? FromMemo(long index) =>
        _memo.TryGetValue(index, out var v) ? v : throw Error($"pickle reads memo entry {index} that was never stored");

    private int ReadByte()
    {
        if (_pos >= _data.Length) throw Error("pickle ends inside an opcode");
        return _data[_pos++];
    }

    private ReadOnlySpan<byte> ReadBytes(int n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Error("pickle ends inside an opcode");
        var span = _data.AsSpan(_pos, n);
        _pos += n;
        return span;
    }

    private int CheckedLength(ulong n)
    {
        if (n > (ulong)(_data.Length - _pos)) throw Error($"pickle claims a {n}-byte string but only {_data.Length - _pos} bytes remain");
        return (int)n;
    }

    private int ReadLength8() => CheckedLength(BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8)));

    private string ReadUtf8(ulong length)
    {
        var bytes = ReadBytes(CheckedLength(length));
        try { return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
        catch (DecoderFallbackException) { throw Error("pickle has a string that is not valid UTF-8"); }
    }

    private string ReadLatin1(int length)
    {
        if (length < 0) throw Error("pickle has a string with a negative length");
        return Encoding.Latin1.GetString(ReadBytes(CheckedLength((ulong)length)));
    }

    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos, Math.Min(_data.Length - _pos, 256));
        if (end < 0) throw Error("pickle GLOBAL name is not terminated by a newline within 256 bytes");
        var s = Encoding.ASCII.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    private long ReadLittleEndianSigned(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length == 0) return 0;
        if (bytes.Length > 8) throw Error($"pickle integer of {bytes.Length} bytes does not fit in 64 bits");
        Span<byte> buffer = stackalloc byte[8];
        buffer.Fill((bytes[^1] & 0x80) != 0 ? (byte)0xff : (byte)0);
        bytes.CopyTo(buffer);
        return BinaryPrimitives.ReadInt64LittleEndian(buffer);
    }

    internal static string Describe(object? value) => value switch
    {
        null => "None",
        string => "string",
        long => "int",
        double => "float",
        bool => "bool",
        byte[] => "bytes",
        PickleTuple => "tuple",
        PickleDict => "dict",
        List<object?> => "list",
        PickleGlobal g => g.FullName,
        _ => value.GetType().Name,
    };

    private ModelFormatException Error(string what) => new($"{_name}: {what}");
}
