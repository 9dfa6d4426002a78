using Robustness.Core;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;

namespace Robustness.Data.Tests;

/// <summary>
/// All lookups live in this one class: xunit runs a class's tests one at a time, and one test here sets
/// $ROBUSTNESS_DATA, which every name lookup reads.
/// </summary>
public class DatasetCatalogTests
{
    [Fact]
    public void ShippedFashionMnistTestSetLoadsThroughTheCatalog()
    {
        var repoData = DatasetCatalog.FindRepoData();
        Assert.NotNull(repoData);
        Assert.True(File.Exists(Path.Combine(repoData, "fashion-mnist", "t10k-images-idx3-ubyte.gz")));

        using var ds = DatasetCatalog.Load("fashion-mnist", "test");
        Assert.Equal(10_000, ds.Count);
        Assert.Equal(new[] { 1, 28, 28 }, ds.SampleShape);
        Assert.Equal(DatasetCatalog.FashionMnistClassNames, ds.ClassNames);
        Assert.True(ds.Images.min().ToSingle() >= 0f);
        Assert.True(ds.Images.max().ToSingle() <= 1f);
        Assert.Equal(1f, ds.Images.max().ToSingle()); // the set has saturated pixels: the /255 scaling reaches 1
        var perClass = torch.bincount(ds.Labels, minlength: 10).data<long>().ToArray();
        Assert.All(perClass, c => Assert.Equal(1000, c));
        Assert.StartsWith(Path.Combine(repoData, "fashion-mnist"), ds.Source);

        var description = DatasetCatalog.Describe(ds);
        Assert.Contains("10,000 images", description);
        Assert.Contains("[1,28,28]", description);
        Assert.Contains("Ankle boot 1,000", description);
    }

    [Fact]
    public void DataDirIsSearchedFirstForTheRequestedSplit()
    {
        using var dir = new TempDir();
        TestData.WriteIdxPair(Path.Combine(dir.Path, "fashion-mnist"), "train", count: 12, rows: 28, cols: 28);
        using var train = DatasetCatalog.Load("fashion-mnist", "train", dataDir: dir.Path);
        Assert.Equal(12, train.Count);
        Assert.Equal(DatasetCatalog.FashionMnistClassNames, train.ClassNames);
        Assert.StartsWith(dir.Path, train.Source);

        // The data dir has no test split: the lookup falls through to the repository's shipped test set.
        using var test = DatasetCatalog.Load("fashion-mnist", "test", dataDir: dir.Path);
        Assert.Equal(10_000, test.Count);
    }

    [Fact]
    public void DataDirMayBeTheDatasetFolderItself()
    {
        using var dir = new TempDir();
        TestData.WriteIdxPair(dir.Path, "t10k", count: 5, gz: false);
        using var ds = DatasetCatalog.Load("mnist", "test", dataDir: dir.Path);
        Assert.Equal(5, ds.Count);
        Assert.Equal(DatasetCatalog.DigitClassNames, ds.ClassNames);
    }

    [Fact]
    public void EnvironmentVariableIsSearchedAfterDataDir()
    {
        using var env = new TempDir();
        using var explicitDir = new TempDir();
        TestData.WriteIdxPair(Path.Combine(env.Path, "mnist"), "t10k", count: 3);
        var previous = Environment.GetEnvironmentVariable(DatasetCatalog.EnvironmentVariable);
        Environment.SetEnvironmentVariable(DatasetCatalog.EnvironmentVariable, env.Path);
        try
        {
            using (var fromEnv = DatasetCatalog.Load("mnist", "test")) Assert.Equal(3, fromEnv.Count);
            TestData.WriteIdxPair(Path.Combine(explicitDir.Path, "mnist"), "t10k", count: 4);
            using (var fromDir = DatasetCatalog.Load("mnist", "test", explicitDir.Path)) Assert.Equal(4, fromDir.Count);
        }
        finally
        {
            Environment.SetEnvironmentVariable(DatasetCatalog.EnvironmentVariable, previous);
        }
    }

    [Theory]
    [InlineData("mnist", "download train-images-idx3-ubyte.gz")]
    [InlineData("cifar10", "cifar-10-binary.tar.gz")]
    public void MissingDatasetSaysWhereItLookedAndHowToGetIt(string name, string advice)
    {
        if (Directory.Exists(Path.Combine(DatasetCatalog.SystemDatasetsDirectory, name))) return; // installed on this machine: nothing is missing
        using var dir = new TempDir();
        var e = Assert.ThrowsAny<InputException>(() => DatasetCatalog.Load(name, "test", dir.Path));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains($"dataset '{name}' (test split) not found", e.Message);
        Assert.Contains(Path.Combine(dir.Path, name), e.Message);
        Assert.Contains(Path.Combine(DatasetCatalog.SystemDatasetsDirectory, name), e.Message);
        Assert.Contains(Path.Combine(DatasetCatalog.FindRepoData()!, name), e.Message);
        Assert.Contains(advice, e.Message);
    }

