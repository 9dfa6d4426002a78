namespace Robustness.Cli.Tests;

/// <summary>
/// Hostile and broken dataset files through `robust data PATH` and `robust attack --data PATH`: exit 2, one line that
/// names the file and the problem, and nothing written to the output directory.
/// </summary>
[Collection("cli")]
public sealed class DataErrorTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    /// <summary>Runs both verbs on the path and checks both report the same problem; returns the `data` verb's line.</summary>
    private string BothVerbsFail(string path, params string[] fragments)
    {
        var line = Expect.BadInput(Cli.Run("data", path), fragments);
        var outDir = _temp.Sub("out-" + Guid.NewGuid().ToString("N"));
        var attack = Cli.Run("attack", "--model", Make.TinyCnn, "--data", path, "--attack", "fgsm", "--eps", "0.1", "--out", outDir, "--threads", "1");
        Expect.BadInput(attack, fragments);
        Expect.NoPartialOutput(outDir);
        return line;
    }

    [Fact]
    public void MissingPathIsNamed()
    {
        var missing = _temp.Sub("no-such-folder");
        BothVerbsFail(missing, missing, "neither a known dataset");
    }

    [Fact]
    public void TruncatedGzipIsRefused()
    {
        var full = File.ReadAllBytes(Path.Combine(Repo.FashionMnist, "t10k-images-idx3-ubyte.gz"));
        var dir = _temp.Dir("trunc");
        File.WriteAllBytes(Path.Combine(dir, "t10k-images-idx3-ubyte.gz"), full[..(full.Length / 2)]);
        File.Copy(Path.Combine(Repo.FashionMnist, "t10k-labels-idx1-ubyte.gz"), Path.Combine(dir, "t10k-labels-idx1-ubyte.gz"));
        BothVerbsFail(dir, "t10k-images-idx3-ubyte.gz", "truncated");
    }

    [Fact]
    public void GzipTruncatedInsideItsTrailerIsRefused()
    {
        // .NET's GZipStream alone accepts this file: every pixel decompresses; only the CRC/size trailer is cut.
        var labels = File.ReadAllBytes(Path.Combine(Repo.FashionMnist, "t10k-labels-idx1-ubyte.gz"));
        var dir = _temp.Dir("trailer");
        File.Copy(Path.Combine(Repo.FashionMnist, "t10k-images-idx3-ubyte.gz"), Path.Combine(dir, "t10k-images-idx3-ubyte.gz"));
        File.WriteAllBytes(Path.Combine(dir, "t10k-labels-idx1-ubyte.gz"), labels[..^3]);
        var line = Expect.BadInput(Cli.Run("data", dir), "t10k-labels-idx1-ubyte.gz");
        Assert.Matches("(?i)truncat|trailer|crc|gzip", line);
    }

    [Fact]
    public void WrongIdxMagicIsNamed()
    {
        var dir = Make.IdxFolder(_temp, "magic", Make.IdxImages(10, 28, 28, magic: 0x0804), Make.IdxLabels(Make.Labels(10)));
        var line = BothVerbsFail(dir, "t10k-images-idx3-ubyte");
        Assert.Matches("(?i)magic", line);
    }

    [Fact]
    public void HeaderClaimingMoreBytesThanTheFileHasIsRefused()
    {
        var dir = Make.IdxFolder(_temp, "short", Make.IdxImages(10, 28, 28, declaredCount: 1000), Make.IdxLabels(Make.Labels(10)));
        var line = BothVerbsFail(dir, "t10k-images-idx3-ubyte");
        Assert.Matches("(?i)truncated|declares|ends|short", line);
    }

    [Fact]
    public void AbsurdDimensionsAreRefusedBeforeAllocating()
    {
        var dir = Make.IdxFolder(_temp, "huge", Make.IdxImages(1, 28, 28, declaredCount: int.MaxValue), Make.IdxLabels(Make.Labels(1)));
        Expect.BadInput(Cli.Run("data", dir), "t10k-images-idx3-ubyte");
    }

    [Fact]
    public void ImageLabelCountMismatchIsNamed()
    {
        var dir = Make.IdxFolder(_temp, "count", Make.IdxImages(10, 28, 28), Make.IdxLabels(Make.Labels(12)));
        var line = BothVerbsFail(dir);
        Assert.Contains("10", line);
        Assert.Contains("12", line);
    }

    [Fact]
    public void LabelOutOfRangeIsNamed()
    {
        var labels = Make.Labels(10);
        labels[7] = 42;
        var dir = Make.IdxFolder(_temp, "label", Make.IdxImages(10, 28, 28), Make.IdxLabels(labels));
        var line = BothVerbsFail(dir, "t10k-labels-idx1-ubyte", "42");
    }

    [Fact]
    public void CifarFileWithPartialRecordIsRefused()
    {
        var dir = _temp.Dir("cifar");
        File.WriteAllBytes(Path.Combine(dir, "test_batch.bin"), new byte[3073 * 2 + 100]);
        BothVerbsFail(dir, "test_batch.bin", "3,073");
    }

    [Fact]
    public void ImageFolderWithCorruptPngNamesTheFile()
    {
        var dir = _temp.Dir("corrupt");
        _temp.File("corrupt/shirt/a.png", Make.Png(28, 28, 10));
        var png = Make.Png(28, 28, 20);
        _temp.File("corrupt/shoe/b.png", png[..(png.Length / 2)]);
        BothVerbsFail(dir, "b.png");
    }

    [Fact]
    public void ImageFolderWithNonImageFileNamesTheFile()
    {
        var dir = _temp.Dir("text");
        _temp.File("text/shirt/a.png", Make.Png(28, 28, 10));
        _temp.File("text/shoe/notes.txt", "not an image"u8.ToArray());
        BothVerbsFail(dir, "notes.txt");
    }

    [Fact]
    public void ImageFolderWithMixedSizesNamesTheFile()
    {
        var dir = _temp.Dir("mixed");
        _temp.File("mixed/shirt/a.png", Make.Png(28, 28, 10));
        _temp.File("mixed/shoe/b.png", Make.Png(30, 28, 20));
        BothVerbsFail(dir, "b.png", "30x28");
    }

    [Fact]
    public void EmptyFolderIsAnEmptyDataset()
    {
        var dir = _temp.Dir("empty");
        BothVerbsFail(dir, dir, "empty");
    }

    [Fact]
    public void EmptyClassFolderIsRefused()
    {
        var dir = _temp.Dir("emptyclass");
        _temp.File("emptyclass/shirt/a.png", Make.Png(28, 28, 10));
        _temp.Dir("emptyclass/shoe");
        BothVerbsFail(dir, "shoe", "empty");
    }

    [Fact]
    public void IdxWithZeroImagesIsRefused()
    {
        var dir = Make.IdxFolder(_temp, "zero", Make.IdxImages(0, 28, 28), Make.IdxLabels([]));
        BothVerbsFail(dir, "t10k-images-idx3-ubyte");
    }
}
