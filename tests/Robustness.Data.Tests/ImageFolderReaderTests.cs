using Robustness.Core;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;

namespace Robustness.Data.Tests;

public class ImageFolderReaderTests
{
    private static Rgb24 Color(int x, int y, int seed) => new((byte)(x * 40 + seed), (byte)(y * 30 + seed), (byte)(100 + seed));

    [Fact]
    public void RgbPngRoundTripWithSortedClassNames()
    {
        using var dir = new TempDir();
        // Created out of order: labels must follow ordinal folder order (cat < dog < zebra).
        dir.File("zebra/a.png", TestData.Png(4, 3, (x, y) => Color(x, y, 3)));
        dir.File("cat/b.png", TestData.Png(4, 3, (x, y) => Color(x, y, 1)));
        dir.File("cat/a.png", TestData.Png(4, 3, (x, y) => Color(x, y, 0)));
        dir.File("dog/a.png", TestData.Png(4, 3, (x, y) => Color(x, y, 2)));
        using var ds = ImageFolderReader.Load(dir.Path);
        Assert.Equal(new[] { "cat", "dog", "zebra" }, ds.ClassNames);
        Assert.Equal(new long[] { 4, 3, 3, 4 }, ds.Images.shape);
        Assert.Equal(new long[] { 0, 0, 1, 2 }, ds.Labels.data<long>().ToArray());
        // Row 1 is cat/b.png (seed 1); check every pixel of every channel.
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 4; x++)
            {
                var c = Color(x, y, 1);
                Assert.Equal(c.R / 255f, ds.Images[1, 0, y, x].ToSingle());
                Assert.Equal(c.G / 255f, ds.Images[1, 1, y, x].ToSingle());
                Assert.Equal(c.B / 255f, ds.Images[1, 2, y, x].ToSingle());
            }
    }

    [Fact]
    public void GrayImagesBecomeOneChannelAndDeclaredChannelsAreHonoured()
    {
        using var dir = new TempDir();
        dir.File("a/1.png", TestData.Png(3, 2, (x, y) => { byte v = (byte)(x * 50 + y * 9); return new Rgb24(v, v, v); }));
        dir.File("b/1.png", TestData.Png(3, 2, (x, y) => new Rgb24(7, 7, 7)));
        using var gray = ImageFolderReader.Load(dir.Path);
        Assert.Equal(new long[] { 2, 1, 2, 3 }, gray.Images.shape);
        Assert.Equal((2 * 50 + 1 * 9) / 255f, gray.Images[0, 0, 1, 2].ToSingle());
        using var rgb = ImageFolderReader.Load(dir.Path, channels: 3);
        Assert.Equal(new long[] { 2, 3, 2, 3 }, rgb.Images.shape);
        Assert.Equal(7 / 255f, rgb.Images[1, 2, 0, 0].ToSingle());
    }

    [Fact]
    public void ColorImagesDeclaredAsOneChannelUseLuminance()
    {
        using var dir = new TempDir();
        dir.File("red/1.png", TestData.Png(2, 2, (_, _) => new Rgb24(255, 0, 0)));
        dir.File("green/1.png", TestData.Png(2, 2, (_, _) => new Rgb24(0, 255, 0)));
        using var ds = ImageFolderReader.Load(dir.Path, channels: 1);
        Assert.Equal(new long[] { 2, 1, 2, 2 }, ds.Images.shape);
        float green = ds.Images[0, 0, 0, 0].ToSingle(), red = ds.Images[1, 0, 0, 0].ToSingle();
        // BT.709: red ≈ 0.21, green ≈ 0.72.
        Assert.InRange(red, 0.19f, 0.23f);
        Assert.InRange(green, 0.70f, 0.74f);
    }

    [Fact]
    public void MixedSizesAreResizedToADeclaredShape()
    {
        using var dir = new TempDir();
        dir.File("a/big.png", TestData.Png(16, 12, (_, _) => new Rgb24(200, 100, 50)));
        dir.File("b/small.jpg", TestData.Jpeg(5, 5, (_, _) => new Rgb24(10, 20, 30)));
        using var ds = ImageFolderReader.Load(dir.Path, channels: 3, height: 8, width: 8);
        Assert.Equal(new long[] { 2, 3, 8, 8 }, ds.Images.shape);
        // A uniform image stays uniform under resizing (up to JPEG error for the second).
        Assert.Equal(200 / 255f, ds.Images[0, 0, 4, 4].ToSingle(), 3);
        Assert.InRange(ds.Images[1, 2, 4, 4].ToSingle(), 20 / 255f, 40 / 255f);
        var min = ds.Images.min().ToSingle();
        var max = ds.Images.max().ToSingle();
        Assert.True(min >= 0f && max <= 1f);
    }

    [Fact]
    public void MixedSizesWithoutDeclaredShapeNameTheFile()
    {
        using var dir = new TempDir();
        dir.File("a/1.png", TestData.Png(4, 4, (_, _) => new Rgb24(1, 2, 3)));
        var odd = dir.File("b/odd.png", TestData.Png(5, 4, (_, _) => new Rgb24(1, 2, 3)));
        var e = Assert.Throws<DataFormatException>(() => ImageFolderReader.Load(dir.Path));
        Assert.StartsWith(odd + ": image is 5x4 but 1.png is 4x4", e.Message);
    }

    [Fact]
    public void CorruptPngNamesTheFile()
    {
        using var dir = new TempDir();
        dir.File("a/good.png", TestData.Png(4, 4, (_, _) => new Rgb24(1, 2, 3)));
        var png = TestData.Png(4, 4, (x, y) => new Rgb24((byte)x, (byte)y, 3));
        var broken = png[..20].Concat(new byte[png.Length - 20]).ToArray(); // valid signature, garbage chunks
        var path = dir.File("b/broken.png", broken);
        var e = Assert.Throws<DataFormatException>(() => ImageFolderReader.Load(dir.Path));
        Assert.StartsWith(path + ": corrupt", e.Message);

        File.WriteAllBytes(path, png[..(png.Length / 2)]);
        e = Assert.Throws<DataFormatException>(() => ImageFolderReader.Load(dir.Path));
        Assert.StartsWith(path + ": corrupt", e.Message);
    }

    [Fact]
    public void NonImageFileIsRejectedButDotFilesAreSkipped()
    {
        using var dir = new TempDir();
        dir.File("a/1.png", TestData.Png(2, 2, (_, _) => new Rgb24(1, 2, 3)));
        dir.File("a/.DS_Store", [1, 2, 3]);
        using (var ok = ImageFolderReader.Load(dir.Path)) Assert.Equal(1, ok.Count);
        var notes = dir.File("a/notes.txt", "hello"u8.ToArray());
        var e = Assert.Throws<DataFormatException>(() => ImageFolderReader.Load(dir.Path));
        Assert.Equal($"{notes}: not an image file (expected PNG or JPEG)", e.Message);
    }

    [Fact]
    public void EmptyDatasetAndEmptyClassFolderAreRejected()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<DataFormatException>(() => ImageFolderReader.Load(dir.Path));
        Assert.Contains("empty dataset", e.Message);
        dir.File("a/1.png", TestData.Png(2, 2, (_, _) => new Rgb24(1, 2, 3)));
        var empty = dir.Dir("b");
        e = Assert.Throws<DataFormatException>(() => ImageFolderReader.Load(dir.Path));
        Assert.StartsWith(empty + ": empty class folder", e.Message);
    }

    [Fact]
    public void BadShapeArgumentsAreInputErrors()
    {
        using var dir = new TempDir();
        Assert.ThrowsAny<InputException>(() => ImageFolderReader.Load(dir.Path, channels: 2));
        Assert.ThrowsAny<InputException>(() => ImageFolderReader.Load(dir.Path, height: 4));
        Assert.ThrowsAny<InputException>(() => ImageFolderReader.Load(Path.Combine(dir.Path, "missing")));
    }

    [Fact]
    public void ReadsIndependentlyEncodedCorpusPng()
    {
        using var dir = new TempDir();
        dir.File("only/tiny-rgb.png", File.ReadAllBytes(TestData.CorpusPath("tiny-rgb.png")));
        using var ds = ImageFolderReader.Load(dir.Path);
        Assert.Equal(new long[] { 1, 3, 3, 4 }, ds.Images.shape);
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 4; x++)
            {
                Assert.Equal(x * 60 / 255f, ds.Images[0, 0, y, x].ToSingle());
                Assert.Equal(y * 100 / 255f, ds.Images[0, 1, y, x].ToSingle());
                Assert.Equal((200 - x * 50) / 255f, ds.Images[0, 2, y, x].ToSingle());
            }
    }
}
