using CsCheck;
using Robustness.Core;

namespace Robustness.Data.Tests;

/// <summary>
/// Mutation fuzzing: valid files with random bit flips, byte overwrites, insertions and truncations must either
/// parse or fail with an <see cref="InputException"/> (usually <see cref="DataFormatException"/>): never any other
/// exception type, never an allocation the bytes do not justify.
/// </summary>
public class FuzzTests
{
    private const int Iterations = 3000;

    private enum EditKind { FlipBit, Overwrite, Insert, Truncate }

    private static readonly Gen<(int Kind, int Position, byte Value)> Edit = Gen.Select(Gen.Int[0, 3], Gen.Int[0, int.MaxValue], Gen.Byte);

    /// <summary>One to six edits; most land in the header for small seeds, which is where the parsing decisions are.</summary>
    private static readonly Gen<(int Kind, int Position, byte Value)[]> Edits = Edit.Array[1, 6];

    internal static byte[] Mutate(byte[] seed, (int Kind, int Position, byte Value)[] edits)
    {
        var bytes = new List<byte>(seed);
        foreach (var (kind, position, value) in edits)
        {
            switch ((EditKind)kind)
            {
                case EditKind.FlipBit when bytes.Count > 0:
                    bytes[position % bytes.Count] ^= (byte)(1 << (value % 8));
                    break;
                case EditKind.Overwrite when bytes.Count > 0:
                    bytes[position % bytes.Count] = value;
                    break;
                case EditKind.Insert:
                    bytes.Insert(position % (bytes.Count + 1), value);
                    break;
                case EditKind.Truncate:
                    int keep = position % (bytes.Count + 1);
                    bytes.RemoveRange(keep, bytes.Count - keep);
                    break;
            }
        }
        return bytes.ToArray();
    }

    /// <summary>Runs <paramref name="parse"/> on mutants of <paramref name="seed"/>; returns (parsed, rejected) counts.</summary>
    private static (int Parsed, int Rejected) Fuzz(byte[] seed, Action<byte[]> parse, int iterations = Iterations, int threads = -1)
    {
        int parsed = 0, rejected = 0;
        Edits.Sample(edits =>
        {
            var input = Mutate(seed, edits);
            try
            {
                parse(input);
                Interlocked.Increment(ref parsed);
            }
            catch (InputException)
            {
                Interlocked.Increment(ref rejected);
            }
        }, iter: iterations, threads: threads);
        return (parsed, rejected);
    }

    [Fact]
    public void MutatedRawIdxImagesParseOrFailWithDataErrors()
    {
        var (parsed, rejected) = Fuzz(TestData.IdxImages(3, 4, 5), b => IdxReader.ReadImages(new MemoryStream(b), "fuzz-images"));
        Assert.True(parsed > 0 && rejected > 0, $"parsed {parsed}, rejected {rejected}: the mutations should hit both outcomes");
    }

    [Fact]
    public void MutatedRawIdxLabelsParseOrFailWithDataErrors()
    {
        var (parsed, rejected) = Fuzz(TestData.IdxLabels(TestData.Labels(12)), b => IdxReader.ReadLabels(new MemoryStream(b), "fuzz-labels"));
        Assert.True(parsed > 0 && rejected > 0, $"parsed {parsed}, rejected {rejected}");
    }

    [Fact]
    public void MutatedGzipIdxParseOrFailWithDataErrors()
    {
        var images = TestData.Gzip(TestData.IdxImages(3, 4, 5));
        var labels = TestData.Gzip(TestData.IdxLabels(TestData.Labels(12)));
        var (_, rejected) = Fuzz(images, b => IdxReader.ReadImages(new MemoryStream(b), "fuzz-images.gz"));
        Assert.True(rejected > 0);
        Fuzz(labels, b => IdxReader.ReadLabels(new MemoryStream(b), "fuzz-labels.gz"));
    }

    [Fact]
    public void GzipOfMutatedIdxParsesOrFailsWithDataErrors()
    {
        // Mutating before compressing reaches the header checks behind a valid gzip layer.
        var seed = TestData.IdxImages(3, 4, 5);
        Fuzz(seed, b => IdxReader.ReadImages(new MemoryStream(TestData.Gzip(b)), "fuzz-inner.gz"), iterations: 1000);
    }

    [Fact]
    public void MutatedCifarParsesOrFailsWithDataErrors()
    {
        var (parsed, rejected) = Fuzz(TestData.Cifar([1, 9]), b => Cifar10Reader.Read(new MemoryStream(b), "fuzz_batch.bin"));
        Assert.True(parsed > 0 && rejected > 0, $"parsed {parsed}, rejected {rejected}");
    }

    [Fact]
    public void RandomBytesNeverEscapeAsOtherExceptions()
    {
        Gen.Byte.Array[0, 80].Sample(bytes =>
        {
            foreach (var parse in new Action[]
            {
                () => IdxReader.ReadImages(new MemoryStream(bytes), "random"),
                () => IdxReader.ReadLabels(new MemoryStream(bytes), "random"),
                () => Cifar10Reader.Read(new MemoryStream(bytes), "random"),
            })
            {
                try { parse(); } catch (InputException) { }
            }
        }, iter: Iterations);
    }

    [Fact]
    public void MutatedPngInAnImageFolderParsesOrFailsWithDataErrors()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Dir("class"), "image.png");
        var seed = File.ReadAllBytes(TestData.CorpusPath("tiny-rgb.png"));
        // One file, rewritten per sample: single-threaded, and fewer iterations since each one touches the disk.
        var (parsed, rejected) = Fuzz(seed, b =>
        {
            File.WriteAllBytes(path, b);
            using var ds = ImageFolderReader.Load(dir.Path);
        }, iterations: 400, threads: 1);
        Assert.True(rejected > 0, $"parsed {parsed}, rejected {rejected}");
    }
}
