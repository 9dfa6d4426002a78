using System.CommandLine;
using Robustness.Core;
using Robustness.Evaluation;

namespace Robustness.Cli.Common;

/// <summary>Where a verb records its result: the results database, or nowhere with --no-record.</summary>
/// <param name="Path">The database path; null = <see cref="ResultsStore.DefaultPath"/>.</param>
public sealed record ResultsTarget(string? Path, bool Record)
{
    public static ResultsTarget None { get; } = new(null, false);

    public string Resolved => System.IO.Path.GetFullPath(Path ?? ResultsStore.DefaultPath());

    /// <summary>
    /// Checks an existing database before the run spends time or writes anything (a non-SQLite, corrupt or newer
    /// database is bad input); a missing one is created when the result is appended.
    /// </summary>
    public void CheckBeforeRun()
    {
        if (!Record) return;
        if (File.Exists(Resolved) || Directory.Exists(Resolved)) ResultsStore.Open(Resolved);
    }

    /// <summary>Appends the record; returns it with its id and the database path.</summary>
    public (ResultRecord Record, string Database)? Append(ResultRecord record)
    {
        if (!Record) return null;
        var store = ResultsStore.Open(Resolved);
        return (store.Append(record), store.Path);
    }
}

/// <summary>--results-db PATH and --no-record, shared by the verbs that record (eval, merge) and read (leaderboard).</summary>
public sealed class ResultsDbOptions
{
    public const string DefaultDescription = "$XDG_DATA_HOME/robustness/results.db, else ~/.local/share/robustness/results.db";

    public Option<string?> Database { get; }
    public Option<bool> NoRecord { get; } = new("--no-record") { Description = "Do not append this run to the results database." };

    public ResultsDbOptions(string description) => Database = new Option<string?>("--results-db") { Description = $"{description} Default: {DefaultDescription}." };

    public static ResultsDbOptions ForRecording() => new("Results database (SQLite) this run is appended to.");

    public void AddTo(Command command, bool recording = true)
    {
        command.Options.Add(Database);
        if (recording) command.Options.Add(NoRecord);
    }

    public ResultsTarget Read(ParseResult p)
    {
        var path = p.GetValue(Database);
        bool noRecord = p.GetValue(NoRecord);
        if (path is not null && string.IsNullOrWhiteSpace(path)) throw new InputException("--results-db: the path is empty");
        if (noRecord && path is not null) throw new InputException("--no-record: contradicts --results-db (give one or the other)");
        return new ResultsTarget(path, !noRecord);
    }
}
