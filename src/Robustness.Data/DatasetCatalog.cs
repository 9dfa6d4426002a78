using System.Text;
using Robustness.Core;
using static TorchSharp.torch;

namespace Robustness.Data;

/// <summary>
/// Finds and loads datasets by name (fashion-mnist, mnist, cifar10) or by path.
/// A name is looked up, in order, in: the data directory given by the caller (<c>--data-dir</c>), <c>$ROBUSTNESS_DATA</c>
/// (each as <c>&lt;dir&gt;/&lt;name&gt;</c> and as the dataset folder itself), the repository's <c>data/&lt;name&gt;</c>,
/// and <c>/usr/share/datasets/&lt;name&gt;</c>. A folder counts only if it holds the requested split, so the shipped
/// test set in data/ and a system-wide training set can be used side by side.
/// A path may be a folder of IDX or CIFAR-10 files, a CIFAR-10 batch file, or an image-folder tree
/// (<c>&lt;root&gt;/&lt;split&gt;/&lt;class&gt;/…</c> when <c>train/</c> or <c>test/</c> exist, else <c>&lt;root&gt;/&lt;class&gt;/…</c>).
/// </summary>
public static class DatasetCatalog
{
    public const string EnvironmentVariable = "ROBUSTNESS_DATA";
    public const string SystemDatasetsDirectory = "/usr/share/datasets";

    public static IReadOnlyList<string> FashionMnistClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    public static IReadOnlyList<string> DigitClassNames { get; } = Enumerable.Range(0, 10).Select(i => i.ToString()).ToArray();

    private enum Format { Idx, Cifar10, FashionMnistMosaic }

    private sealed record KnownDataset(string Name, Format Format, IReadOnlyList<string> ClassNames, string HowToGet);

    private static readonly KnownDataset[] Known =
    [
        new("fashion-mnist", Format.Idx, FashionMnistClassNames,
            "install it with 'apt-get install dataset-fashion-mnist' (to /usr/share/datasets/fashion-mnist) or put the IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-…) from https://github.com/zalandoresearch/fashion-mnist into one of those folders"),
        new("mnist", Format.Idx, DigitClassNames,
            "download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (the MNIST IDX files) into one of those folders"),
        new("cifar10", Format.Cifar10, Cifar10Reader.StandardClassNames,
            "download cifar-10-binary.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it (data_batch_1..5.bin, test_batch.bin, or their cifar-10-batches-bin folder) into one of those folders"),
        new(FashionMnistMulti.Name, Format.FashionMnistMosaic, FashionMnistClassNames,
            "it is generated from the Fashion-MNIST IDX files of the same split, looked up as 'fashion-mnist' (the repository ships the test split in data/fashion-mnist; the train split: 'apt-get install dataset-fashion-mnist')"),
    ];

    /// <summary>The dataset names <c>Load</c> knows.</summary>
    public static IReadOnlyList<string> KnownNames { get; } = Known.Select(k => k.Name).ToArray();

    /// <summary>Loads <paramref name="split"/> ("test" or "train") of a named dataset or of the dataset at a path.</summary>
    public static ImageDataset Load(string nameOrPath, string split = "test", string? dataDir = null) =>
        Load(nameOrPath, split, dataDir, channels: null, height: null, width: null);

    /// <summary>As <see cref="Load(string,string,string?)"/>; the shape applies to image-folder datasets (see <see cref="ImageFolderReader"/>).</summary>
    public static ImageDataset Load(string nameOrPath, string split, string? dataDir, int? channels, int? height, int? width) =>
        Load(nameOrPath, split, dataDir, new ImageFolderOptions { Channels = channels, Height = height, Width = width });

    /// <summary>As <see cref="Load(string,string,string?)"/>; <paramref name="imageOptions"/> apply to image-folder datasets
    /// (resize and center crop are refused for any other kind, whose images have a fixed size).</summary>
    public static ImageDataset Load(string nameOrPath, string split, string? dataDir, ImageFolderOptions imageOptions)
    {
        var dataset = LoadAny(nameOrPath, split, dataDir, imageOptions);
        bool folder = dataset.Source is { } src && Directory.Exists(src) && !IsFixedSizeFormat(src);
        if ((imageOptions.Resize is not null || imageOptions.CenterCrop is not null) && !folder)
        {
            dataset.Dispose();
            throw new ParameterException(imageOptions.Resize is not null ? nameof(ImageFolderOptions.Resize) : nameof(ImageFolderOptions.CenterCrop),
                $"applies to image-folder datasets; '{nameOrPath}' is not one");
        }
        return dataset;
    }

    private static bool IsFixedSizeFormat(string dir) => LooksLikeIdxOrCifarFolder(dir);

