using System.Globalization;
using System.Text.Json;
using Robustness.Core;

namespace Robustness.Playground;

/// <summary>What a page asks its session to do. Parsed and validated on arrival; the session thread only applies.</summary>
public abstract record PageCommand
{
    /// <summary>Parses one message from a page. Throws <see cref="ParameterException"/> with a one-line reason for
    /// anything malformed: not JSON, no or unknown type, missing or bad fields. <paramref name="state"/> is the state the
    /// page's previous changes led to; a "state" command returns the merged, validated state.</summary>
    public static PageCommand Parse(string json, PlaygroundState state)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 8 }); }
        catch (JsonException e) { throw new ParameterException("message", $"not valid JSON ({e.Message.Split('.')[0]})"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new ParameterException("message", "must be a JSON object");
            if (!root.TryGetProperty("type", out var typeEl) || typeEl.ValueKind != JsonValueKind.String)
                throw new ParameterException("type", "missing (one of state, play, pause, step, reset, attack, weight, bias, ping)");
            return typeEl.GetString() switch
            {
                "state" => new SetState(state.With(StateChanges(root))),
                "play" => new Play(),
                "pause" => new Pause(),
                "step" => new StepOnce(),
                "reset" => new Reset(),
                "attack" => new RunAttack(),
                "ping" => new Ping(),
                "weight" => new SetWeight(Int(root, "layer"), Int(root, "to"), Int(root, "from"), Real(root, "value")),
                "bias" => new SetBias(Int(root, "layer"), Int(root, "neuron"), Real(root, "value")),
                var t => throw new ParameterException("type", $"unknown command '{t}' (one of state, play, pause, step, reset, attack, weight, bias, ping)"),
            };
        }
    }

    private static Dictionary<string, string> StateChanges(JsonElement root)
    {
        if (!root.TryGetProperty("state", out var s) || s.ValueKind != JsonValueKind.Object)
            throw new ParameterException("state", "missing: expected an object of settings");
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in s.EnumerateObject())
            d[p.Name] = p.Value.ValueKind switch
            {
                JsonValueKind.String => p.Value.GetString()!,
                JsonValueKind.Number => p.Value.GetRawText(),
                JsonValueKind.True => "true",
                JsonValueKind.False => "false",
                JsonValueKind.Array => string.Join(",", p.Value.EnumerateArray().Select(e => e.ValueKind switch
                {
                    JsonValueKind.String => e.GetString()!,
                    JsonValueKind.Number => e.GetRawText(),
                    _ => throw new ParameterException(p.Name, "list items must be strings or numbers"),
                })),
                _ => throw new ParameterException(p.Name, $"expected a string, number or boolean, got {p.Value.ValueKind.ToString().ToLowerInvariant()}"),
            };
        return d;
    }

    private static int Int(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var e) || e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out var v))
            throw new ParameterException(name, "missing or not a whole number");
        return v;
    }

    private static double Real(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var e)) throw new ParameterException(name, "missing");
        double v;
        if (e.ValueKind == JsonValueKind.Number) v = e.GetDouble();
        else if (e.ValueKind != JsonValueKind.String || !double.TryParse(e.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out v))
            throw new ParameterException(name, "not a number");
        if (!double.IsFinite(v)) throw new ParameterException(name, "must be finite");
        return v;
    }

    public sealed record SetState(PlaygroundState State) : PageCommand;
    public sealed record Play : PageCommand;
    public sealed record Pause : PageCommand;
    public sealed record StepOnce : PageCommand;
    public sealed record Reset : PageCommand;
    public sealed record RunAttack : PageCommand;
    public sealed record Ping : PageCommand;
    public sealed record SetWeight(int Layer, int To, int From, double Value) : PageCommand;
    public sealed record SetBias(int Layer, int Neuron, double Value) : PageCommand;
}
