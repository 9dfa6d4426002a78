using CsCheck;
using Robustness.Core;
using TorchSharp;

namespace Robustness.Data.Tests;

/// <summary>fashion-mnist-multi (deterministic mosaics), the stable PRNG behind it, and the labels.csv reader.</summary>
public class MultiLabelDataTests
{
    [Fact]
    public void StableRandomIsXoshiro256StarStarSeededBySplitMix64()
    {
        // Reference values from an independent implementation of the published algorithms (Blackman & Vigna).
        var r = new StableRandom(12345);
        Assert.Equal(0xbe6a36374160d49bUL, r.NextUInt64());
        Assert.Equal(0x214aaa0637a688c6UL, r.NextUInt64());
        Assert.Equal(0xf69d16de9954d388UL, r.NextUInt64());
        Assert.Equal(0x0c60048c4e96e033UL, r.NextUInt64());
        var counts = new int[7];
        var u = new StableRandom(1);
        for (int i = 0; i < 70_000; i++) counts[u.NextBelow(7)]++;
        Assert.All(counts, c => Assert.InRange(c, 9_400, 10_600));
    }

    private static (byte[] Images, int[] Labels) Source(int n, int classes = 10)
    {
        // Never 0, so occupied cells are detectable; pixels 0 and 1 encode the image's index.
        var images = new byte[n * 28 * 28];
        for (int i = 0; i < n; i++)
        {
            for (int p = 2; p < 28 * 28; p++) images[i * 784 + p] = (byte)(1 + (i * 13 + p) % 254);
            images[i * 784] = (byte)(1 + i % 250);
            images[i * 784 + 1] = (byte)(1 + i / 250);
        }
        return (images, Enumerable.Range(0, n).Select(i => i % classes).ToArray());
    }

    [Fact]
    public void MosaicsFollowTheDocumentedRecipe()
    {
        var (images, labels) = Source(500);
        var set = FashionMnistMulti.Generate(images, labels, 28, 28, 10, 2000, seed: 7);
        Assert.Equal(56, set.Height);
        var again = FashionMnistMulti.Generate(images, labels, 28, 28, 10, 2000, seed: 7);
        Assert.Equal(set.Fingerprint(), again.Fingerprint());
        Assert.NotEqual(set.Fingerprint(), FashionMnistMulti.Generate(images, labels, 28, 28, 10, 2000, seed: 8).Fingerprint());

        var usage = new int[500];
        var perCount = new int[5];
        for (int c = 0; c < set.Count; c++)
        {
            int occupied = 0;
            var classes = new HashSet<int>();
            for (int cell = 0; cell < 4; cell++)
            {
                int r0 = cell / 2 * 28, c0 = cell % 2 * 28;
                byte first = set.Pixels[c * 3136 + r0 * 56 + c0];
                bool filled = first != 0;
                int nonZero = 0;
                for (int r = 0; r < 28; r++)
                    for (int q = 0; q < 28; q++)
                        if (set.Pixels[c * 3136 + (r0 + r) * 56 + c0 + q] != 0) nonZero++;
                Assert.Equal(filled ? 784 : 0, nonZero);
                if (!filled) continue;
                occupied++;
                int item = first - 1 + 250 * (set.Pixels[c * 3136 + r0 * 56 + c0 + 1] - 1);
                // The whole cell is that source image.
                for (int r = 0; r < 28; r++)
                    Assert.True(images.AsSpan(item * 784 + r * 28, 28).SequenceEqual(set.Pixels.AsSpan(c * 3136 + (r0 + r) * 56 + c0, 28)));
                usage[item]++;
                classes.Add(labels[item]);
            }
            Assert.InRange(occupied, 1, 4);
            Assert.Equal(set.ItemCounts[c], occupied);
            perCount[occupied]++;
            // The label is exactly the set of classes present.
            for (int k = 0; k < 10; k++) Assert.Equal(classes.Contains(k) ? (byte)1 : (byte)0, set.MultiHot[c * 10 + k]);
        }
        // Items per canvas uniform on 1..4 (2000 canvases: each near 500).
        for (int k = 1; k <= 4; k++) Assert.InRange(perCount[k], 420, 580);
        // Every source image is used ⌊m⌋ or ⌈m⌉ times (passes over permutations).
        double m = set.ItemCounts.Sum() / 500.0;
        Assert.All(usage, u => Assert.InRange(u, (int)Math.Floor(m), (int)Math.Ceiling(m)));
    }

    [Fact]
    public void ShippedTestSplitGeneratesTheDocumentedBytes()
    {
        using var test = DatasetCatalog.Load(FashionMnistMulti.Name, "test");
        Assert.Equal(10_000, test.Count);
        Assert.True(test.MultiLabel);
        Assert.Equal(new[] { 1, 56, 56 }, test.SampleShape);
        Assert.Equal(DatasetCatalog.FashionMnistClassNames, test.ClassNames);
        // The fingerprint documented in data/README.md: same bytes on every machine.
        Assert.Equal("784aec4ec1f1887a2b0af2bfe808b9c926f57e04c69d8af3ee47baadfce13c56", MultiLabelDescription.Fingerprint(test));
        var description = DatasetCatalog.Describe(test);
        Assert.Contains("label cardinality", description);
        Assert.Contains("items per canvas", description);
        Assert.Contains("Ankle boot", description);
    }

