using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Robustness.Core;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Data;

/// <summary>What <c>robust data</c> says about a multi-label set.</summary>
public static class MultiLabelDescription
{
    /// <summary>Per-class counts, label-set sizes and cardinality of multi-hot labels [N, K].</summary>
    public sealed record Statistics(int Count, int Classes, long[] PerClass, long[] SetSizes, double Cardinality, double Density);

    public static Statistics Measure(ImageDataset dataset)
    {
        if (!dataset.MultiLabel) throw new ArgumentException("not a multi-label dataset", nameof(dataset));
        using var scope = NewDisposeScope();
        var on = dataset.Labels.gt(Keep(0.5));
        var perClass = on.sum([0L], type: ScalarType.Int64).data<long>().ToArray();
        var sizes = on.sum([1L], type: ScalarType.Int64);
        var setSizes = bincount(sizes, minlength: dataset.NumClasses + 1).data<long>().ToArray();
        double cardinality = dataset.Count == 0 ? 0 : perClass.Sum() / (double)dataset.Count;
        return new Statistics(dataset.Count, dataset.NumClasses, perClass, setSizes, cardinality, dataset.NumClasses == 0 ? 0 : cardinality / dataset.NumClasses);
    }

    /// <summary>
    /// SHA-256 (lower-case hex) of the content as bytes: per sample its pixels as round(255·v) followed by its K label
    /// bytes (0/1). For <see cref="FashionMnistMulti"/> this equals <see cref="MosaicSet.Fingerprint"/>.
    /// </summary>
    public static string Fingerprint(ImageDataset dataset)
    {
        using var scope = NewDisposeScope();
        var pixels = dataset.Images.mul(Keep(255)).round().clamp(Keep(0), Keep(255)).to(ScalarType.Byte).contiguous().data<byte>().ToArray();
        var labels = dataset.Labels.gt(Keep(0.5)).to(ScalarType.Byte).contiguous().data<byte>().ToArray();
        int plane = pixels.Length / Math.Max(1, dataset.Count), k = dataset.NumClasses;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (int i = 0; i < dataset.Count; i++)
        {
            sha.AppendData(pixels, i * plane, plane);
            sha.AppendData(labels, i * k, k);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>Items per canvas of a 2×2 mosaic (occupied cells: any non-zero pixel), counts for 0..4.</summary>
    public static long[] ItemsPerCanvas(ImageDataset dataset)
    {
        using var scope = NewDisposeScope();
        var (h, w) = (dataset.Images.shape[2], dataset.Images.shape[3]);
        var cells = dataset.Images.reshape(dataset.Count, dataset.Images.shape[1], FashionMnistMulti.Grid, h / FashionMnistMulti.Grid, FashionMnistMulti.Grid, w / FashionMnistMulti.Grid);
        var occupied = cells.amax([1L, 3L, 5L]).gt(Keep(0)).sum([1L, 2L], type: ScalarType.Int64);
        return bincount(occupied, minlength: FashionMnistMulti.MaxItems + 1).data<long>().ToArray();
    }

    public static string Describe(ImageDataset dataset)
    {
        var s = Measure(dataset);
        string I(double v) => v.ToString("N0", CultureInfo.InvariantCulture);
        string P(double v) => (100 * v).ToString("0.0", CultureInfo.InvariantCulture) + "%";
        var sb = new StringBuilder();
        sb.AppendLine($"{dataset.Name}: {I(dataset.Count)} images, shape [{string.Join(",", dataset.SampleShape)}], {dataset.NumClasses} labels (multi-label), pixels in [{dataset.Bounds.Lower:G},{dataset.Bounds.Upper:G}]");
        sb.AppendLine($"source: {dataset.Source}");
        sb.AppendLine($"label cardinality: {s.Cardinality.ToString("0.###", CultureInfo.InvariantCulture)} labels per image (density {s.Density.ToString("0.####", CultureInfo.InvariantCulture)})");
        sb.Append("label-set sizes: ");
        sb.AppendJoin(", ", Enumerable.Range(0, s.SetSizes.Length).Where(n => s.SetSizes[n] > 0).Select(n => $"{n}: {I(s.SetSizes[n])} ({P(s.SetSizes[n] / (double)Math.Max(1, s.Count))})"));
        sb.AppendLine();
        if (dataset.Name == FashionMnistMulti.Name && dataset.SampleShape.SequenceEqual([1, 56, 56]))
        {
            var items = ItemsPerCanvas(dataset);
            sb.Append("items per canvas: ");
            sb.AppendJoin(", ", Enumerable.Range(1, FashionMnistMulti.MaxItems).Select(n => $"{n}: {I(items[n])} ({P(items[n] / (double)Math.Max(1, s.Count))})"));
            sb.AppendLine(" (generated uniform on 1–4)");
        }
        sb.Append("label frequencies: ");
        sb.AppendJoin(", ", Enumerable.Range(0, s.Classes).Select(c => $"{dataset.ClassNames[c]} {I(s.PerClass[c])} ({P(s.PerClass[c] / (double)Math.Max(1, s.Count))})"));
        sb.AppendLine();
        sb.Append($"fingerprint (SHA-256 of pixel and label bytes): {Fingerprint(dataset)}");
        return sb.ToString();
    }
}
