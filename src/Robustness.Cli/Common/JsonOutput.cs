using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using Robustness.Evaluation;
using Spectre.Console;

namespace Robustness.Cli.Common;

/// <summary>
/// `--json` on every verb: stdout carries exactly one JSON document (the verb's result, or on failure
/// <c>{"error": {"kind", "message", "exit_code"}}</c>); tables, progress and messages go to stderr. A verb adds the
/// option with <see cref="AddTo"/> and hands its result to <see cref="Write"/>; <see cref="CommandRunner"/> does the
/// rest (stdout is set aside for the document while the verb runs, so nothing else can reach it).
/// </summary>
public static class JsonOutput
{
    public const string Flag = "--json";

    /// <summary>Names in snake_case (records as in report.json), readable non-ASCII (ε, ‖δ‖), indented.</summary>
    public static JsonSerializerOptions Options { get; } = new(JsonReportWriter.Options) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static Scope? _current;

    /// <summary>True while a verb runs with --json.</summary>
    public static bool Active => _current is not null;

    public static Option<bool> AddTo(Command command, string? description = null)
    {
        var option = new Option<bool>(Flag)
        {
            Description = description ?? "Print the result as one JSON document on stdout; tables, progress and messages go to stderr.",
        };
        command.Options.Add(option);
        return option;
    }

    /// <summary>Whether the parsed command has a --json option and it was given.</summary>
    public static bool Requested(ParseResult parse) =>
        parse.CommandResult.Command.Options.OfType<Option<bool>>().FirstOrDefault(o => o.Name == Flag) is { } option && parse.GetValue(option);

    /// <summary>The verb's result: written to stdout with --json (once), ignored without.</summary>
    public static void Write(object document)
    {
        if (_current is not { } scope) return;
        if (scope.Written) throw new InvalidOperationException("--json: a verb wrote a second document");
        scope.Written = true;
        scope.Stdout.WriteLine(JsonSerializer.Serialize(document, Options));
        scope.Stdout.Flush();
    }

    /// <summary>A document serialized by its owner (the leaderboard's, the comparison's): to the --json stream when one
    /// is open, else to stdout (a verb called from code with its own Json switch).</summary>
    public static void WriteSerialized(string json)
    {
        if (_current is not { } scope)
        {
            Console.Out.WriteLine(json);
            return;
        }
        if (scope.Written) throw new InvalidOperationException("--json: a verb wrote a second document");
        scope.Written = true;
        scope.Stdout.WriteLine(json);
        scope.Stdout.Flush();
    }

    /// <summary>Progress bars are drawn when the console they go to is a terminal (stderr with --json).</summary>
    public static bool ProgressVisible => Active ? !Console.IsErrorRedirected : !Console.IsOutputRedirected;

    /// <summary>The error document: <c>{"error": {"kind", "message", "exit_code"}}</c>.</summary>
    public static void WriteError(TextWriter stdout, string kind, string message, int exitCode)
    {
        stdout.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["error"] = new Dictionary<string, object?> { ["kind"] = kind, ["message"] = message, ["exit_code"] = exitCode },
        }, Options));
        stdout.Flush();
    }

    /// <summary>Sets stdout aside for the document and points Console.Out and the Spectre console at stderr.</summary>
    internal static Scope Begin()
    {
        if (_current is not null) throw new InvalidOperationException("--json: already active");
        var scope = new Scope(Console.Out, CommandRunner.Out);
        Console.SetOut(Console.Error);
        CommandRunner.Out = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        _current = scope;
        return scope;
    }

    internal sealed class Scope(TextWriter stdout, IAnsiConsole console) : IDisposable
    {
        public TextWriter Stdout { get; } = stdout;
        public bool Written { get; set; }

        /// <summary>On failure: the error as the one document (unless the verb already wrote its result).</summary>
        public void Fail(string kind, string message, int exitCode)
        {
            if (Written) return;
            Written = true;
            WriteError(Stdout, kind, message, exitCode);
        }

        public void Dispose()
        {
            Console.SetOut(Stdout);
            CommandRunner.Out = console;
            _current = null;
        }
    }
}
