using System.CommandLine;
using Robustness.Core;
using Spectre.Console;

namespace Robustness.Cli.Common;

/// <summary>
/// Runs a verb's body with the CLI's error policy: bad input → one line on stderr, exit 2; any other error →
/// one line, exit 1; stack traces only with --verbose.
/// </summary>
public static class CommandRunner
{
    public static Option<bool> VerboseOption { get; } = CreateVerbose();

    private static Option<bool> CreateVerbose()
    {
        var o = SharedOptions.Verbose();
        o.Recursive = true;
        return o;
    }

    /// <param name="flags">Where the verb's flag for a library parameter differs from <see cref="ParameterFlags.Common"/>.</param>
    public static void SetAction(Command command, Func<ParseResult, int> body, IReadOnlyDictionary<string, string>? flags = null)
    {
        command.SetAction(parse => Run(parse.GetValue(VerboseOption), () => body(parse), command, flags, JsonOutput.Requested(parse)));
    }

    /// <param name="json">--json: stdout holds one JSON document, the verb's result or the error (<see cref="JsonOutput"/>).</param>
    public static int Run(bool verbose, Func<int> body, Command? command = null, IReadOnlyDictionary<string, string>? flags = null, bool json = false)
    {
        using var output = json ? JsonOutput.Begin() : null;
        try
        {
            var code = body();
            if (output is { Written: false })
            {
                const string missing = "--json: the verb produced no result document (a bug; please report it)";
                Error($"failure: {missing}");
                output.Fail("failure", missing, ExitCodes.Failure);
                return ExitCodes.Failure;
            }
            return code;
        }
        catch (Exception e) when (Unwrap(e) is InputException input)
        {
            var message = ParameterFlags.Message(input, command, flags);
            Error($"error: {message}");
            output?.Fail("bad-input", message, ExitCodes.BadInput);
            if (verbose) Console.Error.WriteLine(e);
            return ExitCodes.BadInput;
        }
        catch (OperationCanceledException)
        {
            Error("cancelled");
            output?.Fail("cancelled", "cancelled", ExitCodes.Failure);
            return ExitCodes.Failure;
        }
        catch (Exception e)
        {
            Error($"failure: {Unwrap(e).Message}");
            output?.Fail("failure", Unwrap(e).Message.ReplaceLineEndings(" "), ExitCodes.Failure);
            if (verbose) Console.Error.WriteLine(e);
            else Console.Error.WriteLine("robust: run again with --verbose for details");
            return ExitCodes.Failure;
        }
    }

    private static Exception Unwrap(Exception e)
    {
        while ((e is AggregateException || e is System.Reflection.TargetInvocationException || e is TypeInitializationException) && e.InnerException is not null)
            e = e.InnerException;
        return e;
    }

    public static void Error(string message) => Console.Error.WriteLine($"robust: {message.ReplaceLineEndings(" ")}");

    /// <summary>Console for tables and progress; plain text when output is redirected.</summary>
    public static IAnsiConsole Out { get; set; } = AnsiConsole.Console;
}