    private static ImageDataset LoadAny(string nameOrPath, string split, string? dataDir, ImageFolderOptions imageOptions)
    {
        if (string.IsNullOrWhiteSpace(nameOrPath)) throw new ParameterException("Dataset", "a dataset name or path is required");
        if (split != "test" && split != "train") throw new ParameterException("Split", $"must be 'test' or 'train', got '{split}'");
        var known = Known.FirstOrDefault(k => string.Equals(k.Name, nameOrPath, StringComparison.OrdinalIgnoreCase));
        try
        {
            if (known is not null) return LoadKnown(known, split, dataDir);
            if (Directory.Exists(nameOrPath) || File.Exists(nameOrPath)) return LoadPath(nameOrPath, split, imageOptions);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Listing folders can fail on permissions or I/O; the readers report file problems themselves.
            throw new InputException($"{nameOrPath}: cannot read the dataset folder ({e.Message})", e);
        }
        throw new ParameterException("Dataset", $"'{nameOrPath}' is neither a known dataset ({string.Join(", ", KnownNames)}) nor an existing file or folder");
    }

    /// <summary>
    /// The repository's data/ folder: the first directory, walking up from the application's base directory and then
    /// from the current directory, that contains Robustness.sln and data/. Null outside a checkout.
    /// </summary>
    /// <summary>The data that ships with the toolkit: the repository's <c>data/</c> when running from a checkout, else the
    /// <c>data/</c> folder beside the executable (an installed `dotnet tool`).</summary>
    public static string? FindShippedData()
    {
        if (FindRepoData() is { } repo) return repo;
        var beside = Path.Combine(AppContext.BaseDirectory, "data");
        return Directory.Exists(Path.Combine(beside, "fashion-mnist")) ? beside : null;
    }

