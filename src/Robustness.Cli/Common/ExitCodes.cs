namespace Robustness.Cli.Common;

/// <summary>Process exit codes of `robust`.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int BadInput = 2;
}
