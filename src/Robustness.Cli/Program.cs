namespace Robustness.Cli;

public static class Program
{
    public static int Main(string[] args) => RobustCli.Run(args);
}
