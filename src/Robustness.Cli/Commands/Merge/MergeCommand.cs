using System.CommandLine;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Evaluation;

namespace Robustness.Cli.Commands.Merge;

/// <summary>`robust merge DIR... --out DIR`: combines shard reports of `robust eval --shard i/n` into one report.</summary>
public sealed class MergeCommand(IReadOnlyList<string> inputs, string output, ResultsTarget results)
{
    private static readonly Argument<string[]> InputsArg = new("shards") { Description = "Shard output directories (each with report.json).", Arity = ArgumentArity.OneOrMore };
    private static readonly Option<string> OutOption = SharedOptions.Out("Directory for the merged report.");
    private static readonly ResultsDbOptions ResultsOptions = ResultsDbOptions.ForRecording();

    public static Command Definition()
    {
        var command = new Command("merge", "Merge sharded evaluation reports into one, identical to an unsharded run with the same seed; records it in the results database.") { InputsArg, OutOption };
        ResultsOptions.AddTo(command);
        CommandRunner.SetAction(command, p => new MergeCommand(p.GetValue(InputsArg)!, p.GetValue(OutOption)!, ResultsOptions.Read(p)).Execute());
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
        results.CheckBeforeRun();
        using var outLock = OutputLock.Acquire(output);
        var files = ReportBundle.WriteAll(merged, output);
        var recorded = results.Record ? results.Append(ResultRecord.FromReport(merged, files.Json)) : null;
        Console.WriteLine($"merged {reports.Count} shards ({merged.Total} samples) into {files.Json}" + (recorded is { } r ? $"; recorded as #{r.Record.Id} in {r.Database}" : ""));
        return ExitCodes.Ok;
    }
}
