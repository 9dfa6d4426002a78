using Robustness.Core;
using System.IO.Compression;
using System.Text;
using Robustness.Models.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Tests;

public class PickleSecurityTests
{
    /// <summary>The file each hostile fixture would create if its pickle were executed (see make_fixture.py).</summary>
    private const string Marker = "/tmp/robustness-hostile-pickle-executed";

    [Theory]
    [InlineData("os-system.pt", "os.system")]
    [InlineData("builtins-eval.pt", "builtins.eval")]
    [InlineData("stack-global-posix-system.pt", "posix.system")]
    [InlineData("builtin-getattr.pt", "__builtin__.getattr")]
    public void Hostile_pickles_are_refused_without_running_anything(string file, string global)
    {
        if (File.Exists(Marker)) File.Delete(Marker);
        var path = Fixtures.PyTorch(Path.Combine("hostile", file));

        var e = Assert.Throws<ModelFormatException>(() => ModelFile.Load(path, CPU, "mlp"));
        Assert.Equal($"{path}: refusing to load: the pickle references {global} (only tensors and dicts are allowed)", e.Message);
        Assert.False(File.Exists(Marker), "the hostile pickle's command ran");
    }

    internal static byte[] Zip(byte[] pickle, params (string Name, byte[] Data)[] storages)
    {
        using var stream = new MemoryStream();
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
        {
            void Add(string name, byte[] data)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
            Add("archive/data.pkl", pickle);
            foreach (var (name, data) in storages) Add($"archive/data/{name}", data);
            Add("archive/version", "3\n"u8.ToArray());
        }
        return stream.ToArray();
    }

    private static ModelFormatException Refuses(byte[] pickle, params (string, byte[])[] storages) =>
        Assert.Throws<ModelFormatException>(() => PyTorchCheckpoint.Read(new MemoryStream(Zip(pickle, storages)), "x.pt"));

    private static byte[] Bytes(string latin1) => Encoding.Latin1.GetBytes(latin1);

    [Fact]
    public void Object_building_opcodes_are_refused()
    {
        // NEWOBJ, INST, OBJ and EXT1 can all construct objects without GLOBAL; none is allowed.
        Assert.Contains("opcode 0x81", Refuses(Bytes("\u0080\u0002ccollections\nOrderedDict\n)\u0081.")).Message);
        Assert.Contains("opcode 0x69", Refuses(Bytes("\u0080\u0002(ios\nsystem\n.")).Message);
        Assert.Contains("opcode 0x6f", Refuses(Bytes("\u0080\u0002(ccollections\nOrderedDict\no.")).Message);
        Assert.Contains("opcode 0x82", Refuses(Bytes("\u0080\u0002\u0082\u0001.")).Message);
    }

    [Fact]
    public void Allowed_names_used_the_wrong_way_are_refused()
    {
        // Calling a storage class, or calling something that is not a global, is not data.
        Assert.Contains("cannot be called", Refuses(Bytes("\u0080\u0002ctorch\nFloatStorage\n)R.")).Message);
        Assert.Contains("REDUCE calls", Refuses(Bytes("\u0080\u0002X\u0001\u0000\u0000\u0000a)R.")).Message);
        // BUILD on anything but an OrderedDict (the _metadata case) is refused.
        Assert.Contains("BUILD", Refuses(Bytes("\u0080\u0002]}b.")).Message);
    }

    [Fact]
    public void Tensor_views_outside_their_storage_are_refused()
    {
        // _rebuild_tensor_v2(storage of 2 floats, offset 0, size (3,), stride (1,)) reaches element 2 of 2.
        var pickle = Bytes("\u0080\u0002}X\u0001\u0000\u0000\u0000w" +
            "ctorch._utils\n_rebuild_tensor_v2\n((X\u0007\u0000\u0000\u0000storagectorch\nFloatStorage\nX\u0001\u0000\u0000\u00000X\u0003\u0000\u0000\u0000cpuK\u0002tQK\u0000K\u0003\u0085K\u0001\u0085\u0089ccollections\nOrderedDict\n)RtRs.");
        Assert.Contains("reaches element 2", Refuses(pickle, ("0", new byte[8])).Message);
        // A storage that claims more elements than its file holds.
        var claims = Bytes("\u0080\u0002}X\u0001\u0000\u0000\u0000w" +
            "ctorch._utils\n_rebuild_tensor_v2\n((X\u0007\u0000\u0000\u0000storagectorch\nFloatStorage\nX\u0001\u0000\u0000\u00000X\u0003\u0000\u0000\u0000cpuJ\u0000\u0000\u0000\u0010tQK\u0000K\u0001\u0085K\u0001\u0085\u0089ccollections\nOrderedDict\n)RtRs.");
        Assert.Contains("needs", Refuses(claims, ("0", new byte[8])).Message);
    }

    [Fact]
    public void A_valid_hand_written_state_dict_loads()
    {
        // The same shape as the refused one above but in range: proves those refusals are about the ranges.
        var pickle = Bytes("\u0080\u0002}X\u0001\u0000\u0000\u0000w" +
            "ctorch._utils\n_rebuild_tensor_v2\n((X\u0007\u0000\u0000\u0000storagectorch\nFloatStorage\nX\u0001\u0000\u0000\u00000X\u0003\u0000\u0000\u0000cpuK\u0002tQK\u0001K\u0001\u0085K\u0001\u0085\u0089ccollections\nOrderedDict\n)RtRs.");
        var data = new byte[8];
        BitConverter.GetBytes(1.5f).CopyTo(data, 0);
        BitConverter.GetBytes(-2.5f).CopyTo(data, 4);
        using var sd = PyTorchCheckpoint.Read(new MemoryStream(Zip(pickle, ("0", data))), "x.pt");
        Assert.Equal(-2.5f, sd["w"][0].ToSingle());
    }

    [Fact]
    public void Non_checkpoints_get_a_clear_message()
    {
        var legacy = Assert.Throws<ModelFormatException>(() => PyTorchCheckpoint.Read(new MemoryStream(Bytes("\u0080\u0002\u008a\u000alegacy")), "old.pt"));
        Assert.Contains("legacy", legacy.Message);
        var noPickle = Assert.Throws<ModelFormatException>(() => PyTorchCheckpoint.Read(new MemoryStream(Zip([])), "x.pt"));
        Assert.StartsWith("x.pt: ", noPickle.Message);
    }
}
