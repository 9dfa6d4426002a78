using TorchSharp;

namespace Robustness.Data.Tests;

public class Cifar10ReaderTests
{
    [Fact]
    public void RoundTripsRecordsAcrossSeveralBatchFilesInChwOrder()
    {
        using var dir = new TempDir();
        var first = dir.File("data_batch_1.bin", TestData.Cifar([3, 0, 9]));
        var second = dir.File("data_batch_2.bin", TestData.Cifar([7, 1]));
        using var ds = Cifar10Reader.Load(first, second);
        Assert.Equal(new long[] { 5, 3, 32, 32 }, ds.Images.shape);
        Assert.Equal(new long[] { 3, 0, 9, 7, 1 }, ds.Labels.data<long>().ToArray());
        Assert.Equal(Cifar10Reader.StandardClassNames, ds.ClassNames);
        // Record 1 of file 2 is row 4; byte j is channel j/1024, row (j%1024)/32, col j%32.
        var flat = ds.Images[4].flatten().data<float>().ToArray();
        for (int j = 0; j < 3072; j += 97)
            Assert.Equal((1 * 5 + j) % 256 / 255f, flat[j]);
        Assert.Equal((1 * 5 + 2 * 1024 + 3 * 32 + 4) % 256 / 255f, ds.Images[4, 2, 3, 4].ToSingle());
    }

    [Fact]
    public void ReadsIndependentlyEncodedCorpusFile()
    {
        var (pixels, labels) = Cifar10Reader.Read(TestData.CorpusPath("tiny_batch.bin"));
        Assert.Equal(new[] { 3, 9 }, labels);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3072; j += 13)
                Assert.Equal((i * 3072 + j) % 251 / 255f, pixels[i * 3072 + j]);
    }

    [Fact]
    public void ClassNamesComeFromBatchesMetaWhenPresent()
    {
        using var dir = new TempDir();
        var names = Enumerable.Range(0, 10).Select(i => $"class{i}").ToArray();
        dir.File("batches.meta.txt", System.Text.Encoding.UTF8.GetBytes(string.Join("\n", names) + "\n\n"));
        using var ds = Cifar10Reader.Load(dir.File("test_batch.bin", TestData.Cifar([2])));
        Assert.Equal(names, ds.ClassNames);

        dir.File("batches.meta.txt", "a\nb\n"u8.ToArray());
        var e = Assert.Throws<DataFormatException>(() => Cifar10Reader.Load(Path.Combine(dir.Path, "test_batch.bin")));
        Assert.Contains("batches.meta.txt: 2 class names, expected 10", e.Message);
    }

    [Fact]
    public void LengthNotAMultipleOfTheRecordSizeIsRejected()
    {
        using var dir = new TempDir();
        var bytes = TestData.Cifar([1, 2]);
        var path = dir.File("test_batch.bin", bytes[..^5]);
        var e = Assert.Throws<DataFormatException>(() => Cifar10Reader.Load(path));
        Assert.Contains($"{path}: length 6,141 is not a multiple of the CIFAR-10 record size 3,073", e.Message);
        Assert.Throws<DataFormatException>(() => Cifar10Reader.Load(dir.File("empty.bin", [])));
    }

    [Fact]
    public void LabelOutOfRangeIsRejected()
    {
        using var dir = new TempDir();
        var path = dir.File("test_batch.bin", TestData.Cifar([1, 10, 2]));
        var e = Assert.Throws<DataFormatException>(() => Cifar10Reader.Load(path));
        Assert.Contains("label 10 in record 1 is out of range 0..9", e.Message);
    }
}
