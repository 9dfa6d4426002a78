using Robustness.Core;
using Robustness.Core.Formats;
using System.Buffers.Binary;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Tests;

public class SafeTensorsTests
{
    [Fact]
    public void Round_trip_keeps_every_supported_element_type_order_and_metadata()
    {
        using var scope = NewDisposeScope();
        random.manual_seed(7);
        var tensors = new List<KeyValuePair<string, Tensor>>
        {
            new("z.f32", randn(3, 4)),
            new("a.f64", randn(2, 2, 2, dtype: float64)),
            new("f16", randn(5).to(float16)),
            new("bf16", randn(5).to(bfloat16)),
            new("i64", tensor(new long[] { long.MinValue, -1, 0, long.MaxValue })),
            new("i32", tensor(new[] { int.MinValue, 7 })),
            new("u8", tensor(new byte[] { 0, 255, 3 })),
            new("bool", tensor(new[] { true, false, true })),
            new("scalar", tensor(2.5f)),
            new("empty", zeros(0, 3)),
        };
        var metadata = new Dictionary<string, string> { ["arch"] = "x", ["note"] = "ünïcode ✓" };
        using var stream = new MemoryStream();
        SafeTensors.Write(stream, tensors, metadata);
        Assert.Equal(0, (BinaryPrimitives.ReadInt64LittleEndian(stream.ToArray()) + 8) % 8); // data starts 8-byte aligned

        using var read = SafeTensors.Read(new MemoryStream(stream.ToArray()), "mem");
        Assert.Equal(tensors.Select(t => t.Key), read.Names);
        Assert.Equal(metadata, read.Metadata);
        foreach (var (name, expected) in tensors)
        {
            var actual = read[name];
            Assert.Equal(expected.dtype, actual.dtype);
            Assert.Equal(expected.shape, actual.shape);
            Assert.True(expected.equal(actual).all().ToBoolean(), name);
        }
    }

    [Fact]
    public void Reads_the_file_PyTorch_side_wrote_with_F16_weights()
    {
        using var file = SafeTensors.Read(Fixtures.PyTorch("tiny-cnn-f16.safetensors"));
        Assert.Equal(ScalarType.Float16, file["conv1.weight"].dtype);
        Assert.Equal([128L, 1568L], file["fc1.weight"].shape);
        Assert.Equal("tiny-cnn", file.Metadata["arch"]);
    }

    // --- malformed files: every validation rule, each one a ModelFormatException naming the file ---

    private static byte[] Build(string header, int dataBytes = 0, ulong? declaredLength = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredLength ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        return bytes;
    }

    private static ModelFormatException Rejects(byte[] bytes) =>
        Assert.Throws<ModelFormatException>(() => SafeTensors.Read(new MemoryStream(bytes), "bad.safetensors"));

    public static TheoryData<string, string, int> MalformedHeaders => new()
    {
        { "not json", "{\"a\": ", 0 },
        { "json array", "[1,2]", 0 },
        { "unknown dtype", """{"a":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}}""", 4 },
        { "complex dtype unsupported", """{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}""", 8 },
        { "offsets past the data", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 4 },
        { "offsets reversed", """{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}""", 4 },
        { "offsets not matching dtype × shape", """{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8 },
        { "overlapping tensors", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12 },
        { "gap between tensors", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""", 12 },
        { "trailing bytes", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 8 },
        { "duplicate names", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8 },
        { "negative shape", """{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", 4 },
        { "fractional shape", """{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}""", 4 },
        { "overflowing shape", """{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}""", 8 },
        { "missing dtype", """{"a":{"shape":[1],"data_offsets":[0,4]}}""", 4 },
        { "three offsets", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}""", 4 },
        { "metadata not strings", """{"__metadata__":{"k":1}}""", 0 },
        { "tensor entry not an object", """{"a":[1]}""", 0 },
        { "bool byte not 0 or 1", """{"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}""", 1 },
    };

    [Theory]
    [MemberData(nameof(MalformedHeaders))]
    public void Malformed_header_is_refused_with_the_file_name(string why, string header, int dataBytes)
    {
        var bytes = Build(header, dataBytes);
        if (why == "bool byte not 0 or 1") bytes[^1] = 7;
        var e = Rejects(bytes);
        Assert.StartsWith("bad.safetensors: ", e.Message);
    }

    [Fact]
    public void Header_length_beyond_the_file_or_the_limit_is_refused_before_allocating()
    {
        // A declared length of 2^63 would be an impossible allocation; the reader must refuse it from the 8 bytes alone.
        Assert.Contains("limit", Rejects(Build("{}", 0, declaredLength: 1UL << 63)).Message);
        Assert.Contains("larger than the file", Rejects(Build("{}", 0, declaredLength: 50_000_000)).Message);
        Assert.Contains("shorter", Rejects([1, 2, 3]).Message);
    }

    [Fact]
    public void Valid_minimal_files_are_accepted()
    {
        using var empty = SafeTensors.Read(new MemoryStream(Build("{}")), "m");
        Assert.Equal(0, empty.Count);
        using var one = SafeTensors.Read(new MemoryStream(Build("""{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}  """, 4)), "m");
        Assert.Equal(0, one["a"].item<int>());
    }

    [Fact]
    public void Missing_file_is_an_input_error()
    {
        var e = Assert.Throws<Robustness.Core.InputException>(() => SafeTensors.Read("/nonexistent/model.safetensors"));
        Assert.Contains("/nonexistent/model.safetensors", e.Message);
    }
}