    [Fact]
    public void MissingFashionMnistSuggestsTheDebianPackage()
    {
        using var dir = new TempDir();
        // A split name check comes first; then a path that exists nowhere.
        Assert.ThrowsAny<InputException>(() => DatasetCatalog.Load("fashion-mnist", "validation"));
        var e = Assert.ThrowsAny<InputException>(() => DatasetCatalog.Load(Path.Combine(dir.Path, "nothing-here")));
        Assert.Contains("neither a known dataset", e.Message);
        if (Directory.Exists(Path.Combine(DatasetCatalog.SystemDatasetsDirectory, "fashion-mnist"))) return;
        var missing = Assert.ThrowsAny<InputException>(() => DatasetCatalog.Load("fashion-mnist", "train", dir.Path));
        Assert.Contains("apt-get install dataset-fashion-mnist", missing.Message);
    }

    [Fact]
    public void Cifar10ByNameAcceptsTheBatchesBinSubfolder()
    {
        using var dir = new TempDir();
        dir.File("cifar10/cifar-10-batches-bin/data_batch_2.bin", TestData.Cifar([4]));
        dir.File("cifar10/cifar-10-batches-bin/data_batch_1.bin", TestData.Cifar([1, 2]));
        dir.File("cifar10/cifar-10-batches-bin/test_batch.bin", TestData.Cifar([9, 8, 7]));
        using var train = DatasetCatalog.Load("cifar10", "train", dir.Path);
        Assert.Equal(new long[] { 1, 2, 4 }, train.Labels.data<long>().ToArray()); // batch files in numeric order
        using var test = DatasetCatalog.Load("CIFAR10", "test", dir.Path);
        Assert.Equal(new long[] { 3, 3, 32, 32 }, test.Images.shape);
    }

    [Fact]
    public void PathsLoadIdxCifarAndImageFolderTrees()
    {
        using var dir = new TempDir();
        TestData.WriteIdxPair(Path.Combine(dir.Path, "my-fashion-set"), "t10k", count: 2);
        using (var idx = DatasetCatalog.Load(Path.Combine(dir.Path, "my-fashion-set")))
            Assert.Equal(DatasetCatalog.FashionMnistClassNames, idx.ClassNames);

        var cifar = dir.File("c/test_batch.bin", TestData.Cifar([5]));
        using (var byFolder = DatasetCatalog.Load(Path.Combine(dir.Path, "c"))) Assert.Equal(1, byFolder.Count);
        using (var byFile = DatasetCatalog.Load(cifar)) Assert.Equal(1, byFile.Count);

        dir.File("tree/train/a/1.png", TestData.Png(3, 3, (_, _) => new Rgb24(1, 1, 1)));
        dir.File("tree/train/b/1.png", TestData.Png(3, 3, (_, _) => new Rgb24(2, 2, 2)));
        dir.File("tree/test/a/1.png", TestData.Png(3, 3, (_, _) => new Rgb24(3, 3, 3)));
        using (var treeTrain = DatasetCatalog.Load(Path.Combine(dir.Path, "tree"), "train")) Assert.Equal(2, treeTrain.Count);
        using (var treeTest = DatasetCatalog.Load(Path.Combine(dir.Path, "tree"), "test")) Assert.Equal(new[] { "a" }, treeTest.ClassNames);

        dir.File("flat/x/1.png", TestData.Png(6, 4, (_, _) => new Rgb24(9, 8, 7)));
        using var flat = DatasetCatalog.Load(Path.Combine(dir.Path, "flat"), "test", null, channels: 1, height: 2, width: 2);
        Assert.Equal(new long[] { 1, 1, 2, 2 }, flat.Images.shape);
    }

    [Fact]
    public void IdxFolderWithOnlyOneFileOfThePairIsAnError()
    {
        using var dir = new TempDir();
        dir.File("mnist/t10k-images-idx3-ubyte.gz", TestData.Gzip(TestData.IdxImages(2, 28, 28)));
        var e = Assert.Throws<DataFormatException>(() => DatasetCatalog.Load("mnist", "test", dir.Path));
        Assert.Contains("t10k-labels-idx1-ubyte", e.Message);
    }
}
