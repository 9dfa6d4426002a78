using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Robustness.Cli.Commands.Bench;

/// <summary>
/// One benchmark figure: a workload on a model at a batch size. <see cref="Figure"/> is the JSON name of the value and
/// ends in <c>_per_s</c> (throughput, higher is better) or <c>_s</c> (time, lower is better), the same names
/// tests/bench/pytorch_reference.py prints, so lines of both join on (workload, model, batch).
/// </summary>
public sealed record BenchMeasurement(string Workload, string Model, int Batch, string Figure, double Value)
{
    public const string Ours = "robustness";
    public string Impl { get; init; } = Ours;
    public int Threads { get; init; }
    /// <summary>"float32" or "bfloat16".</summary>
    public string Dtype { get; init; } = "float32";
    /// <summary>More figures on the same line (e.g. gflop_per_s and peak_fraction on the attack line).</summary>
    public IReadOnlyDictionary<string, double> Extra { get; init; } = new Dictionary<string, double>();
    /// <summary>The individual repetition times (seconds) the figure's median came from.</summary>
    public IReadOnlyList<double> Samples { get; init; } = [];
    public string? Note { get; init; }

    public bool HigherIsBetter => Figure.EndsWith("_per_s", StringComparison.Ordinal);

    public (string Workload, string Model, int Batch, string Dtype) Key => (Workload, Model, Batch, Dtype);

    /// <summary>Primary figure names, in the order a line's main figure is chosen when parsing others' JSON.</summary>
    public static readonly string[] PrimaryFigures = ["img_steps_per_s", "images_per_s", "image_samples_per_s", "seconds_per_1000_s", "gflop_per_s"];

    public JsonObject ToJson(MachineInfo machine)
    {
        var o = new JsonObject
        {
            ["workload"] = Workload,
            ["model"] = Model,
            ["batch"] = Batch,
            ["threads"] = Threads,
            ["impl"] = Impl,
            ["dtype"] = Dtype,
            [Figure] = Round(Value),
        };
        foreach (var (k, v) in Extra) o[k] = Round(v);
        if (Samples.Count > 0) o["rep_seconds"] = new JsonArray(Samples.Select(s => (JsonNode)Round(s)).ToArray());
        o["cores"] = machine.PhysicalCores;
        o["cpu"] = machine.CpuModel;
        o["libtorch"] = machine.Libtorch;
        if (Note is not null) o["note"] = Note;
        return o;
    }

    private static double Round(double v) => double.IsFinite(v) ? Math.Round(v, 6) : v;

    /// <summary>Reads a JSON line printed by another implementation; null when the line is not a benchmark figure.</summary>
    public static BenchMeasurement? Parse(string line)
    {
        line = line.Trim();
        if (!line.StartsWith('{')) return null;
        JsonObject? o;
        try { o = JsonNode.Parse(line) as JsonObject; }
        catch (JsonException) { return null; }
        if (o is null || o["workload"] is not JsonValue w || o["model"] is not JsonValue m || o["batch"] is not JsonValue b) return null;
        var figure = PrimaryFigures.FirstOrDefault(f => o[f] is JsonValue);
        if (figure is null) return null;
        var extra = new Dictionary<string, double>();
        foreach (var (k, v) in o)
            if (k != figure && (k.EndsWith("_per_s", StringComparison.Ordinal) || k.EndsWith("_s", StringComparison.Ordinal)) && v is JsonValue jv && jv.TryGetValue<double>(out var d))
                extra[k] = d;
        return new BenchMeasurement(w.ToString(), m.ToString(), b.GetValue<int>(), figure, o[figure]!.GetValue<double>())
        {
            Impl = o["impl"]?.ToString() ?? "reference",
            Threads = o["threads"] is JsonValue t && t.TryGetValue<int>(out var ti) ? ti : 0,
            Dtype = o["dtype"]?.ToString() ?? "float32",
            Extra = extra,
            Note = o["torch"] is JsonValue tv ? $"torch {tv}" : null,
        };
    }

    public string FormatValue() => Format(Value, Figure);

    public static string Format(double value, string figure) => figure switch
    {
        _ when figure.EndsWith("_per_s", StringComparison.Ordinal) && value >= 100 => value.ToString("N0", CultureInfo.InvariantCulture),
        _ => value.ToString("G4", CultureInfo.InvariantCulture),
    };
}
