using System.Text.Json;
using System.Text.Json.Serialization;
using Robustness.Core;

namespace Robustness.Evaluation;

/// <summary>The report as JSON with snake_case names (schema_version, clean_accuracy, robust_accuracy, per_attack, …).</summary>
public static class JsonReportWriter
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Converters = { new BoundsConverter() },
    };

    public static string Serialize(RobustnessReport report) => JsonSerializer.Serialize(report, Options);

    public static void Write(RobustnessReport report, string path) => AtomicFile.WriteAllText(path, Serialize(report));

    public static RobustnessReport Parse(string json, string what = "report")
    {
        try
        {
            var report = JsonSerializer.Deserialize<RobustnessReport>(json, Options) ?? throw new InputException($"{what}: empty report");
            if (report.SchemaVersion > RobustnessReport.CurrentSchemaVersion)
                throw new InputException($"{what}: schema_version {report.SchemaVersion} is newer than this tool understands ({RobustnessReport.CurrentSchemaVersion})");
            return report;
        }
        catch (JsonException e)
        {
            throw new InputException($"{what}: not a robustness report ({e.Message})", e);
        }
    }

    public static RobustnessReport Read(string path)
    {
        if (!File.Exists(path)) throw new InputException($"{path}: report file not found");
        return Parse(File.ReadAllText(path), path);
    }

    private sealed class BoundsConverter : JsonConverter<Bounds>
    {
        public override Bounds Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            Bounds.Parse(reader.GetString() ?? "", "bounds");

        public override void Write(Utf8JsonWriter writer, Bounds value, JsonSerializerOptions options) => writer.WriteStringValue(value.ToString());
    }
}
