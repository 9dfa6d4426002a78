using System.Buffers.Binary;
using Robustness.Core;
using static TorchSharp.torch;

namespace Robustness.Data;

/// <summary>
/// The IDX format of MNIST and Fashion-MNIST (raw or gzip, detected by content): a big-endian header
/// (magic 0x00000803 + count, rows, cols for images; 0x00000801 + count for labels) followed by unsigned bytes.
/// Every header field is checked against the bytes actually present before memory is committed to it.
/// </summary>
public static class IdxReader
{
    public const int ImagesMagic = 0x00000803;
    public const int LabelsMagic = 0x00000801;

    /// <summary>Images as float32 in [0,1], row-major [count, rows, cols].</summary>
    public static (float[] Pixels, int Count, int Rows, int Cols) ReadImages(string path)
    {
        using var input = BoundedInput.OpenFile(path);
        return ReadImages(input);
    }

    /// <summary>Images from a seekable stream (raw or gzip); <paramref name="fileName"/> is used in error messages.</summary>
    public static (float[] Pixels, int Count, int Rows, int Cols) ReadImages(Stream stream, string fileName)
    {
        using var input = BoundedInput.Wrap(stream, fileName, leaveOpen: true);
        return ReadImages(input);
    }

    /// <summary>Labels checked to lie in 0..<paramref name="numClasses"/>-1.</summary>
    public static int[] ReadLabels(string path, int numClasses = 10)
    {
        using var input = BoundedInput.OpenFile(path);
        return ReadLabels(input, numClasses);
    }

    /// <summary>Labels from a seekable stream (raw or gzip); <paramref name="fileName"/> is used in error messages.</summary>
    public static int[] ReadLabels(Stream stream, string fileName, int numClasses = 10)
    {
        using var input = BoundedInput.Wrap(stream, fileName, leaveOpen: true);
        return ReadLabels(input, numClasses);
    }

    /// <summary>
    /// An image/label file pair as a dataset [N,1,rows,cols] in [0,1]. Class names default to the digits "0".."9";
    /// their count is the number of classes labels are checked against.
    /// </summary>
    public static ImageDataset Load(string imagesPath, string labelsPath, string name, IReadOnlyList<string>? classNames = null)
    {
        classNames ??= DatasetCatalog.DigitClassNames;
        if (classNames.Count == 0) throw new ArgumentException("at least one class name is required", nameof(classNames));
        var (pixels, count, rows, cols) = ReadImages(imagesPath);
        var labels = ReadLabels(labelsPath, classNames.Count);
        if (labels.Length != count)
            throw new DataFormatException(labelsPath, $"{labels.Length:N0} labels but {imagesPath} holds {count:N0} images");
        var images = tensor(pixels, [count, 1, rows, cols], ScalarType.Float32);
        var labelTensor = tensor(labels.Select(l => (long)l).ToArray(), [count], ScalarType.Int64);
        return new ImageDataset(name, images, labelTensor, classNames, Bounds.Unit, Path.GetFullPath(imagesPath));
    }

    /// <summary>Images as the file's bytes (0..255), row-major [count, rows, cols], checked as <see cref="ReadImages(string)"/>.</summary>
    public static (byte[] Pixels, int Count, int Rows, int Cols) ReadImageBytes(string path)
    {
        using var input = BoundedInput.OpenFile(path);
        return ReadImageBytes(input);
    }

    private static (float[] Pixels, int Count, int Rows, int Cols) ReadImages(DatasetStream input)
    {
        var (bytes, count, rows, cols) = ReadImageBytes(input);
        return (PixelConversion.ToUnit(bytes), count, rows, cols);
    }

    private static (byte[] Pixels, int Count, int Rows, int Cols) ReadImageBytes(DatasetStream input)
    {
        var file = input.File;
        var (header, dims) = ReadHeader(input, ImagesMagic, "images", 3);
        var (count, rows, cols) = (dims[0], dims[1], dims[2]);
        if (count == 0) throw new DataFormatException(file, "header declares 0 images");
        if (rows == 0 || cols == 0) throw new DataFormatException(file, $"header declares empty images of {rows}x{cols} pixels");
        // Each factor is below 2^31, so with rows*cols below 2^31 the product count*rows*cols stays below 2^62: no long overflow.
        long pixelsPerImage = (long)rows * cols;
        if (pixelsPerImage > BoundedInput.MaxPayloadBytes)
            throw new DataFormatException(file, $"header declares images of {rows:N0}x{cols:N0} pixels, too large");
        long claimed = count * pixelsPerImage;
        var bytes = BoundedInput.ReadPayload(input, header, claimed, $"pixels ({count:N0} images of {rows}x{cols})");
        return (bytes, count, rows, cols);
    }

    private static int[] ReadLabels(DatasetStream input, int numClasses)
    {
        var file = input.File;
        if (numClasses is < 1 or > 256) throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "IDX labels are bytes: 1..256 classes");
        var (header, dims) = ReadHeader(input, LabelsMagic, "labels", 1);
        int count = dims[0];
        if (count == 0) throw new DataFormatException(file, "header declares 0 labels");
        var bytes = BoundedInput.ReadPayload(input, header, count, $"labels ({count:N0})");
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            int label = bytes[i];
            if (label >= numClasses)
                throw new DataFormatException(file, $"label {label} at index {i} is out of range 0..{numClasses - 1}");
            labels[i] = label;
        }
        return labels;
    }

    /// <summary>Magic number, then one big-endian uint32 per dimension; each must fit an int.</summary>
    private static (byte[] Header, int[] Dims) ReadHeader(DatasetStream input, int expectedMagic, string what, int dimensions)
    {
        var (stream, file) = (input.Stream, input.File);
        var header = new byte[4 + 4 * dimensions];
        int got = BoundedInput.ReadUpTo(stream, header.AsSpan(..4), file);
        if (got < 4) throw new DataFormatException(file, $"truncated: {got} bytes, too short for an IDX header");
        int magic = BinaryPrimitives.ReadInt32BigEndian(header);
        if (magic != expectedMagic)
            throw new DataFormatException(file, $"wrong IDX magic 0x{magic:X8}, expected 0x{expectedMagic:X8} ({what})");
        got = BoundedInput.ReadUpTo(stream, header.AsSpan(4..), file);
        if (got < 4 * dimensions)
            throw new DataFormatException(file, $"truncated IDX header: {4 + got} bytes, expected {4 + 4 * dimensions}");
        var dims = new int[dimensions];
        for (int d = 0; d < dimensions; d++)
        {
            uint size = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4 + 4 * d));
            if (size > int.MaxValue) throw new DataFormatException(file, $"IDX dimension {d} is {size:N0}, too large");
            dims[d] = (int)size;
        }
        return (header, dims);
    }
}
