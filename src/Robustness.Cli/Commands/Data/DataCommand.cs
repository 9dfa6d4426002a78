using System.CommandLine;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Data;

namespace Robustness.Cli.Commands.Data;

/// <summary>`robust data NAME|PATH`: what was found — counts, shape, classes, where from (multi-label sets: label
/// cardinality, label-set sizes, label frequencies, fingerprint) — for one split, or for both (each with where it was
/// found, or why not); `--export DIR` writes one split (--split, default test) of a multi-label set as a labelled image
/// folder (PNGs, labels.csv, classes.txt).</summary>
public sealed class DataCommand(string nameOrPath, string? split, string? dataDir, string? export = null, bool allowEmptyLabels = false)
{
    private static readonly Argument<string> NameArg = new("dataset") { Description = "Dataset name (fashion-mnist, fashion-mnist-multi, mnist, cifar10) or path." };
    private static readonly Option<string?> SplitOption = new("--split") { Description = "train or test (default: both; with --export: test)." };
    private static readonly Option<string?> DataDirOption = SharedOptions.DataDir();
    private static readonly Option<string?> ExportOption = new("--export") { Description = "Multi-label sets: write the split as an image folder with labels.csv and classes.txt into this directory." };
    private static readonly Option<bool> AllowEmptyOption = SharedOptions.AllowEmptyLabels();

    public static Command Definition()
    {
        var command = new Command("data", "Find a dataset and describe it: counts, shape, classes, source.") { NameArg, SplitOption, DataDirOption, ExportOption, AllowEmptyOption };
        CommandRunner.SetAction(command, parse => new DataCommand(parse.GetValue(NameArg)!, parse.GetValue(SplitOption), parse.GetValue(DataDirOption),
            parse.GetValue(ExportOption), parse.GetValue(AllowEmptyOption)).Execute());
        return command;
    }

    public int Execute()
    {
        var folder = new ImageFolderOptions { AllowEmptyLabels = allowEmptyLabels };
        if (split is not null || export is not null)
        {
            using var dataset = DatasetCatalog.Load(nameOrPath, split ?? "test", dataDir, folder);
            Console.WriteLine(DatasetCatalog.Describe(dataset));
            if (export is not null)
            {
                if (!dataset.MultiLabel) throw new InputException($"--export: {nameOrPath} is a single-label dataset; export writes multi-label sets (labels.csv)");
                using var outLock = OutputLock.Acquire(export, "--export");
                LabelsCsvReader.Write(dataset, export);
                Console.WriteLine($"wrote {dataset.Count:N0} images, {LabelsCsvReader.LabelsFile} and {LabelsCsvReader.ClassesFile} to {Path.GetFullPath(export)}");
            }
            JsonOutput.Write(Document([Split(split ?? "test", dataset)]));
            return ExitCodes.Ok;
        }
        var found = new List<string>();
        var splits = new List<Dictionary<string, object?>>();
        var missing = new List<InputException>();
        foreach (var s in new[] { "train", "test" })
        {
            try
            {
                using var dataset = DatasetCatalog.Load(nameOrPath, s, dataDir, folder);
                found.Add($"{s} split\n{DatasetCatalog.Describe(dataset)}");
                splits.Add(Split(s, dataset));
            }
            catch (DataFormatException) { throw; } // a damaged file is an error, not a missing split
            catch (InputException e)
            {
                missing.Add(e);
                found.Add($"{s} split: not found ({e.Message})");
                splits.Add(new() { ["split"] = s, ["found"] = false, ["error"] = e.Message });
            }
        }
        if (missing.Count == 2) throw missing[1];
        Console.WriteLine(string.Join("\n\n", found));
        JsonOutput.Write(Document(splits));
        return ExitCodes.Ok;
    }

    private Dictionary<string, object?> Document(IReadOnlyList<Dictionary<string, object?>> splits) => new() { ["dataset"] = nameOrPath, ["splits"] = splits };

    /// <summary>--json: one split as found: where from, count, shape, bounds, class names, and the description the
    /// human output prints (per-class counts).</summary>
    private static Dictionary<string, object?> Split(string split, ImageDataset dataset) => new()
    {
        ["split"] = split,
        ["found"] = true,
        ["name"] = dataset.Name,
        ["source"] = dataset.Source,
        ["count"] = dataset.Count,
        ["shape"] = dataset.SampleShape,
        ["bounds"] = dataset.Bounds.ToString(),
        ["classes"] = dataset.ClassNames,
        ["description"] = DatasetCatalog.Describe(dataset),
    };
}
