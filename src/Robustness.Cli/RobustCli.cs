using System.CommandLine;
using Robustness.Cli.Common;

namespace Robustness.Cli;

/// <summary>Builds the `robust` command tree and runs it. Exit codes: 0 ok, 1 failure, 2 bad input.</summary>
public static class RobustCli
{
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("Robustness: how easily can your image classifier be fooled? Attack, evaluate and harden it.");
        root.Options.Add(CommandRunner.VerboseOption);
        foreach (var command in Verbs())
        {
            // Every verb takes --json (one JSON document on stdout, JsonOutput); a verb may add its own with a sharper description.
            if (!command.Options.Any(o => o.Name == JsonOutput.Flag)) JsonOutput.AddTo(command);
            root.Subcommands.Add(command);
        }
        return root;
    }

    private static IEnumerable<Command> Verbs() =>
    [
        Commands.Info.InfoCommand.Definition(),
        Commands.Data.DataCommand.Definition(),
        Commands.Train.TrainCommand.Definition(),
        Commands.Attack.AttackCommand.Definition(),
        Commands.Attacks.AttacksCommand.Definition(),
        Commands.Eval.EvalCommand.Definition(),
        Commands.Certify.CertifyCommand.Definition(),
        Commands.Demo.DemoCommand.Definition(),
        Commands.Threshold.ThresholdCommand.Definition(),
        Commands.Merge.MergeCommand.Definition(),
        Commands.Leaderboard.LeaderboardCommand.Definition(),
        Commands.Compare.CompareCommand.Definition(),
        Commands.Bench.BenchCommand.Definition(),
        Commands.Playground.PlaygroundCommand.Definition(),
    ];

    public static int Run(string[] args)
    {
        var root = BuildRoot();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // One line only: prefer the error that names what the user typed (an unknown verb also yields a
            // "required command was not provided" error first, which does not say what was wrong).
            var unmatched = parse.UnmatchedTokens.FirstOrDefault();
            var error = (unmatched is null ? null : parse.Errors.FirstOrDefault(e => e.Message.Contains(unmatched, StringComparison.Ordinal))) ?? parse.Errors[0];
            var message = $"{FriendlyTypeNames(error.Message)} (see 'robust --help')";
            CommandRunner.Error($"error: {message}");
            // Asked for JSON, the caller reads stdout: the mistake is the document there too.
            if (args.Contains(JsonOutput.Flag)) JsonOutput.WriteError(Console.Out, "bad-input", message, ExitCodes.BadInput);
            return ExitCodes.BadInput;
        }
        return parse.Invoke();
    }

    /// <summary>"as expected type 'System.Nullable`1[System.Int32]'" → "as a whole number": users don't read CLR names.</summary>
    private static string FriendlyTypeNames(string message) =>
        System.Text.RegularExpressions.Regex.Replace(message, @"as expected type '(?:System\.Nullable`1\[)?System\.(\w+)\]?'", m => m.Groups[1].Value switch
        {
            "Int32" or "Int64" => "as a whole number",
            "Double" or "Single" => "as a number",
            "Boolean" => "as true or false",
            _ => m.Value,
        });
}
