using System.Text;
using Robustness.Core;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Data;

/// <summary>
/// A multi-label image folder: images anywhere under the folder and a <c>labels.csv</c> with one row per image,
/// <c>file,label1;label2;…</c> (file relative to the folder; an optional first row <c>file,labels</c>; the file field
/// may be quoted as in RFC 4180). Class names come from <c>classes.txt</c> (one per line, in label order) when it
/// exists, else they are the labels that occur, in ordinal order. Images are decoded exactly as
/// <see cref="ImageFolderReader"/> does (same size, channel and preprocessing rules). Labels become multi-hot rows.
/// Every problem is a <see cref="DataFormatException"/> naming the file and line: a row for a file that does not exist
/// or lies outside the folder, an image in the folder without a row, a label not in classes.txt, a file listed twice,
/// a label repeated in a row, an empty label set (unless <see cref="ImageFolderOptions.AllowEmptyLabels"/>).
/// </summary>
public static class LabelsCsvReader
{
    public const string LabelsFile = "labels.csv";
    public const string ClassesFile = "classes.txt";
    private static readonly string[] ImageExtensions = [".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tga", ".tif", ".tiff", ".pbm"];

    /// <summary>True when <paramref name="directory"/> holds a labels.csv.</summary>
    public static bool IsLabelledFolder(string directory) => File.Exists(Path.Combine(directory, LabelsFile));

    public static ImageDataset Load(string directory, ImageFolderOptions options, string? name = null)
    {
        try
        {
            return LoadFolder(directory, options, name);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(directory, $"cannot read the labelled image folder ({e.Message})", e);
        }
    }

