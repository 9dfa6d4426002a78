using Robustness.Core;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;
using static TorchSharp.torch;

namespace Robustness.Data;

/// <summary>
/// Images stored one folder per class (root/&lt;class&gt;/&lt;image&gt;), decoded with ImageSharp (PNG, JPEG, and the
/// other formats it knows). Class names are the subfolder names in ordinal order; labels follow that order.
/// <list type="bullet">
/// <item>With a declared height and width every image is resized (bicubic) to it, so mixed sizes are fine.
/// Without one, all images must share the first image's size; a different size is an error naming the file.</item>
/// <item>With declared channels 1 images become 8-bit luminance (ImageSharp's L8, BT.709), with 3 they become RGB;
/// alpha is dropped. Undeclared, the set is 1-channel when every image is gray (R = G = B everywhere), else RGB.</item>
/// <item>Files whose names start with '.' are skipped; any other file that is not an image is an error.</item>
/// <item>Preprocessing as in torchvision's Resize(S) then CenterCrop(S): <see cref="ImageFolderOptions.Resize"/> scales
/// each image (bicubic) so its shorter side is S, <see cref="ImageFolderOptions.CenterCrop"/> cuts the central S×S;
/// both run before the declared height and width are applied.</item>
/// </list>
/// </summary>
public static class ImageFolderReader
{
    public static ImageDataset Load(string directory, ImageFolderOptions options, string? name = null)
    {
        try
        {
            return LoadFolder(directory, options, name);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(directory, $"cannot read the image folder ({e.Message})", e);
        }
    }

    /// <summary>Refuse images whose header claims more pixels than this before decoding them (a 64-megapixel image).</summary>
    public const long MaxPixelsPerImage = 1L << 26;

    /// <summary>Refuse image files larger than this before reading them.</summary>
    public const long MaxFileBytes = 256L << 20;

    public static ImageDataset Load(string directory, int? channels = null, int? height = null, int? width = null, string? name = null) =>
        Load(directory, new ImageFolderOptions { Channels = channels, Height = height, Width = width }, name);

