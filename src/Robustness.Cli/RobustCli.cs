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
        foreach (var command in Verbs()) root.Subcommands.Add(command);
        return root;
    }

    private static IEnumerable<Command> Verbs() =>
    [
        Commands.Info.InfoCommand.Definition(),
        Commands.Data.DataCommand.Definition(),
        Commands.Train.TrainCommand.Definition(),
        Commands.Attack.AttackCommand.Definition(),
        Commands.Eval.EvalCommand.Definition(),
        Commands.Demo.DemoCommand.Definition(),
        Commands.Merge.MergeCommand.Definition(),
    ];

    public static int Run(string[] args)
    {
        var root = BuildRoot();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors.Take(1))
                CommandRunner.Error($"error: {error.Message} (see 'robust --help')");
            return ExitCodes.BadInput;
        }
        return parse.Invoke();
    }
}