    /// <summary>The rows of a labels.csv: (line number, file, labels) after syntax checks.</summary>
    public static IReadOnlyList<(int Line, string File, string[] Labels)> ParseRows(string csvPath, string text)
    {
        var rows = new List<(int, string, string[])>();
        var lines = text.Replace("\r\n", "\n").Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.Trim().Length == 0) continue;
            int number = i + 1;
            var (file, rest) = SplitFileField(line, csvPath, number);
            if (rows.Count == 0 && file.Equals("file", StringComparison.OrdinalIgnoreCase) && rest.Trim().Equals("labels", StringComparison.OrdinalIgnoreCase))
                continue;
            if (file.Length == 0) throw new DataFormatException(csvPath, $"line {number}: empty file name");
            var labels = rest.Split(';', StringSplitOptions.TrimEntries).Where(l => l.Length > 0).ToArray();
            if (rest.Contains(',')) throw new DataFormatException(csvPath, $"line {number}: more than two fields (labels are separated by ';', e.g. a.png,Bag;Sandal)");
            rows.Add((number, file, labels));
        }
        return rows;
    }

    private static (string File, string Labels) SplitFileField(string line, string csv, int number)
    {
        if (line.StartsWith('"'))
        {
            var sb = new StringBuilder();
            int i = 1;
            for (; i < line.Length; i++)
            {
                if (line[i] == '"')
                {
                    if (i + 1 < line.Length && line[i + 1] == '"') { sb.Append('"'); i++; continue; }
                    break;
                }
                sb.Append(line[i]);
            }
            if (i >= line.Length) throw new DataFormatException(csv, $"line {number}: unterminated quoted file name");
            if (i + 1 >= line.Length || line[i + 1] != ',') throw new DataFormatException(csv, $"line {number}: expected ',' after the quoted file name");
            return (sb.ToString(), line[(i + 2)..]);
        }
        int comma = line.IndexOf(',');
        if (comma < 0) throw new DataFormatException(csv, $"line {number}: expected 'file,label1;label2;…', found no ','");
        return (line[..comma].Trim(), line[(comma + 1)..]);
    }

    private static ImageDataset LoadFolder(string directory, ImageFolderOptions options, string? name)
    {
        var (channels, height, width) = (options.Channels, options.Height, options.Width);
        if (channels is { } c && c != 1 && c != 3) throw new ParameterException("Channels", $"must be 1 or 3, got {c}");
        if (height.HasValue != width.HasValue) throw new InputException("image shape: give both height and width, or neither");
        if (!Directory.Exists(directory)) throw new InputException($"{directory}: image folder not found");
        var root = Path.GetFullPath(directory);
        var csv = Path.Combine(root, LabelsFile);
        var text = File.ReadAllText(csv);
        var rows = ParseRows(csv, text);
        if (rows.Count == 0) throw new DataFormatException(csv, "no rows (expected 'file,label1;label2;…' per image)");

        IReadOnlyList<string> classNames;
        var classesPath = Path.Combine(root, ClassesFile);
        bool declared = File.Exists(classesPath);
        if (declared)
        {
            var names = File.ReadAllLines(classesPath).Select(l => l.Trim()).ToList();
            while (names.Count > 0 && names[^1].Length == 0) names.RemoveAt(names.Count - 1);
            for (int i = 0; i < names.Count; i++)
            {
                if (names[i].Length == 0) throw new DataFormatException(classesPath, $"line {i + 1}: empty class name");
                if (names[i].Contains(';') || names[i].Contains(',')) throw new DataFormatException(classesPath, $"line {i + 1}: class name '{names[i]}' contains ';' or ','");
                if (names.IndexOf(names[i]) != i) throw new DataFormatException(classesPath, $"line {i + 1}: class '{names[i]}' is listed twice");
            }
            if (names.Count == 0) throw new DataFormatException(classesPath, "no class names");
            classNames = names;
        }
        else
            classNames = rows.SelectMany(r => r.Labels).Distinct().Order(StringComparer.Ordinal).ToArray();
        if (classNames.Count == 0) throw new DataFormatException(csv, "no labels in any row (and no classes.txt)");
        var classIndex = classNames.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i, StringComparer.Ordinal);

        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var resolved = new List<(string Path, int[] Classes, int Line)>();
        foreach (var (line, file, labels) in rows)
        {
            var full = Path.GetFullPath(Path.Combine(root, file));
            if (!full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw new DataFormatException(csv, $"line {line}: '{file}' lies outside the folder");
            if (seen.TryGetValue(full, out var earlier))
                throw new DataFormatException(csv, $"line {line}: '{file}' is listed twice (also on line {earlier})");
            seen[full] = line;
            if (!File.Exists(full)) throw new DataFormatException(csv, $"line {line}: image '{file}' not found");
            if (labels.Length == 0 && !options.AllowEmptyLabels)
                throw new DataFormatException(csv, $"line {line}: '{file}' has an empty label set (allow it with the empty-labels option)");
            var indices = new List<int>();
            foreach (var label in labels)
            {
                if (!classIndex.TryGetValue(label, out var index))
                    throw new DataFormatException(csv, $"line {line}: unknown label '{label}' (classes.txt lists {string.Join(", ", classNames)})");
                if (indices.Contains(index)) throw new DataFormatException(csv, $"line {line}: label '{label}' is given twice");
                indices.Add(index);
            }
            resolved.Add((full, indices.ToArray(), line));
        }
        var unlisted = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()) && !Path.GetFileName(f).StartsWith('.'))
            .Select(Path.GetFullPath).FirstOrDefault(f => !seen.ContainsKey(f));
        if (unlisted is not null)
            throw new DataFormatException(unlisted, $"image has no row in {LabelsFile}");

        var rgbImages = new List<byte[]>();
        (int Height, int Width)? size = height is { } h && width is { } w ? (h, w) : null;
        string? sizeSetBy = null;
        bool allGray = true;
        foreach (var (path, _, _) in resolved)
        {
            using var image = ImageFolderReader.Decode(path);
            ImageFolderReader.Preprocess(image, options, path);
            if (size is not { } target) { size = (image.Height, image.Width); sizeSetBy = path; }
            else if (image.Height != target.Height || image.Width != target.Width)
            {
                if (sizeSetBy is not null)
                    throw new DataFormatException(path, $"image is {image.Width}x{image.Height} but {Path.GetFileName(sizeSetBy)} is {target.Width}x{target.Height}; declare a shape (height and width) to resize all images to it");
                image.Mutate(x => x.Resize(target.Width, target.Height, KnownResamplers.Bicubic));
            }
            var rgb = new byte[image.Height * image.Width * 3];
            image.CopyPixelDataTo(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Rgb24>(rgb.AsSpan()));
            if (allGray && !ImageFolderReader.IsGray(rgb)) allGray = false;
            rgbImages.Add(rgb);
        }
        var (outH, outW) = size!.Value;
        int outC = channels ?? (allGray ? 1 : 3);
        long perImage = (long)outC * outH * outW;
        if (perImage * rgbImages.Count > Array.MaxLength)
            throw new DataFormatException(directory, $"{rgbImages.Count:N0} images of {outC}x{outH}x{outW}, more than fit in memory as one tensor");
        var pixels = new float[perImage * rgbImages.Count];
        for (int i = 0; i < rgbImages.Count; i++) ImageFolderReader.ToChw(rgbImages[i], outC, pixels.AsSpan((int)(i * perImage), (int)perImage));
        var multiHot = new float[resolved.Count * classNames.Count];
        for (int i = 0; i < resolved.Count; i++)
            foreach (var cls in resolved[i].Classes) multiHot[i * classNames.Count + cls] = 1f;
        return new ImageDataset(name ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(root)),
            tensor(pixels, [rgbImages.Count, outC, outH, outW], ScalarType.Float32),
            tensor(multiHot, [resolved.Count, classNames.Count], ScalarType.Float32),
            classNames, Bounds.Unit, root);
    }

    /// <summary>
    /// Writes a multi-label dataset as a labelled folder (PNG per image, labels.csv, classes.txt), atomically per file:
    /// what <see cref="Load"/> reads back bit for bit (8-bit pixels).
    /// </summary>
    public static void Write(ImageDataset dataset, string directory)
    {
        if (!dataset.MultiLabel) throw new ArgumentException("not a multi-label dataset", nameof(dataset));
        Directory.CreateDirectory(directory);
        using var scope = NewDisposeScope();
        var bytes = dataset.Images.mul(Keep(255)).round().clamp(Keep(0), Keep(255)).to(ScalarType.Byte).contiguous().data<byte>().ToArray();
        var on = dataset.Labels.gt(Keep(0.5)).contiguous().data<bool>().ToArray();
        var (c, h, w) = (dataset.SampleShape[0], dataset.SampleShape[1], dataset.SampleShape[2]);
        int k = dataset.NumClasses, plane = h * w, digits = Math.Max(5, dataset.Count.ToString().Length);
        var csv = new StringBuilder("file,labels\n");
        for (int i = 0; i < dataset.Count; i++)
        {
            var file = $"{i.ToString().PadLeft(digits, '0')}.png";
            using var image = new Image<Rgb24>(w, h);
            int offset = i * c * plane;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                {
                    int p = offset + y * w + x;
                    image[x, y] = c == 3 ? new Rgb24(bytes[p], bytes[p + plane], bytes[p + 2 * plane]) : new Rgb24(bytes[p], bytes[p], bytes[p]);
                }
            using var ms = new MemoryStream();
            image.SaveAsPng(ms);
            AtomicFile.WriteAllBytes(Path.Combine(directory, file), ms.ToArray());
            csv.Append(file).Append(',').AppendJoin(';', Enumerable.Range(0, k).Where(j => on[i * k + j]).Select(j => dataset.ClassNames[j])).Append('\n');
        }
        AtomicFile.WriteAllText(Path.Combine(directory, ClassesFile), string.Join("\n", dataset.ClassNames) + "\n");
        AtomicFile.WriteAllText(Path.Combine(directory, LabelsFile), csv.ToString());
    }
}
