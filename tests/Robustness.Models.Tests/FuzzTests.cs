using System.IO.Compression;
using CsCheck;
using Robustness.Core;
using Robustness.Models.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Tests;

/// <summary>
/// Damaged and hostile files must fail as bad input (ModelFormatException / InputException), never as a crash,
/// a native error, an out-of-memory or a hang: mutate valid files at random and load them through the full path.
/// </summary>
public class FuzzTests
{
    private const long Iterations = 5000;

    /// <summary>One edit of a file: set a byte, truncate, insert a byte, overwrite 8 bytes with an integer, or change a digit.</summary>
    private readonly record struct Mutation(int Kind, uint Position, ulong Value);

    private static readonly Gen<Mutation[]> Mutations =
        Gen.Select(Gen.Int[0, 4], Gen.UInt, Gen.ULong, (k, p, v) => new Mutation(k, p, v)).Array[1, 4];

    private static byte[] Apply(byte[] original, Mutation[] mutations)
    {
        var bytes = new List<byte>(original);
        foreach (var m in mutations)
        {
            if (bytes.Count == 0) break;
            int at = (int)(m.Position % (uint)bytes.Count);
            switch (m.Kind)
            {
                case 0: bytes[at] = (byte)m.Value; break;
                case 1: bytes.RemoveRange(at, bytes.Count - at); break;
                case 2: bytes.Insert(at, (byte)m.Value); break;
                case 3:
                    {
                        // Half the time a small number (plausible sizes/offsets), else any 64-bit pattern.
                        ulong value = (m.Value & 1) == 0 ? (m.Value >> 1) % 4096 : m.Value;
                        for (int i = 0; i < 8 && at + i < bytes.Count; i++) bytes[at + i] = (byte)(value >> (8 * i));
                        break;
                    }
                default:
                    {
                        int digit = bytes.FindIndex(at, b => b is >= (byte)'0' and <= (byte)'9');
                        if (digit >= 0) bytes[digit] = (byte)('0' + (int)(m.Value % 10));
                        break;
                    }
            }
        }
        return bytes.ToArray();
    }

    private static void LoadsOrRejectsAsBadInput(byte[] bytes, string name, string? arch)
    {
        try
        {
            using var model = ModelFile.Load(new MemoryStream(bytes), name, CPU, arch);
        }
        catch (InputException)
        {
            // ModelFormatException included: the only acceptable failure.
        }
    }

    private static readonly Lazy<byte[]> SafeTensorsFile = new(() =>
    {
        using var model = ModelZoo.CreateClassifier("mlp", CPU,
            ModelZoo.DefaultSpec("mlp", new ZooOptions { InputShape = [6], Hidden = [4], NumClasses = 3 }) with { Mean = [0.5f], Std = [0.25f], Labels = ["a", "b", "c"] });
        var path = Fixtures.TempFile(".safetensors");
        ModelFile.Save(model, path);
        var bytes = File.ReadAllBytes(path);
        File.Delete(path);
        return bytes;
    });

    private static readonly Lazy<Dictionary<string, byte[]>> PtEntries = new(() =>
    {
        using var model = ModelZoo.CreateClassifier("mlp", CPU, ModelZoo.DefaultSpec("mlp", new ZooOptions { InputShape = [6], Hidden = [4], NumClasses = 3 }));
        using var stream = new MemoryStream();
        PyTorchCheckpoint.Write(stream, model.Network.state_dict());
        stream.Position = 0;
        using var zip = new ZipArchive(stream, ZipArchiveMode.Read);
        return zip.Entries.ToDictionary(e => e.FullName, e =>
        {
            using var s = e.Open();
            using var copy = new MemoryStream();
            s.CopyTo(copy);
            return copy.ToArray();
        });
    });

    private static byte[] Zip(Dictionary<string, byte[]> entries)
    {
        using var stream = new MemoryStream();
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, data) in entries)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
        return stream.ToArray();
    }

    [Fact]
    public void The_unmutated_files_load()
    {
        // Otherwise the fuzz tests below would only ever exercise the rejection path.
        using var a = ModelFile.Load(new MemoryStream(SafeTensorsFile.Value), "base.safetensors");
        using var b = ModelFile.Load(new MemoryStream(Zip(PtEntries.Value)), "base.pt", arch: "mlp");
        Assert.Equal(3, a.Spec.NumClasses);
        Assert.Equal(3, b.Spec.NumClasses);
    }

    [Fact]
    public void Mutated_safetensors_fail_only_as_bad_input() =>
        Mutations.Sample(m => LoadsOrRejectsAsBadInput(Apply(SafeTensorsFile.Value, m), "fuzz.safetensors", null), iter: Iterations);

    [Fact]
    public void Mutated_pt_files_fail_only_as_bad_input()
    {
        var original = Zip(PtEntries.Value);
        Mutations.Sample(m => LoadsOrRejectsAsBadInput(Apply(original, m), "fuzz.pt", "mlp"), iter: Iterations);
    }

    [Fact]
    public void Mutated_pickles_in_valid_zips_fail_only_as_bad_input()
    {
        // The zip stays intact (CRCs right), so every mutation reaches the unpickler.
        var entries = PtEntries.Value;
        var pickleName = entries.Keys.Single(k => k.EndsWith("/data.pkl", StringComparison.Ordinal));
        Mutations.Sample(m =>
        {
            var mutated = new Dictionary<string, byte[]>(entries) { [pickleName] = Apply(entries[pickleName], m) };
            LoadsOrRejectsAsBadInput(Zip(mutated), "fuzz.pt", "mlp");
        }, iter: Iterations);
    }
}
