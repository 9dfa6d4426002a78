using System.CommandLine;

namespace Robustness.Cli;

/// <summary>Builds the `robust` command tree and runs it. Exit codes: 0 ok, 1 failure, 2 bad input.</summary>
public static class RobustCli
{
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand("Robustness: adversarial robustness evaluation and training for image classifiers.");
        return root;
    }

    public static int Run(string[] args) => BuildRoot().Parse(args).Invoke();
}
