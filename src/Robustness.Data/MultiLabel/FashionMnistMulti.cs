using System.Security.Cryptography;
using Robustness.Core;
using static TorchSharp.torch;

namespace Robustness.Data;

/// <summary>A generated multi-label set held as bytes: canvases [N, H, W] (0..255), multi-hot labels [N, K] (0/1) and
/// the number of items placed on each canvas.</summary>
public sealed record MosaicSet(byte[] Pixels, byte[] MultiHot, int[] ItemCounts, int Count, int Height, int Width, int Classes)
{
    /// <summary>SHA-256 (lower-case hex) of, per canvas, its H·W pixel bytes followed by its K label bytes.</summary>
    public string Fingerprint()
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        int plane = Height * Width;
        for (int i = 0; i < Count; i++)
        {
            sha.AppendData(Pixels, i * plane, plane);
            sha.AppendData(MultiHot, i * Classes, Classes);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>As a dataset: float32 pixels in [0,1] (the IDX readers' byte/255 table), float32 multi-hot labels.</summary>
    public ImageDataset ToDataset(string name, IReadOnlyList<string> classNames, string source)
    {
        var pixels = PixelConversion.ToUnit(Pixels);
        var labels = MultiHot.Select(b => (float)b).ToArray();
        return new ImageDataset(name, tensor(pixels, [Count, 1, Height, Width], ScalarType.Float32),
            tensor(labels, [Count, Classes], ScalarType.Float32), classNames, Bounds.Unit, source);
    }
}

/// <summary>
/// <c>fashion-mnist-multi</c>: a multi-label set made from Fashion-MNIST. Each 1×56×56 canvas is a 2×2 grid of 28×28
/// cells; each cell is empty (black) or holds one Fashion-MNIST image; the label is the set of classes present (two
/// items of one class count once).
/// <list type="bullet">
/// <item>Items per canvas: uniform on {1, 2, 3, 4}; the occupied cells are a uniformly random subset of that size.</item>
/// <item>Items are taken in order from a stream of seeded permutations of the source split, one pass after another,
/// so every source image is used ⌊m⌋ or ⌈m⌉ times (m = items placed / images in the split, about 2.5).</item>
/// <item>The train split (60,000 canvases) uses only Fashion-MNIST training images, the test split (10,000) only test
/// images. Randomness is <see cref="StableRandom"/> with the fixed seeds below: the same source files give the same
/// bytes on every machine (<see cref="MosaicSet.Fingerprint"/>).</item>
/// </list>
/// </summary>
public static class FashionMnistMulti
{
    public const string Name = "fashion-mnist-multi";
    public const int Grid = 2;
    public const int MaxItems = Grid * Grid;
    public const int TrainCount = 60_000;
    public const int TestCount = 10_000;
    public const ulong TrainSeed = 0x6D6C2D7472616931UL; // "ml-trai1"
    public const ulong TestSeed = 0x6D6C2D7465737431UL;  // "ml-test1"

    /// <summary>P(n items on a canvas) for n = 1..4.</summary>
    public static IReadOnlyList<double> ItemCountDistribution { get; } = [0.25, 0.25, 0.25, 0.25];

    public static int CountOf(string split) => split == "train" ? TrainCount : TestCount;
    public static ulong SeedOf(string split) => split == "train" ? TrainSeed : TestSeed;

    /// <summary>
    /// Generates <paramref name="count"/> canvases from source images (bytes [n, h, w]) with class labels in
    /// 0..<paramref name="classes"/>−1. Deterministic in its arguments.
    /// </summary>
    public static MosaicSet Generate(byte[] images, int[] labels, int height, int width, int classes, int count, ulong seed)
    {
        int sources = labels.Length;
        if (sources == 0) throw new ArgumentException("no source images", nameof(labels));
        if (images.Length != (long)sources * height * width) throw new ArgumentException("image bytes do not match the count and size", nameof(images));
        if (count < 1) throw new ParameterException("Count", $"must be ≥ 1, got {count}");
        var random = new StableRandom(seed);
        int canvasH = Grid * height, canvasW = Grid * width, plane = canvasH * canvasW;
        var pixels = new byte[(long)count * plane];
        var multiHot = new byte[(long)count * classes];
        var counts = new int[count];
        int[] order = [];
        int next = 0;
        int NextItem()
        {
            if (next == order.Length)
            {
                order = Enumerable.Range(0, sources).ToArray();
                random.Shuffle(order);
                next = 0;
            }
            return order[next++];
        }

        var cells = new int[MaxItems];
        for (int c = 0; c < count; c++)
        {
            int n = 1 + random.NextBelow(MaxItems);
            for (int k = 0; k < MaxItems; k++) cells[k] = k;
            random.Shuffle(cells);
            counts[c] = n;
            for (int k = 0; k < n; k++)
            {
                int item = NextItem();
                int cell = cells[k], row0 = cell / Grid * height, col0 = cell % Grid * width;
                for (int r = 0; r < height; r++)
                    Array.Copy(images, ((long)item * height + r) * width, pixels, (long)c * plane + (long)(row0 + r) * canvasW + col0, width);
                int label = labels[item];
                if (label < 0 || label >= classes) throw new ArgumentException($"label {label} of source image {item} is outside 0..{classes - 1}", nameof(labels));
                multiHot[(long)c * classes + label] = 1;
            }
        }
        return new MosaicSet(pixels, multiHot, counts, count, canvasH, canvasW, classes);
    }

    /// <summary>Generates a split from the Fashion-MNIST IDX files of that split.</summary>
    public static MosaicSet Generate(string imagesPath, string labelsPath, string split)
    {
        var (bytes, n, rows, cols) = IdxReader.ReadImageBytes(imagesPath);
        var labels = IdxReader.ReadLabels(labelsPath, DatasetCatalog.FashionMnistClassNames.Count);
        if (labels.Length != n) throw new DataFormatException(labelsPath, $"{labels.Length:N0} labels but {imagesPath} holds {n:N0} images");
        return Generate(bytes, labels, rows, cols, DatasetCatalog.FashionMnistClassNames.Count, CountOf(split), SeedOf(split));
    }
}
