using System.CommandLine;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Data;

namespace Robustness.Cli.Commands.Data;

/// <summary>`robust data NAME|PATH`: what was found — counts, shape, classes, where from — for one split, or for both
/// (each with where it was found, or why not).</summary>
public sealed class DataCommand(string nameOrPath, string? split, string? dataDir)
{
    private static readonly Argument<string> NameArg = new("dataset") { Description = "Dataset name (fashion-mnist, mnist, cifar10) or path." };
    private static readonly Option<string?> SplitOption = new("--split") { Description = "train or test (default: both)." };
    private static readonly Option<string?> DataDirOption = SharedOptions.DataDir();

    public static Command Definition()
    {
        var command = new Command("data", "Find a dataset and describe it: counts, shape, classes, source.") { NameArg, SplitOption, DataDirOption };
        CommandRunner.SetAction(command, parse => new DataCommand(parse.GetValue(NameArg)!, parse.GetValue(SplitOption), parse.GetValue(DataDirOption)).Execute());
        return command;
    }

    public int Execute()
    {
        if (split is not null)
        {
            using var dataset = DatasetCatalog.Load(nameOrPath, split, dataDir);
            Console.WriteLine(DatasetCatalog.Describe(dataset));
            JsonOutput.Write(Document([Split(split, dataset)]));
            return ExitCodes.Ok;
        }
        var found = new List<string>();
        var splits = new List<Dictionary<string, object?>>();
        var missing = new List<InputException>();
        foreach (var s in new[] { "train", "test" })
        {
            try
            {
                using var dataset = DatasetCatalog.Load(nameOrPath, s, dataDir);
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
