using System.CommandLine;
using Robustness.Cli.Common;
using Robustness.Data;

namespace Robustness.Cli.Commands.Data;

/// <summary>`robust data NAME|PATH`: what was found — counts, shape, classes, where from.</summary>
public sealed class DataCommand(string nameOrPath, string split, string? dataDir)
{
    private static readonly Argument<string> NameArg = new("dataset") { Description = "Dataset name (fashion-mnist, mnist, cifar10) or path." };
    private static readonly Option<string> SplitOption = new("--split") { Description = "train or test.", DefaultValueFactory = _ => "test" };
    private static readonly Option<string?> DataDirOption = SharedOptions.DataDir();

    public static Command Definition()
    {
        var command = new Command("data", "Find a dataset and describe it: counts, shape, classes, source.") { NameArg, SplitOption, DataDirOption };
        CommandRunner.SetAction(command, parse => new DataCommand(parse.GetValue(NameArg)!, parse.GetValue(SplitOption)!, parse.GetValue(DataDirOption)).Execute());
        return command;
    }

    public int Execute()
    {
        using var dataset = DatasetCatalog.Load(nameOrPath, split, dataDir);
        Console.WriteLine(DatasetCatalog.Describe(dataset));
        return ExitCodes.Ok;
    }
}
