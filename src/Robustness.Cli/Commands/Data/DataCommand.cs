using System.CommandLine;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Data;

namespace Robustness.Cli.Commands.Data;

/// <summary>`robust data NAME|PATH`: what was found — counts, shape, classes, where from (multi-label sets: label
/// cardinality, label-set sizes, label frequencies, fingerprint); `--export DIR` writes a multi-label set as a
/// labelled image folder (PNGs, labels.csv, classes.txt).</summary>
public sealed class DataCommand(string nameOrPath, string split, string? dataDir, string? export = null, bool allowEmptyLabels = false)
{
    private static readonly Argument<string> NameArg = new("dataset") { Description = "Dataset name (fashion-mnist, fashion-mnist-multi, mnist, cifar10) or path." };
    private static readonly Option<string> SplitOption = new("--split") { Description = "train or test.", DefaultValueFactory = _ => "test" };
    private static readonly Option<string?> DataDirOption = SharedOptions.DataDir();
    private static readonly Option<string?> ExportOption = new("--export") { Description = "Multi-label sets: write the split as an image folder with labels.csv and classes.txt into this directory." };
    private static readonly Option<bool> AllowEmptyOption = SharedOptions.AllowEmptyLabels();

    public static Command Definition()
    {
        var command = new Command("data", "Find a dataset and describe it: counts, shape, classes, source.") { NameArg, SplitOption, DataDirOption, ExportOption, AllowEmptyOption };
        CommandRunner.SetAction(command, parse => new DataCommand(parse.GetValue(NameArg)!, parse.GetValue(SplitOption)!, parse.GetValue(DataDirOption),
            parse.GetValue(ExportOption), parse.GetValue(AllowEmptyOption)).Execute());
        return command;
    }

    public int Execute()
    {
        using var dataset = DatasetCatalog.Load(nameOrPath, split, dataDir, new ImageFolderOptions { AllowEmptyLabels = allowEmptyLabels });
        Console.WriteLine(DatasetCatalog.Describe(dataset));
        if (export is not null)
        {
            if (!dataset.MultiLabel) throw new InputException($"--export: {nameOrPath} is a single-label dataset; export writes multi-label sets (labels.csv)");
            using var outLock = OutputLock.Acquire(export, "--export");
            LabelsCsvReader.Write(dataset, export);
            Console.WriteLine($"wrote {dataset.Count:N0} images, {LabelsCsvReader.LabelsFile} and {LabelsCsvReader.ClassesFile} to {Path.GetFullPath(export)}");
        }
        return ExitCodes.Ok;
    }
}
