using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Robustness.Data.Toy;

namespace Robustness.Playground;

/// <summary>
/// The messages a session streams. A frame is binary: a little-endian uint32 header length, the header (UTF-8 JSON:
/// epoch, metrics, weights, gradient norms, the latest attack, new loss-curve points, layout of the payload), then the
/// payload: each network's output heat map (<see cref="PlaygroundEngine.GridSize"/>² bytes), then the main network's
/// neuron thumbnails (<see cref="PlaygroundEngine.ThumbnailSize"/>² bytes each). A byte b stands for b/127.5 − 1.
/// Other messages are JSON text.
/// </summary>
public static class FrameWriter
{
    /// <summary>Curve points already sent, per network role: (history version, count).</summary>
    public sealed class HistoryCursor
    {
        public Dictionary<string, (int Version, int Count)> Sent { get; } = [];
    }

    public static byte[] Frame(PlaygroundEngine engine, bool playing, HistoryCursor cursor, int attackSequence)
    {
        var snapshots = engine.Snapshots();
        var grids = engine.OutputGrids();
        var thumbs = engine.Thumbnails();
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("type", "frame");
            w.WriteNumber("generation", engine.Generation);
            w.WriteNumber("epoch", engine.Epoch);
            w.WriteNumber("iterations", engine.Iterations);
            w.WriteBoolean("playing", playing);
            w.WriteNumber("attackSeq", attackSequence);
            w.WriteNumber("grid", engine.GridSize);
            w.WriteNumber("thumb", PlaygroundEngine.ThumbnailSize);
            w.WriteNumber("thumbCount", thumbs.Length);
            w.WriteStartArray("networks");
            foreach (var n in snapshots) WriteNetwork(w, n, cursor);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        var header = buffer.ToArray();
        int payload = grids.Sum(g => g.Length) + thumbs.Sum(t => t.Length);
        var frame = new byte[4 + header.Length + payload];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)header.Length);
        header.CopyTo(frame, 4);
        int offset = 4 + header.Length;
        foreach (var g in grids) { g.CopyTo(frame, offset); offset += g.Length; }
        foreach (var t in thumbs) { t.CopyTo(frame, offset); offset += t.Length; }
        return frame;
    }

    private static void WriteNetwork(Utf8JsonWriter w, NetworkSnapshot n, HistoryCursor cursor)
    {
        w.WriteStartObject();
        w.WriteString("role", n.Role);
        w.WriteString("objective", n.Objective);
        Num(w, "trainLoss", n.TrainLoss);
        Num(w, "testLoss", n.TestLoss);
        Num(w, "trainAcc", n.TrainAccuracy);
        Num(w, "testAcc", n.TestAccuracy);
        w.WriteBoolean("diverged", n.Diverged);
        w.WriteNumber("forkedAt", n.ForkedAtEpoch);
        // Only the curve points the page has not seen (all of them after a rebuild, fork or thinning).
        int from = cursor.Sent.TryGetValue(n.Role, out var sent) && sent.Version == n.HistoryVersion && sent.Count <= n.History.Count ? sent.Count : 0;
        if (from == n.History.Count && from > 0) from--; // the last point is refreshed while its epoch lasts
        cursor.Sent[n.Role] = (n.HistoryVersion, n.History.Count);
        w.WriteNumber("historyFrom", from);
        w.WriteStartArray("history");
        for (int i = from; i < n.History.Count; i++)
        {
            var p = n.History[i];
            w.WriteStartArray();
            w.WriteNumberValue(p.Epoch);
            NumValue(w, p.TrainLoss);
            NumValue(w, p.TestLoss);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteStartArray("weights");
        foreach (var layer in n.Weights)
        {
            w.WriteStartArray();
            foreach (var row in layer) { w.WriteStartArray(); foreach (var v in row) NumValue(w, v); w.WriteEndArray(); }
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteStartArray("biases");
        foreach (var layer in n.Biases) { w.WriteStartArray(); foreach (var v in layer) NumValue(w, v); w.WriteEndArray(); }
        w.WriteEndArray();
        w.WriteStartArray("gradNorms");
        foreach (var g in n.GradientNorms) NumValue(w, g);
        w.WriteEndArray();
        if (n.Attack is { } a)
        {
            w.WriteStartObject("attack");
            w.WriteNumber("epoch", a.Epoch);
            Num(w, "robustAcc", a.RobustAccuracy);
            Num(w, "certifiedAcc", a.CertifiedAccuracy);
            Num(w, "robustLoss", a.RobustLoss);
            w.WriteStartArray("adv");
            foreach (var v in a.Adversarial) w.WriteNumberValue(MathF.Round(v, 4));
            w.WriteEndArray();
            w.WriteString("broken", Bits(a.Broken));
            if (a.Certified is { } c) w.WriteString("certified", Bits(c));
            if (a.SmoothedRadius is { } radii)
            {
                w.WriteStartArray("smoothRadius");
                foreach (var r in radii) w.WriteNumberValue(MathF.Round(r, 3));
                w.WriteEndArray();
                Num(w, "smoothAcc", a.SmoothedCertifiedAccuracy);
                w.WriteString("smoothing", a.SmoothingParameters);
            }
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    private static string Bits(bool[] flags) => string.Create(flags.Length, flags, (span, f) => { for (int i = 0; i < f.Length; i++) span[i] = f[i] ? '1' : '0'; });

    private static void Num(Utf8JsonWriter w, string name, double? v)
    {
        w.WritePropertyName(name);
        NumValue(w, v);
    }

    private static void NumValue(Utf8JsonWriter w, double? v)
    {
        if (v is { } x && double.IsFinite(x)) w.WriteNumberValue(Math.Round(x, 6));
        else w.WriteNullValue();
    }

    /// <summary>The points of the current data set: [x₁, x₂, label] for training and test.</summary>
    public static string Data(PlaygroundEngine engine)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("type", "data");
            w.WriteNumber("generation", engine.Generation);
            w.WriteString("problem", engine.State.IsClassification ? "classification" : "regression");
            Points(w, "train", engine.TrainPoints);
            Points(w, "test", engine.TestPoints);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void Points(Utf8JsonWriter w, string name, ToyPoint[] points)
    {
        w.WriteStartArray(name);
        foreach (var p in points)
        {
            w.WriteStartArray();
            w.WriteNumberValue(Math.Round(p.X1, 4));
            w.WriteNumberValue(Math.Round(p.X2, 4));
            w.WriteNumberValue(Math.Round(p.Label, 4));
            w.WriteEndArray();
        }
        w.WriteEndArray();
    }

    public static string Message(string type, params (string Key, object? Value)[] fields)
    {
        var d = new Dictionary<string, object?> { ["type"] = type };
        foreach (var (k, v) in fields) d[k] = v;
        return JsonSerializer.Serialize(d);
    }
}
