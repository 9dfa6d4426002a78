using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Core;

/// <summary>
/// A labelled image set held in memory: float32 images [N, C, H, W] in <see cref="Bounds"/> and labels (CPU tensors,
/// owned by this object): int64 class indices [N], or, for a multi-label set, float32 multi-hot rows [N, K] (1 where the
/// class is present) with K = the number of class names. Readers in Robustness.Data produce it; training and
/// evaluation consume it; batches carry the labels in the same form.
/// </summary>
public sealed class ImageDataset : IDisposable
{
    public ImageDataset(string name, Tensor images, Tensor labels, IReadOnlyList<string> classNames, Bounds? bounds = null, string? source = null)
    {
        if (images.dim() != 4) throw new ArgumentException($"images must be [N,C,H,W], got [{string.Join(",", images.shape)}]");
        if (labels.shape[0] != images.shape[0]) throw new ArgumentException($"{images.shape[0]} images but {labels.shape[0]} labels");
        if (labels.dim() == 2)
        {
            if (labels.dtype != ScalarType.Float32) throw new ArgumentException($"multi-hot labels must be float32, got {labels.dtype}");
            if (labels.shape[1] != classNames.Count) throw new ArgumentException($"multi-hot labels have {labels.shape[1]} columns but there are {classNames.Count} class names");
        }
        else if (labels.dim() != 1 || labels.dtype != ScalarType.Int64)
            throw new ArgumentException($"labels must be int64 [N] or float32 multi-hot [N,K], got {labels.dtype} [{string.Join(",", labels.shape)}]");
        Name = name;
        Images = images;
        Labels = labels;
        ClassNames = classNames;
        Bounds = bounds ?? Core.Bounds.Unit;
        Source = source ?? name;
    }

    public string Name { get; }
    /// <summary>Where it was read from (a path), for provenance.</summary>
    public string Source { get; }
    public Tensor Images { get; }
    public Tensor Labels { get; }
    public IReadOnlyList<string> ClassNames { get; }
    public Bounds Bounds { get; }
    public int Count => (int)Images.shape[0];
    public int[] SampleShape => Images.shape.Skip(1).Select(d => (int)d).ToArray();
    public int NumClasses => ClassNames.Count;
    /// <summary>True when <see cref="Labels"/> are multi-hot rows [N, K] (several classes per image).</summary>
    public bool MultiLabel => Labels.dim() == 2;

    /// <summary>The rows at <paramref name="indices"/>, as a new dataset (copies those rows only).</summary>
    public ImageDataset Subset(IReadOnlyList<long> indices, string? name = null)
    {
        using var idx = tensor(indices.ToArray(), ScalarType.Int64);
        return new ImageDataset(name ?? Name, Images.index_select(0, idx), Labels.index_select(0, idx), ClassNames, Bounds, Source);
    }

    /// <summary>The first <paramref name="n"/> rows in file order.</summary>
    public ImageDataset Take(int n) => Subset(Enumerable.Range(0, Math.Min(n, Count)).Select(i => (long)i).ToArray());

    /// <summary>Batches in file order or shuffled by <paramref name="shuffleSeed"/>; each batch is copied to the device on demand.</summary>
    public IEnumerable<Batch> Batches(int batchSize, Device device, long? shuffleSeed = null, bool dropLast = false)
    {
        if (batchSize <= 0) throw new ParameterException("BatchSize", $"must be > 0, got {batchSize}");
        long[] order = Enumerable.Range(0, Count).Select(i => (long)i).ToArray();
        if (shuffleSeed is { } seed)
        {
            var rng = new Random(unchecked((int)(seed ^ (seed >> 32))));
            rng.Shuffle(order);
        }
        for (int start = 0; start < Count; start += batchSize)
        {
            int len = Math.Min(batchSize, Count - start);
            if (dropLast && len < batchSize) yield break;
            var slice = new long[len];
            Array.Copy(order, start, slice, 0, len);
            yield return MakeBatch(slice, device, start);
        }
    }

    private Batch MakeBatch(long[] indices, Device device, int offset)
    {
        using var scope = NewDisposeScope();
        bool contiguousRange = indices[^1] - indices[0] == indices.Length - 1 && indices.Zip(indices.Skip(1)).All(p => p.Second == p.First + 1);
        Tensor x, y;
        if (contiguousRange)
        {
            x = Images.narrow(0, indices[0], indices.Length);
            y = Labels.narrow(0, indices[0], indices.Length);
        }
        else
        {
            var idx = tensor(indices, ScalarType.Int64);
            x = Images.index_select(0, idx);
            y = Labels.index_select(0, idx);
        }
        x = x.to(device).contiguous();
        y = y.to(device);
        // narrow() on CPU is a view: clone so the batch owns its memory independently of the dataset.
        if (ReferenceEquals(device, CPU) || device.type == DeviceType.CPU) { x = x.clone(); y = y.clone(); }
        x.MoveToOuterDisposeScope();
        y.MoveToOuterDisposeScope();
        return new Batch(x, y, indices, offset);
    }

    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}

/// <summary>One mini-batch on a device; owns its tensors. <see cref="Indices"/> are row numbers in the dataset.</summary>
public sealed record Batch(Tensor Inputs, Tensor Labels, long[] Indices, int Offset) : IDisposable
{
    public int Count => Indices.Length;

    public void Dispose()
    {
        Inputs.Dispose();
        Labels.Dispose();
    }
}