    public static string? FindRepoData()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Robustness.sln")) && Directory.Exists(Path.Combine(dir.FullName, "data")))
                    return Path.Combine(dir.FullName, "data");
            }
        }
        return null;
    }

    /// <summary>A few lines for <c>robust data</c>: name, count, sample shape, bounds, source and images per class
    /// (multi-label sets: label cardinality, label-set sizes, label frequencies and a content fingerprint).</summary>
    public static string Describe(ImageDataset dataset)
    {
        if (dataset.MultiLabel) return MultiLabelDescription.Describe(dataset);
        long[] perClass;
        using (var scope = NewDisposeScope())
        {
            perClass = bincount(dataset.Labels, minlength: dataset.NumClasses).data<long>().ToArray();
        }
        var sb = new StringBuilder();
        sb.AppendLine($"{dataset.Name}: {dataset.Count:N0} images, shape [{string.Join(",", dataset.SampleShape)}], {dataset.NumClasses} classes, pixels in [{dataset.Bounds.Lower:G},{dataset.Bounds.Upper:G}]");
        sb.AppendLine($"source: {dataset.Source}");
        sb.Append("per class: ");
        sb.AppendJoin(", ", Enumerable.Range(0, perClass.Length).Select(i => $"{(i < dataset.NumClasses ? dataset.ClassNames[i] : $"#{i}")} {perClass[i]:N0}"));
        return sb.ToString();
    }

    private static ImageDataset LoadKnown(KnownDataset known, string split, string? dataDir)
    {
        var looked = new List<string>();
        if (known.Format == Format.FashionMnistMosaic)
        {
            foreach (var dir in Candidates("fashion-mnist", dataDir, looked))
            {
                if (!Directory.Exists(dir) || FindIdxPair(dir, split) is not { } pair) continue;
                var set = FashionMnistMulti.Generate(pair.Images, pair.Labels, split);
                return set.ToDataset(known.Name, known.ClassNames,
                    $"{Path.GetFullPath(pair.Images)} (generated: {known.Name} {split}, seed 0x{FashionMnistMulti.SeedOf(split):x16})");
            }
            throw new InputException($"dataset '{known.Name}' ({split} split) could not be generated: no Fashion-MNIST {split} split in {string.Join(", ", looked)}; {known.HowToGet}");
        }
        foreach (var dir in Candidates(known.Name, dataDir, looked))
        {
            var loaded = TryLoadFolder(dir, split, known.Format, known.Name, known.ClassNames);
            if (loaded is not null) return loaded;
        }
        throw new InputException($"dataset '{known.Name}' ({split} split) not found; looked in {string.Join(", ", looked)}; {known.HowToGet}");
    }

    /// <summary>Candidate folders in lookup order; <paramref name="looked"/> records each for the not-found message.</summary>
    private static IEnumerable<string> Candidates(string name, string? dataDir, List<string> looked)
    {
        IEnumerable<string> RootAndChild(string root)
        {
            var child = Path.Combine(root, name);
            looked.Add(child);
            yield return child;
            looked.Add(root);
            yield return root;
        }

        if (!string.IsNullOrEmpty(dataDir))
            foreach (var d in RootAndChild(dataDir)) yield return d;
        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(env))
            foreach (var d in RootAndChild(env)) yield return d;
        else
            looked.Add($"${EnvironmentVariable} (not set)");
        var repo = FindShippedData();
        if (repo is not null)
        {
            var d = Path.Combine(repo, name);
            looked.Add(d);
            yield return d;
        }
        else
        {
            looked.Add("the shipped data/ (not found)");
        }
        var system = Path.Combine(SystemDatasetsDirectory, name);
        looked.Add(system);
        yield return system;
    }

    private static ImageDataset? TryLoadFolder(string dir, string split, Format format, string name, IReadOnlyList<string> classNames)
    {
        if (!Directory.Exists(dir)) return null;
        switch (format)
        {
            case Format.Idx:
                var idx = FindIdxPair(dir, split);
                return idx is { } pair ? IdxReader.Load(pair.Images, pair.Labels, name, classNames) : null;
            case Format.Cifar10:
                var batches = FindCifarBatches(dir, split);
                if (batches is null) return null;
                var names = Cifar10Reader.ReadClassNames(Path.GetDirectoryName(batches[0])!) ?? classNames;
                return Cifar10Reader.Load(batches, name, names);
            default:
                throw new InvalidOperationException($"unknown format {format}");
        }
    }

    /// <summary>train-/t10k-{images-idx3,labels-idx1}-ubyte, gzip-named first.</summary>
    private static (string Images, string Labels)? FindIdxPair(string dir, string split)
    {
        string prefix = split == "train" ? "train" : "t10k";
        string? First(string stem) => new[] { stem + ".gz", stem }.Select(f => Path.Combine(dir, f)).FirstOrDefault(File.Exists);
        var images = First($"{prefix}-images-idx3-ubyte");
        var labels = First($"{prefix}-labels-idx1-ubyte");
        if (images is null && labels is null) return null;
        if (images is null || labels is null)
            throw new DataFormatException(dir, $"has {Path.GetFileName(images ?? labels)} but not its {(images is null ? "images" : "labels")} file ({prefix}-{(images is null ? "images-idx3" : "labels-idx1")}-ubyte[.gz])");
        return (images, labels);
    }

    /// <summary>test_batch.bin, or data_batch_N.bin in numeric order, in the folder or its cifar-10-batches-bin subfolder.</summary>
    private static string[]? FindCifarBatches(string dir, string split)
    {
        foreach (var d in new[] { dir, Path.Combine(dir, "cifar-10-batches-bin") })
        {
            if (!Directory.Exists(d)) continue;
            if (split == "test")
            {
                var test = Path.Combine(d, "test_batch.bin");
                if (File.Exists(test)) return [test];
                continue;
            }
            var train = Directory.GetFiles(d, "data_batch_*.bin")
                .Select(f => (File: f, Number: int.TryParse(Path.GetFileNameWithoutExtension(f)["data_batch_".Length..], out var n) ? n : -1))
                .Where(t => t.Number >= 0)
                .OrderBy(t => t.Number)
                .Select(t => t.File)
                .ToArray();
            if (train.Length > 0) return train;
        }
        return null;
    }

    private static ImageDataset LoadPath(string path, string split, ImageFolderOptions imageOptions)
    {
        var full = Path.GetFullPath(path);
        if (File.Exists(full))
        {
            if (full.EndsWith(".bin", StringComparison.OrdinalIgnoreCase)) return Cifar10Reader.Load(full);
            throw new ParameterException("Dataset", $"{path} is a file; expected a dataset folder (IDX or CIFAR-10 files, or an image-folder tree) or a CIFAR-10 .bin batch");
        }
        var folderName = Path.GetFileName(Path.TrimEndingDirectorySeparator(full));
        if (FindIdxPair(full, split) is { } idx)
        {
            // IDX files carry no class names: a folder named like Fashion-MNIST gets its names, any other gets digits.
            var names = folderName.Contains("fashion", StringComparison.OrdinalIgnoreCase) ? FashionMnistClassNames : DigitClassNames;
            return IdxReader.Load(idx.Images, idx.Labels, folderName, names);
        }
        if (FindCifarBatches(full, split) is { } batches)
            return Cifar10Reader.Load(batches, folderName, Cifar10Reader.ReadClassNames(Path.GetDirectoryName(batches[0])!) ?? Cifar10Reader.StandardClassNames);
        var splitDir = Path.Combine(full, split);
        if (Directory.Exists(splitDir))
            return LabelsCsvReader.IsLabelledFolder(splitDir)
                ? LabelsCsvReader.Load(splitDir, imageOptions, folderName)
                : ImageFolderReader.Load(splitDir, imageOptions, folderName);
        if (LabelsCsvReader.IsLabelledFolder(full))
            return LabelsCsvReader.Load(full, imageOptions, folderName);
        var otherSplit = Path.Combine(full, split == "test" ? "train" : "test");
        if (Directory.Exists(otherSplit))
            throw new ParameterException("Dataset", $"{path} has a {Path.GetFileName(otherSplit)}/ folder but no {split}/ folder for the {split} split");
        if (LooksLikeIdxOrCifarFolder(full))
            throw new ParameterException("Dataset", $"{path} holds dataset files but none for the {split} split");
        return ImageFolderReader.Load(full, imageOptions, folderName);
    }

    private static bool LooksLikeIdxOrCifarFolder(string dir) =>
        Directory.EnumerateFiles(dir).Any(f =>
        {
            var n = Path.GetFileName(f);
            return n.Contains("-ubyte", StringComparison.Ordinal) || n.EndsWith("_batch.bin", StringComparison.Ordinal) || n.StartsWith("data_batch_", StringComparison.Ordinal);
        }) || Directory.Exists(Path.Combine(dir, "cifar-10-batches-bin"));
}
