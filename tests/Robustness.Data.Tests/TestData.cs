using System.Buffers.Binary;
using System.IO.Compression;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Robustness.Data.Tests;

/// <summary>A temporary folder removed when the test ends.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "robustness-data-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string relative, byte[] bytes)
    {
        var full = System.IO.Path.Combine(Path, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        System.IO.File.WriteAllBytes(full, bytes);
        return full;
    }

    public string Dir(string relative)
    {
        var full = System.IO.Path.Combine(Path, relative);
        Directory.CreateDirectory(full);
        return full;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Builders for small dataset files with known contents.</summary>
public static class TestData
{
    public static string CorpusPath(string name) => Path.Combine(AppContext.BaseDirectory, "corpus", name);

    /// <summary>A deterministic pixel value for image i, row r, column c.</summary>
    public static byte Pixel(int i, int r, int c) => (byte)((i * 31 + r * 7 + c * 3) % 256);

    public static byte[] IdxImages(int count, int rows, int cols, int magic = 0x803, int? declaredCount = null)
    {
        var bytes = new byte[16 + count * rows * cols];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), declaredCount ?? count);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(12), cols);
        for (int i = 0; i < count; i++)
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    bytes[16 + (i * rows + r) * cols + c] = Pixel(i, r, c);
        return bytes;
    }

    public static byte[] IdxLabels(byte[] labels, int magic = 0x801, int? declaredCount = null)
    {
        var bytes = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), declaredCount ?? labels.Length);
        labels.CopyTo(bytes, 8);
        return bytes;
    }

    public static byte[] Labels(int count, int numClasses = 10) => Enumerable.Range(0, count).Select(i => (byte)(i * 7 % numClasses)).ToArray();

    public static byte[] Gzip(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    /// <summary>CIFAR-10 records: label[i], then pixel byte j of record i = (i*5 + j) % 256.</summary>
    public static byte[] Cifar(byte[] labels)
    {
        var bytes = new byte[labels.Length * 3073];
        for (int i = 0; i < labels.Length; i++)
        {
            bytes[i * 3073] = labels[i];
            for (int j = 0; j < 3072; j++) bytes[i * 3073 + 1 + j] = (byte)((i * 5 + j) % 256);
        }
        return bytes;
    }

    public static byte[] Png(int width, int height, Func<int, int, Rgb24> pixel)
    {
        using var image = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                image[x, y] = pixel(x, y);
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }

    public static byte[] Jpeg(int width, int height, Func<int, int, Rgb24> pixel)
    {
        using var image = new Image<Rgb24>(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                image[x, y] = pixel(x, y);
        using var ms = new MemoryStream();
        image.SaveAsJpeg(ms);
        return ms.ToArray();
    }

    /// <summary>A generated fashion-mnist-like folder: `count` images of 28x28 for the given split prefix (train / t10k).</summary>
    public static void WriteIdxPair(string dir, string prefix, int count, int rows = 28, int cols = 28, bool gz = true)
    {
        Directory.CreateDirectory(dir);
        var images = IdxImages(count, rows, cols);
        var labels = IdxLabels(Labels(count));
        File.WriteAllBytes(Path.Combine(dir, $"{prefix}-images-idx3-ubyte" + (gz ? ".gz" : "")), gz ? Gzip(images) : images);
        File.WriteAllBytes(Path.Combine(dir, $"{prefix}-labels-idx1-ubyte" + (gz ? ".gz" : "")), gz ? Gzip(labels) : labels);
    }
}
