using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Data.Tests;

public class DatasetSplitsTests
{
    /// <summary>N images whose single pixel holds the row number, so every split row can be traced back.</summary>
    private static ImageDataset Numbered(int n) =>
        new("numbered", arange(Keep(n), ScalarType.Float32).reshape(n, 1, 1, 1), arange(Keep(n), ScalarType.Int64).remainder(Keep(10)),
            DatasetCatalog.DigitClassNames, new Bounds(0f, n));

    private static long[] Rows(ImageDataset ds) => ds.Images.flatten().data<float>().Select(v => (long)v).ToArray();

    [Fact]
    public void HoldOutPartitionsTheRowsReproducibly()
    {
        using var all = Numbered(100);
        var (train, val) = DatasetSplits.HoldOut(all, 20, seed: 7);
        using (train)
        using (val)
        {
            Assert.Equal(80, train.Count);
            Assert.Equal(20, val.Count);
            var t = Rows(train);
            var v = Rows(val);
            Assert.Empty(t.Intersect(v));
            Assert.Equal(Enumerable.Range(0, 100).Select(i => (long)i), t.Concat(v).Order());
            Assert.Equal(t.Order(), t); // file order kept within each part
            Assert.Equal(v.Select(r => r % 10), val.Labels.data<long>().ToArray()); // labels travel with their images

            var (train2, val2) = DatasetSplits.HoldOut(all, 20, seed: 7);
            using (train2) using (val2) Assert.Equal(v, Rows(val2));
            var (train3, val3) = DatasetSplits.HoldOut(all, 20, seed: 8);
            using (train3) using (val3) Assert.NotEqual(v, Rows(val3));
            Assert.NotEqual(Enumerable.Range(0, 20).Select(i => (long)i), v); // a permutation, not the first rows
        }
        Assert.Equal(100, all.Count); // the source is untouched
    }

    [Theory]
    [InlineData(0)]
    [InlineData(10)]
    [InlineData(-1)]
    public void HoldOutRejectsSizesThatLeaveAnEmptyPart(int valSize)
    {
        using var all = Numbered(10);
        Assert.ThrowsAny<InputException>(() => DatasetSplits.HoldOut(all, valSize, 1));
    }

    [Fact]
    public void ShuffledBatchesCoverEveryIndexOnceAndAreReproducible()
    {
        using var all = Numbered(103);
        long[] Order(long seed)
        {
            var seen = new List<long>();
            foreach (var batch in all.Batches(10, CPU, shuffleSeed: seed))
                using (batch)
                {
                    Assert.Equal(batch.Indices, batch.Inputs.flatten().data<float>().Select(v => (long)v)); // rows match indices
                    seen.AddRange(batch.Indices);
                }
            return seen.ToArray();
        }
        var first = Order(5);
        Assert.Equal(Enumerable.Range(0, 103).Select(i => (long)i), first.Order());
        Assert.Equal(first, Order(5));
        Assert.NotEqual(first, Order(6));
        Assert.NotEqual(first, first.Order());
        Assert.Equal(10, all.Batches(10, CPU, shuffleSeed: 5, dropLast: true).Select(b => { b.Dispose(); return 1; }).Count());
    }
}
