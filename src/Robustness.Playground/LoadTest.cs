using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace Robustness.Playground;

/// <summary>What one simulated page saw.</summary>
public sealed record PageResult(int Frames, int Epochs, int Errors, string? FirstError, int FrameBytes);

/// <summary>The outcome of a load test: every page's result and the server's memory.</summary>
public sealed record LoadTestResult(int Sessions, double Seconds, IReadOnlyList<PageResult> Pages, long WorkingSetBefore, long WorkingSetDuring,
    long ManagedBefore, long ManagedDuring)
{
    public int Errors => Pages.Sum(p => p.Errors);
    public double FramesPerSecondPerSession => Pages.Average(p => p.Frames) / Seconds;
    public double EpochsPerSecondPerSession => Pages.Average(p => p.Epochs) / Seconds;
    public double EpochsPerSecondTotal => Pages.Sum(p => p.Epochs) / Seconds;
    /// <summary>Process working set (managed + native) added per live session.</summary>
    public double BytesPerSession => (WorkingSetDuring - WorkingSetBefore) / (double)Sessions;
}

/// <summary>
/// A bounded load test of a running playground server on this machine: N WebSocket pages at once, each sends a setup
/// and Play, reads frames for a fixed time, then leaves. Counts frames, epochs and error messages per page. It only
/// ever talks to the loopback address it is given, and stops by itself.
/// </summary>
public static class LoadTest
{
    public static async Task<LoadTestResult> RunAsync(Uri server, int sessions, TimeSpan duration, IReadOnlyDictionary<string, string> state, Func<long>? managedBytes = null)
    {
        if (!server.IsLoopback) throw new Core.ParameterException("server", $"load tests only run against this machine (loopback), got {server.Host}");
        if (sessions < 1 || sessions > 200) throw new Core.ParameterException("sessions", $"must be in [1, 200], got {sessions}");
        if (duration <= TimeSpan.Zero || duration > TimeSpan.FromMinutes(10)) throw new Core.ParameterException("duration", "must be in (0, 10 min]");
        managedBytes ??= () => GC.GetTotalMemory(true);
        var ws = new UriBuilder(server) { Scheme = server.Scheme == "https" ? "wss" : "ws", Path = "/ws" }.Uri;
        // One short session first, so libtorch and the code paths are loaded before memory is measured.
        using (var warm = new ClientWebSocket())
        {
            await warm.ConnectAsync(ws, CancellationToken.None);
            await Page(warm, JsonSerializer.Serialize(new { type = "state", state }), TimeSpan.FromSeconds(1));
            // The timed read ends by cancellation, which aborts the socket: the server frees the session on its own.
        }
        await Task.Delay(300);
        long setBefore = Environment.WorkingSet, managedBefore = managedBytes();
        var pages = new List<ClientWebSocket>();
        try
        {
            for (int i = 0; i < sessions; i++)
            {
                var c = new ClientWebSocket();
                await c.ConnectAsync(ws, CancellationToken.None);
                pages.Add(c);
            }
            var json = JsonSerializer.Serialize(new { type = "state", state });
            var clock = Stopwatch.StartNew();
            long during = 0, managedDuring = 0;
            var probe = Task.Run(async () =>
            {
                // Memory while every session trains, a little after the start.
                await Task.Delay(duration * 0.6);
                during = Environment.WorkingSet;
                managedDuring = managedBytes();
            });
            var results = await Task.WhenAll(pages.Select(p => Page(p, json, duration)));
            await probe;
            return new LoadTestResult(sessions, duration.TotalSeconds, results, setBefore, during, managedBefore, managedDuring);
        }
        finally
        {
            foreach (var p in pages)
            {
                try { if (p.State == WebSocketState.Open) await p.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", new CancellationTokenSource(2000).Token); }
                catch (Exception e) when (e is WebSocketException or OperationCanceledException) { }
                p.Dispose();
            }
        }
    }

    private static async Task<PageResult> Page(ClientWebSocket socket, string stateJson, TimeSpan duration)
    {
        await Send(socket, stateJson);
        await Send(socket, "{\"type\":\"play\"}");
        var buffer = new byte[1 << 20];
        int frames = 0, errors = 0, startEpoch = -1, lastEpoch = 0, bytes = 0;
        string? firstError = null;
        using var stop = new CancellationTokenSource(duration);
        try
        {
            while (!stop.IsCancellationRequested)
            {
                int n = 0;
                ValueWebSocketReceiveResult r;
                do { r = await socket.ReceiveAsync(buffer.AsMemory(n), stop.Token); n += r.Count; } while (!r.EndOfMessage && n < buffer.Length);
                if (r.MessageType == WebSocketMessageType.Close) { errors++; firstError ??= "closed by the server"; break; }
                if (r.MessageType == WebSocketMessageType.Text)
                {
                    using var doc = JsonDocument.Parse(buffer.AsMemory(0, n));
                    if (doc.RootElement.GetProperty("type").GetString() == "error") { errors++; firstError ??= doc.RootElement.GetProperty("message").GetString(); }
                    continue;
                }
                int header = BitConverter.ToInt32(buffer, 0);
                using var frame = JsonDocument.Parse(buffer.AsMemory(4, header));
                if (!frame.RootElement.GetProperty("playing").GetBoolean()) continue;
                int epoch = frame.RootElement.GetProperty("epoch").GetInt32();
                if (startEpoch < 0) startEpoch = epoch;
                lastEpoch = epoch;
                frames++;
                bytes = n;
            }
        }
        catch (OperationCanceledException) { }
        catch (WebSocketException e) { errors++; firstError ??= e.Message; }
        return new PageResult(frames, Math.Max(0, lastEpoch - Math.Max(0, startEpoch)), errors, firstError, bytes);
    }

    private static Task Send(ClientWebSocket socket, string text) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
}
