using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Robustness.Playground;

namespace Robustness.Playground.Tests;

/// <summary>The playground server in memory (Microsoft.AspNetCore.Mvc.Testing): the same services and pipeline as
/// `robust playground`, on a TestServer.</summary>
public sealed class PlaygroundFactory(PlaygroundOptions options) : WebApplicationFactory<PlaygroundTestEntry>
{
    public PlaygroundOptions Options { get; } = options;

    protected override IHostBuilder CreateHostBuilder() =>
        Host.CreateDefaultBuilder().ConfigureLogging(l => l.ClearProviders()).ConfigureWebHostDefaults(web =>
        {
            web.ConfigureServices(s => PlaygroundServer.ConfigureServices(s, Options));
            web.Configure(PlaygroundServer.Configure);
        });

    protected override void ConfigureWebHost(IWebHostBuilder builder) => builder.UseContentRoot(AppContext.BaseDirectory);

    public async Task<PageClient> ConnectAsync()
    {
        var ws = await Server.CreateWebSocketClient().ConnectAsync(new Uri(Server.BaseAddress, "ws"), CancellationToken.None);
        return new PageClient(ws);
    }
}

/// <summary>What a page does over its WebSocket: sends JSON commands, reads text messages and binary frames.</summary>
public sealed class PageClient(WebSocket socket) : IDisposable
{
    private readonly byte[] _buffer = new byte[1 << 21];
    public WebSocket Socket { get; } = socket;

    public Task SendAsync(string text) => Socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
    public Task SendAsync(object message) => SendAsync(JsonSerializer.Serialize(message));

    /// <summary>The next message: text as JSON, a frame as its JSON header (payload length in "payloadBytes"), null when closed.</summary>
    public async Task<JsonElement?> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(20));
        int n = 0;
        ValueWebSocketReceiveResult r;
        do
        {
            r = await Socket.ReceiveAsync(_buffer.AsMemory(n), cts.Token);
            n += r.Count;
        } while (!r.EndOfMessage);
        if (r.MessageType == WebSocketMessageType.Close) return null;
        if (r.MessageType == WebSocketMessageType.Text) return JsonDocument.Parse(_buffer.AsMemory(0, n)).RootElement.Clone();
        int header = BitConverter.ToInt32(_buffer, 0);
        var json = JsonDocument.Parse(_buffer.AsMemory(4, header)).RootElement.Clone();
        LastPayload = _buffer.AsSpan(4 + header, n - 4 - header).ToArray();
        return json;
    }

    public byte[] LastPayload { get; private set; } = [];

    /// <summary>Reads until a message satisfies <paramref name="match"/>; fails after <paramref name="timeout"/>.</summary>
    public async Task<JsonElement> WaitForAsync(Func<JsonElement, bool> match, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (DateTime.UtcNow < deadline)
        {
            var m = await ReceiveAsync(deadline - DateTime.UtcNow);
            if (m is null) throw new InvalidOperationException($"the socket closed while waiting for {what}");
            if (match(m.Value)) return m.Value;
        }
        throw new TimeoutException($"no {what} within the timeout");
    }

    public Task<JsonElement> FrameAsync(Func<JsonElement, bool>? match = null, string what = "frame") =>
        WaitForAsync(m => Type(m) == "frame" && (match?.Invoke(m) ?? true), what);

    public Task<JsonElement> ErrorAsync() => WaitForAsync(m => Type(m) == "error", "error message");

    public static string? Type(JsonElement m) => m.TryGetProperty("type", out var t) ? t.GetString() : null;

    public void Dispose() => Socket.Dispose();
}

/// <summary>The in-memory host's anchor: a type from this (test) assembly, which has the entry point and deps file
/// WebApplicationFactory looks for; the app itself comes from <see cref="PlaygroundServer"/>.</summary>
public sealed class PlaygroundTestEntry;
