using System.CommandLine;
using System.Text.Json;
using Robustness.Core;

namespace Robustness.Cli.Commands.Train;

/// <summary>
/// The options a training run was started with, saved beside its checkpoint (<c>train-arguments.json</c>), so that
/// `robust train --resume DIR` alone continues the run with them. Options given again on resume must agree (a
/// mismatch names them); the machine-level ones (<see cref="Free"/>) may change.
/// </summary>
public static class TrainArguments
{
    public const string FileName = "train-arguments.json";
    /// <summary>Options that may differ between the run and its resume: they do not change the result.</summary>
    public static readonly IReadOnlySet<string> Free = new HashSet<string> { "--resume", "--out", "--threads", "--device", "--verbose" };

    /// <summary>Every option of the parsed `train` command that has a value (given or default), but the free ones.</summary>
    public static Dictionary<string, string> Capture(ParseResult parse, bool explicitOnly = false)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var option in parse.CommandResult.Command.Options)
        {
            if (Free.Contains(option.Name)) continue;
            var result = parse.GetResult(option);
            if (result is null || (explicitOnly && result.Implicit)) continue;
            var value = result.GetValueOrDefault<object?>();
            if (value is not null) values[option.Name] = ParameterText.Format(value);
        }
        return values;
    }

    public static void Save(string directory, Dictionary<string, string> arguments) =>
        AtomicFile.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(arguments, new JsonSerializerOptions { WriteIndented = true }));

    public static Dictionary<string, string>? TryLoad(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InputException($"{path}: not a valid arguments file ({e.Message})"); }
    }

    /// <summary>
    /// The arguments of the resumed run: the saved ones, with the free options the user gave now. Explicit options that
    /// disagree with the saved run are an error naming each (it would be another run, not a resume).
    /// </summary>
    public static string[] ForResume(ParseResult parse, string directory, Dictionary<string, string> saved)
    {
        var given = Capture(parse, explicitOnly: true);
        var conflicts = given.Where(kv => !saved.TryGetValue(kv.Key, out var v) || v != kv.Value)
            .Select(kv => $"{kv.Key} {kv.Value} (the run used {(saved.TryGetValue(kv.Key, out var v) ? v : "no value")})").ToArray();
        if (conflicts.Length > 0)
            throw new InputException($"--resume: {directory} was started with other options: {string.Join("; ", conflicts)}; resume without them or start a new run");
        var args = new List<string>();
        foreach (var (flag, value) in saved) { args.Add(flag); args.Add(value); }
        foreach (var option in parse.CommandResult.Command.Options.Where(o => Free.Contains(o.Name) && o.Name is not ("--resume" or "--out")))
            if (parse.GetResult(option) is { Implicit: false } r && r.GetValueOrDefault<object?>() is { } v) { args.Add(option.Name); args.Add(ParameterText.Format(v)); }
        args.Add("--resume");
        args.Add(directory);
        return args.ToArray();
    }
}
