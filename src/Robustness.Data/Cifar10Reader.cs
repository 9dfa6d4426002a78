using Robustness.Core;
using static TorchSharp.torch;

namespace Robustness.Data;

/// <summary>
/// The CIFAR-10 binary format: records of 1 label byte followed by 3,072 pixel bytes (32x32 red, then green, then
/// blue: CHW order), concatenated with no header. A batch file (data_batch_1..5.bin, test_batch.bin) holds 10,000.
/// </summary>
public static class Cifar10Reader
{
    public const int Channels = 3, Height = 32, Width = 32;
    public const int PixelsPerImage = Channels * Height * Width;
    public const int RecordBytes = 1 + PixelsPerImage;

    /// <summary>The class names of the original dataset, in label order.</summary>
    public static IReadOnlyList<string> StandardClassNames { get; } =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>One or more batch files as one dataset named "cifar10"; class names from batches.meta.txt beside the first file if present.</summary>
    public static ImageDataset Load(params string[] paths) => Load(paths, "cifar10");

    public static ImageDataset Load(IReadOnlyList<string> paths, string name, IReadOnlyList<string>? classNames = null)
    {
        if (paths.Count == 0) throw new ArgumentException("at least one CIFAR-10 batch file is required", nameof(paths));
        classNames ??= ReadClassNames(Path.GetDirectoryName(Path.GetFullPath(paths[0]))!) ?? StandardClassNames;
        var parts = new List<(float[] Pixels, int[] Labels)>(paths.Count);
        long total = 0;
        foreach (var path in paths)
        {
            var part = Read(path, classNames.Count);
            total += part.Labels.Length;
            if (total * PixelsPerImage > Array.MaxLength)
                throw new DataFormatException(path, $"together the batch files hold {total:N0} images, more than fit in memory as one tensor");
            parts.Add(part);
        }
        int count = (int)total;
        var pixels = parts.Count == 1 ? parts[0].Pixels : new float[count * PixelsPerImage];
        var labels = new long[count];
        int offset = 0;
        foreach (var (p, l) in parts)
        {
            if (!ReferenceEquals(p, pixels)) Array.Copy(p, 0, pixels, (long)offset * PixelsPerImage, p.Length);
            for (int i = 0; i < l.Length; i++) labels[offset + i] = l[i];
            offset += l.Length;
        }
        var source = paths.Count == 1 ? Path.GetFullPath(paths[0]) : Path.GetDirectoryName(Path.GetFullPath(paths[0]))!;
        return new ImageDataset(name, tensor(pixels, [count, Channels, Height, Width], ScalarType.Float32),
            tensor(labels, [count], ScalarType.Int64), classNames, Bounds.Unit, source);
    }

    /// <summary>One batch file: pixels [n,3,32,32] in [0,1] (flattened) and labels checked against <paramref name="numClasses"/>.</summary>
    public static (float[] Pixels, int[] Labels) Read(string path, int numClasses = 10)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(path, $"cannot open ({e.Message})", e);
        }
        using (stream) return Read(stream, path, numClasses);
    }

    /// <summary>Records from a seekable stream; <paramref name="fileName"/> is used in error messages.</summary>
    public static (float[] Pixels, int[] Labels) Read(Stream stream, string fileName, int numClasses = 10)
    {
        if (!stream.CanSeek) throw new ArgumentException("CIFAR-10 streams must be seekable", nameof(stream));
        if (numClasses is < 1 or > 256) throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "CIFAR labels are bytes: 1..256 classes");
        long length = stream.Length - stream.Position;
        if (length == 0) throw new DataFormatException(fileName, "empty file, expected CIFAR-10 records of 3,073 bytes");
        if (length % RecordBytes != 0)
            throw new DataFormatException(fileName, $"length {length:N0} is not a multiple of the CIFAR-10 record size 3,073 (1 label byte + 3,072 pixels)");
        long count = length / RecordBytes;
        if (count * PixelsPerImage > Array.MaxLength)
            throw new DataFormatException(fileName, $"{count:N0} records, more than fit in memory");
        var bytes = BoundedInput.ReadPayload(new DatasetStream(stream, fileName, null, ownsStream: false), [], length, "CIFAR-10 records");
        var pixels = new float[count * PixelsPerImage];
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            int record = i * RecordBytes;
            int label = bytes[record];
            if (label >= numClasses)
                throw new DataFormatException(fileName, $"label {label} in record {i} is out of range 0..{numClasses - 1}");
            labels[i] = label;
            PixelConversion.ToUnit(bytes.AsSpan(record + 1, PixelsPerImage), pixels.AsSpan(i * PixelsPerImage, PixelsPerImage));
        }
        return (pixels, labels);
    }

    /// <summary>
    /// Class names from batches.meta.txt (one per line, blank lines ignored) in <paramref name="directory"/>, or null
    /// when there is no such file. A file with other than 10 names is malformed.
    /// </summary>
    public static IReadOnlyList<string>? ReadClassNames(string directory)
    {
        var path = Path.Combine(directory, "batches.meta.txt");
        if (!File.Exists(path)) return null;
        var info = new FileInfo(path);
        if (info.Length > 64 * 1024) throw new DataFormatException(path, $"{info.Length:N0} bytes, too large for a list of 10 class names");
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(path, $"cannot read ({e.Message})", e);
        }
        var names = lines.Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        if (names.Length != StandardClassNames.Count)
            throw new DataFormatException(path, $"{names.Length} class names, expected {StandardClassNames.Count}");
        return names;
    }
}
