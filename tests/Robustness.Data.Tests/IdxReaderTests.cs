using Robustness.Core;
using TorchSharp;

namespace Robustness.Data.Tests;

public class IdxReaderTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void RoundTripsKnownPixelsAndLabels(bool gz)
    {
        using var dir = new TempDir();
        TestData.WriteIdxPair(dir.Path, "t10k", count: 7, rows: 5, cols: 4, gz: gz);
        var suffix = gz ? ".gz" : "";
        var (pixels, n, rows, cols) = IdxReader.ReadImages(Path.Combine(dir.Path, "t10k-images-idx3-ubyte" + suffix));
        Assert.Equal((7, 5, 4), (n, rows, cols));
        for (int i = 0; i < n; i++)
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    Assert.Equal(TestData.Pixel(i, r, c) / 255f, pixels[(i * rows + r) * cols + c]);
        var labels = IdxReader.ReadLabels(Path.Combine(dir.Path, "t10k-labels-idx1-ubyte" + suffix));
        Assert.Equal(TestData.Labels(7).Select(b => (int)b), labels);
    }

    [Fact]
    public void LoadBuildsDatasetOfShapeN1HW()
    {
        using var dir = new TempDir();
        TestData.WriteIdxPair(dir.Path, "t10k", count: 6, rows: 3, cols: 2);
        using var ds = IdxReader.Load(Path.Combine(dir.Path, "t10k-images-idx3-ubyte.gz"), Path.Combine(dir.Path, "t10k-labels-idx1-ubyte.gz"), "tiny");
        Assert.Equal(new long[] { 6, 1, 3, 2 }, ds.Images.shape);
        Assert.Equal(torch.ScalarType.Float32, ds.Images.dtype);
        Assert.Equal(torch.ScalarType.Int64, ds.Labels.dtype);
        Assert.Equal(TestData.Pixel(4, 2, 1) / 255f, ds.Images[4, 0, 2, 1].ToSingle());
        Assert.Equal(TestData.Labels(6).Select(b => (long)b), ds.Labels.data<long>().ToArray());
        Assert.Equal(DatasetCatalog.DigitClassNames, ds.ClassNames);
    }

    [Fact]
    public void ReadsIndependentlyEncodedCorpusFiles()
    {
        foreach (var suffix in new[] { "", ".gz" })
        {
            var (pixels, n, rows, cols) = IdxReader.ReadImages(TestData.CorpusPath("tiny-images-idx3-ubyte" + suffix));
            Assert.Equal((3, 2, 3), (n, rows, cols));
            for (int i = 0; i < n; i++)
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < cols; c++)
                        Assert.Equal((i * 6 + r * 3 + c) * 13 % 256 / 255f, pixels[(i * rows + r) * cols + c]);
            Assert.Equal(new[] { 0, 9, 4 }, IdxReader.ReadLabels(TestData.CorpusPath("tiny-labels-idx1-ubyte" + suffix)));
        }
    }

    [Fact]
    public void GzipIsDetectedByContentNotExtension()
    {
        using var dir = new TempDir();
        var gzNoExt = dir.File("images-gz-without-extension", TestData.Gzip(TestData.IdxImages(2, 2, 2)));
        var rawWithGzExt = dir.File("images-raw.gz", TestData.IdxImages(2, 2, 2));
        Assert.Equal(2, IdxReader.ReadImages(gzNoExt).Count);
        Assert.Equal(2, IdxReader.ReadImages(rawWithGzExt).Count);
    }

    [Fact]
    public void WrongMagicNamesFileAndBothNumbers()
    {
        using var dir = new TempDir();
        var path = dir.File("t10k-images-idx3-ubyte.gz", TestData.Gzip(TestData.IdxLabels([1, 2, 3])));
        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));
        Assert.Equal($"{path}: wrong IDX magic 0x00000801, expected 0x00000803 (images)", e.Message);
        var labelsPath = dir.File("labels", TestData.IdxImages(1, 2, 2));
        var e2 = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(labelsPath));
        Assert.Contains("wrong IDX magic 0x00000803, expected 0x00000801 (labels)", e2.Message);
    }

    [Fact]
    public void TruncatedGzipIsADataFormatError()
    {
        using var dir = new TempDir();
        var gz = TestData.Gzip(TestData.IdxImages(50, 10, 10));
        foreach (int keep in new[] { 1, 5, 12, gz.Length / 2, gz.Length - 8, gz.Length - 4, gz.Length - 1 })
        {
            var path = dir.File($"cut{keep}.gz", gz[..keep]);
            var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));
            Assert.StartsWith(path + ": ", e.Message);
        }
    }

    [Fact]
    public void TruncatedRawPayloadAndHeaderAreRejected()
    {
        using var dir = new TempDir();
        var full = TestData.IdxImages(4, 3, 3);
        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(dir.File("short", full[..^1])));
        Assert.Contains("truncated", e.Message);
        e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(dir.File("header", full[..10])));
        Assert.Contains("truncated IDX header", e.Message);
        e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(dir.File("tiny", full[..2])));
        Assert.Contains("too short for an IDX header", e.Message);
        e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(dir.File("long", [.. full, 7])));
        Assert.Contains("unexpected", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void HeaderClaimingHugeCountFailsFastWithoutAllocatingIt(bool gz)
    {
        using var dir = new TempDir();
        // 2^30 images of 28x28 would be 840 GB; the file holds 3 images.
        var bytes = TestData.IdxImages(3, 28, 28, declaredCount: 1 << 30);
        var path = dir.File("huge", gz ? TestData.Gzip(bytes) : bytes);
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        Assert.Contains("1,073,741,824", e.Message);
        Assert.True(allocated < 16L << 20, $"allocated {allocated:N0} bytes for a file of {bytes.Length:N0}");
    }

    [Fact]
    public void HeaderClaimingModerateCountOverSmallGzipAllocatesOnlyWhatIsPresent()
    {
        using var dir = new TempDir();
        // Claims 1.5 GB (below the 2 GiB cap, so the chunked reader is what has to protect us).
        var path = dir.File("claims.gz", TestData.Gzip(TestData.IdxImages(3, 28, 28, declaredCount: 2_000_000)));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(path));
        Assert.Contains("truncated", e.Message);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16L << 20);
    }

    [Fact]
    public void ImageLabelCountMismatchNamesBothFiles()
    {
        using var dir = new TempDir();
        var images = dir.File("imgs", TestData.IdxImages(5, 2, 2));
        var labels = dir.File("lbls", TestData.IdxLabels(TestData.Labels(4)));
        var e = Assert.Throws<DataFormatException>(() => IdxReader.Load(images, labels, "x"));
        Assert.Contains("lbls", e.Message);
        Assert.Contains("imgs", e.Message);
        Assert.Contains("4 labels", e.Message);
    }

    [Fact]
    public void LabelOutOfRangeIsRejected()
    {
        using var dir = new TempDir();
        var path = dir.File("lbls", TestData.IdxLabels([1, 2, 10, 3]));
        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(path));
        Assert.Contains("label 10 at index 2 is out of range 0..9", e.Message);
        Assert.Equal(new[] { 1, 2, 10, 3 }, IdxReader.ReadLabels(path, numClasses: 11));
        var e2 = Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(path, numClasses: 3));
        Assert.Contains("out of range 0..2", e2.Message);
    }

    [Fact]
    public void ZeroCountsAndEmptyImagesAreRejected()
    {
        using var dir = new TempDir();
        Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(dir.File("zero", TestData.IdxImages(0, 2, 2))));
        Assert.Throws<DataFormatException>(() => IdxReader.ReadImages(dir.File("flat", TestData.IdxImages(3, 0, 2))));
        Assert.Throws<DataFormatException>(() => IdxReader.ReadLabels(dir.File("nolabels", TestData.IdxLabels([]))));
    }

    [Fact]
    public void MissingFileIsAnInputError()
    {
        var e = Assert.Throws<DataFormatException>(() => IdxReader.ReadImages("/nonexistent/dir/t10k-images-idx3-ubyte.gz"));
        Assert.IsAssignableFrom<InputException>(e);
        Assert.Contains("/nonexistent/dir/t10k-images-idx3-ubyte.gz", e.Message);
    }
}
