using System.CommandLine;
using System.Globalization;
using Robustness.Core;

namespace Robustness.Cli.Common;

/// <summary>Options several verbs share, defined once so their names, defaults and help read the same everywhere.</summary>
public static class SharedOptions
{
    public static Option<string> Device() => new("--device")
    {
        Description = "Where tensors live: auto (CUDA when available, else CPU), cpu, cuda or cuda:N.",
        DefaultValueFactory = _ => "auto",
    };

    public static Option<long> Seed() => new("--seed")
    {
        Description = "Seed for every random choice (shuffling, initialisation, random starts, sampling). Recorded in outputs.",
        DefaultValueFactory = _ => 0L,
    };

    public static Option<int> BatchSize(int defaultValue) => new("--batch-size")
    {
        Description = "Samples per batch.",
        DefaultValueFactory = _ => defaultValue,
    };

    public static Option<int> Threads() => new("--threads")
    {
        Description = "CPU threads for libtorch (0 = one per core).",
        DefaultValueFactory = _ => 0,
    };

    public static Option<bool> Verbose() => new("--verbose")
    {
        Description = "Print stack traces for errors and more detail while running.",
    };

    public static Option<string?> DataDir() => new("--data-dir")
    {
        Description = "Folder to look in first for named datasets (then $ROBUSTNESS_DATA, the repo's data/, /usr/share/datasets).",
    };

    public static Option<string> Out(string description, bool required = true) => new("--out")
    {
        Description = description,
        Required = required,
    };

    public static Option<string> Model() => new("--model")
    {
        Description = "Model file: a Robustness .safetensors file, a PyTorch .pt/.safetensors state dict of a zoo architecture (with --arch), a TorchScript archive (.pt from torch.jit.save) or an ONNX graph (.onnx).",
        Required = true,
    };

    public static Option<string?> Arch(string? description = null) =>
        new("--arch") { Description = description ?? $"Architecture of a PyTorch state dict given with --model ({string.Join(", ", Robustness.Models.ModelZoo.Names)})." };

    public static Option<string> Data(string defaultValue = "fashion-mnist") => new("--data")
    {
        Description = "Dataset name (fashion-mnist, fashion-mnist-multi, mnist, cifar10) or path (IDX/CIFAR folder, class-per-folder images, or images with labels.csv for multi-label).",
        DefaultValueFactory = _ => defaultValue,
    };

    public static Option<string> Norm() => new("--norm")
    {
        Description = "Threat-model norm: linf, l2 or l1.",
        DefaultValueFactory = _ => "linf",
    };

    public static Option<int?> Resize() => new("--resize")
    {
        Description = "Image folders: resize each image so its shorter side is S pixels (bicubic), as torchvision's Resize(S).",
    };

    public static Option<int?> CenterCrop() => new("--center-crop")
    {
        Description = "Image folders: keep the central S×S pixels (after --resize), as torchvision's CenterCrop(S).",
    };

    public static Option<bool> AllowEmptyLabels() => new("--allow-empty-labels")
    {
        Description = "Multi-label image folders (labels.csv): accept rows with an empty label set.",
    };

    public static Option<int?> N() => new("--n")
    {
        Description = "Evaluate only N samples: the first N in file order (or N drawn with the seed when --sample random). Larger than the dataset is an error.",
    };

    public static Option<string> Sample() => new("--sample")
    {
        Description = "How --n picks samples: first (file order, comparable across runs) or random (drawn with --seed).",
        DefaultValueFactory = _ => "first",
    };

    /// <summary>Applies --threads once for the process.</summary>
    public static void ApplyThreads(int threads)
    {
        if (threads < 0) throw new InputException($"--threads: must be ≥ 0, got {threads}");
        var n = threads == 0 ? Math.Max(1, Environment.ProcessorCount) : threads;
        TorchSharp.torch.set_num_threads(n);
    }

    /// <summary>A comma-separated list; an empty entry ("0.1,,0.2", a trailing comma) is an error, never dropped.</summary>
    public static string[] SplitList(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Any(p => p.Length == 0))
            throw new InputException($"{option}: '{text}' has an empty entry (write values separated by single commas)");
        return parts;
    }

    public static double ParseDouble(string text, string option)
    {
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
            throw new InputException($"{option}: '{text}' is not a number");
        return v;
    }

    public static void RequirePositive(int value, string option)
    {
        if (value <= 0) throw new InputException($"{option}: must be > 0, got {value}");
    }
}