    [Fact]
    public void LabelledFolderRoundTripsAndReadsThroughTheCatalog()
    {
        using var dir = new TempDir();
        var (images, labels) = Source(40);
        var set = FashionMnistMulti.Generate(images, labels, 28, 28, 10, 12, seed: 3);
        using var data = set.ToDataset("mosaic", DatasetCatalog.FashionMnistClassNames, "test");
        var folder = Path.Combine(dir.Path, "ml", "test");
        LabelsCsvReader.Write(data, folder);
        using var back = DatasetCatalog.Load(Path.Combine(dir.Path, "ml"), "test");
        Assert.True(back.MultiLabel);
        Assert.Equal(DatasetCatalog.FashionMnistClassNames, back.ClassNames);
        Assert.Equal(MultiLabelDescription.Fingerprint(data), MultiLabelDescription.Fingerprint(back));
    }

    private static string Folder(TempDir dir, string csv, string? classes = "a\nb\nc\n", params string[] files)
    {
        var root = dir.Dir("set");
        foreach (var f in files) dir.File(Path.Combine("set", f), TestData.Png(4, 4, (x, y) => new SixLabors.ImageSharp.PixelFormats.Rgb24(9, 9, 9)));
        File.WriteAllText(Path.Combine(root, LabelsCsvReader.LabelsFile), csv);
        if (classes is not null) File.WriteAllText(Path.Combine(root, LabelsCsvReader.ClassesFile), classes);
        return root;
    }

    [Theory]
    [InlineData("file,labels\nx.png,a;b\nmissing.png,a\n", "line 3: image 'missing.png' not found")]
    [InlineData("x.png,a;zz\ny.png,b\n", "line 1: unknown label 'zz'")]
    [InlineData("x.png,a\ny.png,b\nx.png,c\n", "line 3: 'x.png' is listed twice (also on line 1)")]
    [InlineData("x.png,\ny.png,b\n", "line 1: 'x.png' has an empty label set")]
    [InlineData("x.png,a;a\ny.png,b\n", "line 1: label 'a' is given twice")]
    [InlineData("x.png,a\n", "image has no row in labels.csv")]
    [InlineData("x.png,a\ny.png,b,c\n", "line 2: more than two fields")]
    [InlineData("x.png a\n", "line 1: expected 'file,label1;label2;…'")]
    [InlineData("../x.png,a\ny.png,b\n", "lies outside the folder")]
    [InlineData("\"x.png,a\ny.png,b\n", "unterminated quoted file name")]
    [InlineData("", "no rows")]
    public void BadLabelsCsvIsOneLineNamingFileAndLine(string csv, string expected)
    {
        using var dir = new TempDir();
        var root = Folder(dir, csv, files: ["x.png", "y.png"]);
        var e = Assert.ThrowsAny<InputException>(() => DatasetCatalog.Load(root, "test"));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void EmptyLabelSetsOnlyWhenAllowedAndClassesDefaultToTheLabelsSeen()
    {
        using var dir = new TempDir();
        var root = Folder(dir, "x.png,\n\"y.png\",b;a\n", classes: null, files: ["x.png", "y.png"]);
        Assert.ThrowsAny<InputException>(() => DatasetCatalog.Load(root, "test"));
        using var ds = DatasetCatalog.Load(root, "test", null, new ImageFolderOptions { AllowEmptyLabels = true });
        Assert.Equal(new[] { "a", "b" }, ds.ClassNames);
        Assert.Equal(new float[] { 0, 0, 1, 1 }, ds.Labels.data<float>().ToArray());
    }

    [Fact]
    public void BadClassesFileIsRefused()
    {
        using var dir = new TempDir();
        var root = Folder(dir, "x.png,a\ny.png,b\n", classes: "a\nb\na\n", files: ["x.png", "y.png"]);
        var e = Assert.ThrowsAny<InputException>(() => DatasetCatalog.Load(root, "test"));
        Assert.Contains("classes.txt: line 3: class 'a' is listed twice", e.Message);
    }

    [Fact]
    public void MutatedLabelsCsvParsesOrFailsWithDataErrors()
    {
        var seed = System.Text.Encoding.UTF8.GetBytes("file,labels\nx.png,a;b\n\"y.png\",c\n");
        int parsed = 0, rejected = 0;
        Gen.Select(Gen.Int[0, 3], Gen.Int[0, int.MaxValue], Gen.Byte).Array[1, 5].Sample(edits =>
        {
            var text = System.Text.Encoding.UTF8.GetString(FuzzTests.Mutate(seed, edits));
            try { LabelsCsvReader.ParseRows("labels.csv", text); Interlocked.Increment(ref parsed); }
            catch (InputException) { Interlocked.Increment(ref rejected); }
        }, iter: 2000);
        Assert.True(parsed > 0 && rejected > 0, $"parsed {parsed}, rejected {rejected}");
    }
}