    private static ImageDataset LoadFolder(string directory, ImageFolderOptions options, string? name)
    {
        var (channels, height, width) = (options.Channels, options.Height, options.Width);
        if (options.Resize is <= 0) throw new ParameterException(nameof(ImageFolderOptions.Resize), $"must be > 0, got {options.Resize}");
        if (options.CenterCrop is <= 0) throw new ParameterException(nameof(ImageFolderOptions.CenterCrop), $"must be > 0, got {options.CenterCrop}");
        if (channels is { } c && c != 1 && c != 3) throw new ParameterException("Channels", $"must be 1 or 3, got {c}");
        if (height.HasValue != width.HasValue) throw new InputException("image shape: give both height and width, or neither");
        if (height is <= 0 || width is <= 0) throw new InputException($"image shape: height and width must be > 0, got {height}x{width}");
        if (!Directory.Exists(directory)) throw new InputException($"{directory}: image folder not found");

        var classDirs = Directory.GetDirectories(directory)
            .Where(d => !Path.GetFileName(d).StartsWith('.'))
            .OrderBy(d => Path.GetFileName(d), StringComparer.Ordinal)
            .ToArray();
        if (classDirs.Length == 0)
            throw new DataFormatException(directory, "empty dataset: no class subfolders (expected <root>/<class>/<image files>)");
        if (classDirs.Length > 256 * 256)
            throw new DataFormatException(directory, $"{classDirs.Length:N0} class subfolders, too many");

        var rgbImages = new List<byte[]>();
        var labels = new List<long>();
        (int Height, int Width)? size = height is { } h && width is { } w ? (h, w) : null;
        string? sizeSetBy = null;
        bool allGray = true;
        for (int label = 0; label < classDirs.Length; label++)
        {
            var files = Directory.GetFiles(classDirs[label])
                .Where(f => !Path.GetFileName(f).StartsWith('.'))
                .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
                .ToArray();
            if (files.Length == 0) throw new DataFormatException(classDirs[label], "empty class folder: no image files");
            foreach (var file in files)
            {
                using var image = Decode(file);
                Preprocess(image, options, file);
                if (size is not { } target)
                {
                    size = (image.Height, image.Width);
                    sizeSetBy = file;
                }
                else if (image.Height != target.Height || image.Width != target.Width)
                {
                    if (sizeSetBy is not null)
                        throw new DataFormatException(file, $"image is {image.Width}x{image.Height} but {Path.GetFileName(sizeSetBy)} is {target.Width}x{target.Height}; declare a shape (height and width) to resize all images to it");
                    image.Mutate(x => x.Resize(target.Width, target.Height, KnownResamplers.Bicubic));
                }
                var rgb = new byte[image.Height * image.Width * 3];
                image.CopyPixelDataTo(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Rgb24>(rgb.AsSpan()));
                if (allGray && !IsGray(rgb)) allGray = false;
                rgbImages.Add(rgb);
                labels.Add(label);
            }
        }

        var (outH, outW) = size!.Value;
        int outC = channels ?? (allGray ? 1 : 3);
        long perImage = (long)outC * outH * outW;
        if (perImage * rgbImages.Count > Array.MaxLength)
            throw new DataFormatException(directory, $"{rgbImages.Count:N0} images of {outC}x{outH}x{outW}, more than fit in memory as one tensor");
        var pixels = new float[perImage * rgbImages.Count];
        for (int i = 0; i < rgbImages.Count; i++)
            ToChw(rgbImages[i], outC, pixels.AsSpan((int)(i * perImage), (int)perImage));

        var classNames = classDirs.Select(Path.GetFileName).Select(n => n!).ToArray();
        return new ImageDataset(name ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory))),
            tensor(pixels, [rgbImages.Count, outC, outH, outW], ScalarType.Float32),
            tensor(labels.ToArray(), [labels.Count], ScalarType.Int64),
            classNames, Bounds.Unit, Path.GetFullPath(directory));
    }

    /// <summary>Decodes one file as RGB, refusing non-images, corrupt images and oversized headers with a message naming the file.</summary>
    internal static Image<Rgb24> Decode(string file)
    {
        byte[] bytes;
        try
        {
            long length = new FileInfo(file).Length;
            if (length > MaxFileBytes) throw new DataFormatException(file, $"{length:N0} bytes, larger than the {MaxFileBytes:N0} accepted for one image");
            bytes = File.ReadAllBytes(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(file, $"cannot read ({e.Message})", e);
        }
        try
        {
            if (Image.DetectFormat(bytes) is null)
                throw new DataFormatException(file, "not an image file (expected PNG or JPEG)");
            // Identify reads only the header: refuse absurd dimensions before the decoder allocates them.
            var info = Image.Identify(bytes);
            if (info is null) throw new DataFormatException(file, "corrupt image: unreadable header");
            if (info.Width <= 0 || info.Height <= 0 || (long)info.Width * info.Height > MaxPixelsPerImage)
                throw new DataFormatException(file, $"corrupt or oversized image: header declares {info.Width}x{info.Height} pixels");
            return Image.Load<Rgb24>(bytes);
        }
        catch (DataFormatException)
        {
            throw;
        }
        // The decoder is third-party code fed untrusted bytes: whatever it throws on a malformed file
        // (ImageFormatException, InvalidImageContentException, or an internal error) means "this file is corrupt".
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new DataFormatException(file, $"corrupt image ({e.Message})", e);
        }
    }

    internal static void Preprocess(Image<Rgb24> image, ImageFolderOptions options, string file)
    {
        if (options.Resize is { } s)
        {
            double scale = (double)s / Math.Min(image.Width, image.Height);
            int w = Math.Max(1, (int)Math.Round(image.Width * scale)), h = Math.Max(1, (int)Math.Round(image.Height * scale));
            if (w != image.Width || h != image.Height) image.Mutate(x => x.Resize(w, h, KnownResamplers.Bicubic));
        }
        if (options.CenterCrop is { } c)
        {
            if (image.Width < c || image.Height < c)
                throw new DataFormatException(file, $"image is {image.Width}x{image.Height}{(options.Resize is null ? "" : " after resizing")}, smaller than the {c}x{c} center crop");
            var rect = new Rectangle((image.Width - c) / 2, (image.Height - c) / 2, c, c);
            image.Mutate(x => x.Crop(rect));
        }
    }

    internal static bool IsGray(ReadOnlySpan<byte> rgb)
    {
        for (int i = 0; i < rgb.Length; i += 3)
            if (rgb[i] != rgb[i + 1] || rgb[i] != rgb[i + 2]) return false;
        return true;
    }

    /// <summary>Interleaved RGB (HWC) bytes to planar CHW floats in [0,1]; one channel uses ImageSharp's luminance.</summary>
    internal static void ToChw(byte[] rgb, int channels, Span<float> destination)
    {
        int plane = rgb.Length / 3;
        if (channels == 1)
        {
            L8 gray = default;
            for (int p = 0; p < plane; p++)
            {
                gray.FromRgb24(new Rgb24(rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2]));
                destination[p] = PixelConversion.ToUnit(gray.PackedValue);
            }
            return;
        }
        for (int p = 0; p < plane; p++)
        {
            destination[p] = PixelConversion.ToUnit(rgb[3 * p]);
            destination[plane + p] = PixelConversion.ToUnit(rgb[3 * p + 1]);
            destination[2 * plane + p] = PixelConversion.ToUnit(rgb[3 * p + 2]);
        }
    }
}
