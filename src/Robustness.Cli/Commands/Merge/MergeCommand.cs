using System.CommandLine;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Evaluation;

namespace Robustness.Cli.Commands.Merge;

/// <summary>`robust merge DIR... --out DIR`: combines shard reports of `robust eval --shard i/n` into one report.</summary>
public sealed class MergeCommand(IReadOnlyList<string> inputs, string output)
{
    private static readonly Argument<string[]> InputsArg = new("shards") { Description = "Shard output directories (each with report.json).", Arity = ArgumentArity.OneOrMore };
    private static readonly Option<string> OutOption = SharedOptions.Out("Directory for the merged report.");

    public static Command Definition()
    {
        var command = new Command("merge", "Merge sharded evaluation reports into one, identical to an unsharded run with the same seed.") { InputsArg, OutOption };
        CommandRunner.SetAction(command, p => new MergeCommand(p.GetValue(InputsArg)!, p.GetValue(OutOption)!).Execute());
        return command;
    }

    public int Execute()
    {
        var reports = inputs.Select(dir =>
        {
            var path = Directory.Exists(dir) ? Path.Combine(dir, "report.json") : dir;
            if (!File.Exists(path)) throw new InputException($"{path}: no such report (expected a shard directory with report.json)");
            return JsonReportWriter.Read(path);
        }).ToList();
        var merged = ReportMerger.Merge(reports);
        using var outLock = OutputLock.Acquire(output);
        var files = ReportBundle.WriteAll(merged, output);
        Console.WriteLine($"merged {reports.Count} shards ({merged.Total} samples) into {files.Json}");
        return ExitCodes.Ok;
    }
}
