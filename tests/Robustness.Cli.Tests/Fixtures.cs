using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Robustness.Models;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using static TorchSharp.torch;

namespace Robustness.Cli.Tests;

/// <summary>A temporary folder removed when the test ends.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "robustness-cli-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Sub(string relative) => System.IO.Path.Combine(Path, relative);

    public string File(string relative, byte[] bytes)
    {
        var full = Sub(relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        System.IO.File.WriteAllBytes(full, bytes);
        return full;
    }

    public string Dir(string relative)
    {
        var full = Sub(relative);
        Directory.CreateDirectory(full);
        return full;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

public static class Repo
{
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (System.IO.File.Exists(System.IO.Path.Combine(dir.FullName, "Robustness.sln"))) return dir.FullName;
        throw new InvalidOperationException("Robustness.sln not found above " + AppContext.BaseDirectory);
    }

    public static string FashionMnist => System.IO.Path.Combine(Root, "data", "fashion-mnist");
    public static string HostileFixtures => System.IO.Path.Combine(Root, "tests", "fixtures", "pytorch", "hostile");

    /// <summary>The built `robust` executable (apphost) next to this assembly, else in the CLI's bin folder.</summary>
    public static string RobustExecutable()
    {
        var candidates = new List<string> { System.IO.Path.Combine(AppContext.BaseDirectory, "robust") };
        foreach (var config in new[] { "Debug", "Release" })
            candidates.Add(System.IO.Path.Combine(Root, "src", "Robustness.Cli", "bin", config, "net10.0", "robust"));
        return candidates.FirstOrDefault(System.IO.File.Exists)
            ?? throw new InvalidOperationException("the robust executable was not found in: " + string.Join(", ", candidates));
    }
}

/// <summary>Builders for small hostile and valid input files.</summary>
public static class Make
{
    /// <summary>An untrained tiny-cnn model file (28×28 gray, 10 classes) shared by the tests that need "a model".</summary>
    public static string TinyCnn => LazyModel.Value;

    private static readonly Lazy<string> LazyModel = new(() =>
    {
        // One fixed path for every test process: the file is the same each time (seed 1) and ModelFile.Save replaces it
        // atomically, so concurrent test runs read a complete file and nothing piles up in /tmp.
        var dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "robustness-cli-tests-model");
        Directory.CreateDirectory(dir);
        var path = System.IO.Path.Combine(dir, "tiny-cnn-seed1.safetensors");
        manual_seed(1);
        using var model = ModelZoo.CreateClassifier("tiny-cnn", CPU);
        ModelFile.Save(model, path);
        return path;
    });

    public static byte[] IdxImages(int count, int rows, int cols, int magic = 0x803, int? declaredCount = null)
    {
        var bytes = new byte[16 + count * rows * cols];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), declaredCount ?? count);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(12), cols);
        for (int i = 16; i < bytes.Length; i++) bytes[i] = (byte)(i * 7 % 256);
        return bytes;
    }

    public static byte[] IdxLabels(byte[] labels, int magic = 0x801)
    {
        var bytes = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4), labels.Length);
        labels.CopyTo(bytes, 8);
        return bytes;
    }

    public static byte[] Labels(int count) => Enumerable.Range(0, count).Select(i => (byte)(i % 10)).ToArray();

    /// <summary>A test-split IDX folder (t10k-* files, raw) with the given images and labels files.</summary>
    public static string IdxFolder(TempDir temp, string name, byte[] images, byte[] labels)
    {
        var dir = temp.Dir(name);
        System.IO.File.WriteAllBytes(System.IO.Path.Combine(dir, "t10k-images-idx3-ubyte"), images);
        System.IO.File.WriteAllBytes(System.IO.Path.Combine(dir, "t10k-labels-idx1-ubyte"), labels);
        return dir;
    }

    public static byte[] Gzip(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    public static byte[] Gunzip(string path)
    {
        using var gz = new GZipStream(System.IO.File.OpenRead(path), CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        return ms.ToArray();
    }

    /// <summary>
    /// The first <paramref name="count"/> images and labels of the shipped Fashion-MNIST test set as IDX files with the
    /// given prefix (train / t10k), gzip-compressed, in <paramref name="dir"/>.
    /// </summary>
    public static void FashionSubset(string dir, string prefix, int start, int count)
    {
        Directory.CreateDirectory(dir);
        var images = Gunzip(System.IO.Path.Combine(Repo.FashionMnist, "t10k-images-idx3-ubyte.gz"));
        var labels = Gunzip(System.IO.Path.Combine(Repo.FashionMnist, "t10k-labels-idx1-ubyte.gz"));
        var img = new byte[16 + count * 784];
        images.AsSpan(0, 16).CopyTo(img);
        BinaryPrimitives.WriteInt32BigEndian(img.AsSpan(4), count);
        images.AsSpan(16 + start * 784, count * 784).CopyTo(img.AsSpan(16));
        var lab = new byte[8 + count];
        labels.AsSpan(0, 8).CopyTo(lab);
        BinaryPrimitives.WriteInt32BigEndian(lab.AsSpan(4), count);
        labels.AsSpan(8 + start, count).CopyTo(lab.AsSpan(8));
        System.IO.File.WriteAllBytes(System.IO.Path.Combine(dir, $"{prefix}-images-idx3-ubyte.gz"), Gzip(img));
        System.IO.File.WriteAllBytes(System.IO.Path.Combine(dir, $"{prefix}-labels-idx1-ubyte.gz"), Gzip(lab));
    }

    public static byte[] Png(int width, int height, byte gray)
    {
        using var image = new Image<L8>(width, height);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                image[x, y] = new L8((byte)((gray + 3 * x + 5 * y) % 256));
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }

    /// <summary>A safetensors file from a raw header string and a data section.</summary>
    public static byte[] SafeTensorsRaw(string header, byte[] data, ulong? declaredHeaderLength = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredHeaderLength ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + h.Length);
        return bytes;
    }
}
