using System.Net;
using System.Net.WebSockets;
using System.Reflection;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Robustness.Playground;

/// <summary>
/// The playground's web server: the page (embedded HTML, CSS, JS), a WebSocket per tab (/ws) that carries commands in
/// and frames out, and a small status endpoint. <see cref="Build"/> makes a Kestrel app for `robust playground`;
/// tests host the same <see cref="ConfigureServices"/> + <see cref="Configure"/> in memory.
/// </summary>
public static class PlaygroundServer
{
    private static readonly Dictionary<string, string> ContentTypes = new()
    {
        [".html"] = "text/html; charset=utf-8",
        [".js"] = "text/javascript; charset=utf-8",
        [".css"] = "text/css; charset=utf-8",
        [".svg"] = "image/svg+xml",
    };

    /// <summary>A Kestrel app listening on <see cref="PlaygroundOptions.Host"/>:<see cref="PlaygroundOptions.Port"/>.</summary>
    public static WebApplication Build(PlaygroundOptions options)
    {
        options = options.Validate();
        if (!IPAddress.TryParse(options.Host, out var address))
        {
            if (options.Host == "localhost") address = IPAddress.Loopback;
            else throw new Core.ParameterException(nameof(options.Host), $"'{options.Host}' is not an IP address (e.g. 127.0.0.1, or 0.0.0.0 for every interface)");
        }
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(address, options.Port));
        ConfigureServices(builder.Services, options);
        var app = builder.Build();
        Configure(app);
        return app;
    }

    public static void ConfigureServices(IServiceCollection services, PlaygroundOptions options)
    {
        services.AddSingleton(options.Validate());
        services.AddSingleton<SessionManager>();
        services.AddRouting();
    }

    public static void Configure(IApplicationBuilder app)
    {
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) });
        app.UseRouting();
        app.UseEndpoints(Map);
    }

    private static void Map(IEndpointRouteBuilder e)
    {
        e.MapGet("/", (HttpContext c) => Asset(c, "index.html"));
        e.MapGet("/{file}", (HttpContext c, string file) => Asset(c, file));
        e.MapGet("/api/status", (SessionManager m) => Results.Json(new
        {
            sessions = m.Count,
            maxSessions = m.Options.MaxSessions,
            created = m.Created,
            refused = m.Refused,
            idleTimeoutSeconds = m.Options.IdleTimeout.TotalSeconds,
            framesPerSecond = m.Options.FramesPerSecond,
            maxHiddenLayers = PlaygroundState.MaxHiddenLayers,
            maxNeurons = PlaygroundState.MaxNeurons,
            liveTensors = Core.LiveTensors.Count,
        }));
        e.Map("/ws", Socket);
    }

    private static async Task Asset(HttpContext c, string file)
    {
        var ext = Path.GetExtension(file);
        var stream = ContentTypes.ContainsKey(ext) ? Assembly.GetExecutingAssembly().GetManifestResourceStream("wwwroot/" + file) : null;
        if (stream is null)
        {
            c.Response.StatusCode = StatusCodes.Status404NotFound;
            await c.Response.WriteAsync($"not found: /{file}");
            return;
        }
        await using (stream)
        {
            c.Response.ContentType = ContentTypes[ext];
            c.Response.Headers.CacheControl = "no-cache";
            c.Response.Headers["X-Content-Type-Options"] = "nosniff";
            await stream.CopyToAsync(c.Response.Body);
        }
    }

    private static async Task Socket(HttpContext c)
    {
        if (!c.WebSockets.IsWebSocketRequest)
        {
            c.Response.StatusCode = StatusCodes.Status400BadRequest;
            await c.Response.WriteAsync("/ws: expected a WebSocket request");
            return;
        }
        var manager = c.RequestServices.GetRequiredService<SessionManager>();
        using var socket = await c.WebSockets.AcceptWebSocketAsync();
        var session = manager.TryCreate();
        if (session is null)
        {
            await SendText(socket, FrameWriter.Message("error", ("fatal", true),
                ("message", $"the server already runs {manager.Options.MaxSessions} sessions, its limit; close another playground tab or try again later")), c.RequestAborted);
            await CloseQuietly(socket, WebSocketCloseStatus.PolicyViolation, "too many sessions");
            return;
        }
        try
        {
            session.SendText(FrameWriter.Message("welcome", ("session", session.Id), ("limits", new
            {
                maxSessions = manager.Options.MaxSessions,
                idleTimeoutSeconds = manager.Options.IdleTimeout.TotalSeconds,
                framesPerSecond = manager.Options.FramesPerSecond,
                maxHiddenLayers = PlaygroundState.MaxHiddenLayers,
                maxNeurons = PlaygroundState.MaxNeurons,
            })));
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(c.RequestAborted);
            var sender = SendLoop(socket, session, cts.Token);
            var receiver = ReceiveLoop(socket, session, manager.Options.MaxMessageBytes, cts.Token);
            // Either the page goes (receiver ends) or the session does (idle, failure: the sender tells the page and ends).
            await Task.WhenAny(receiver, sender);
            session.Stop("the page closed the connection");
            cts.Cancel();
            await Task.WhenAll(receiver, sender);
        }
        finally
        {
            await Task.Run(() => manager.Remove(session));
        }
    }

    private static async Task ReceiveLoop(WebSocket socket, Session session, int maxBytes, CancellationToken cancel)
    {
        var buffer = new byte[maxBytes];
        try
        {
            while (socket.State == WebSocketState.Open && !session.Stopped.IsCompleted)
            {
                int count = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (count >= buffer.Length)
                    {
                        await CloseQuietly(socket, WebSocketCloseStatus.MessageTooBig, $"messages are limited to {maxBytes} bytes");
                        return;
                    }
                    result = await socket.ReceiveAsync(buffer.AsMemory(count), cancel);
                    count += result.Count;
                } while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);
                if (result.MessageType == WebSocketMessageType.Close) return;
                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    session.SendText(FrameWriter.Message("error", ("message", "message: expected JSON text, got binary")));
                    continue;
                }
                string text;
                try { text = new UTF8Encoding(false, true).GetString(buffer, 0, count); }
                catch (DecoderFallbackException) { session.SendText(FrameWriter.Message("error", ("message", "message: not valid UTF-8"))); continue; }
                session.Receive(text);
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException) { }
    }

    private static async Task SendLoop(WebSocket socket, Session session, CancellationToken cancel)
    {
        try
        {
            while (!cancel.IsCancellationRequested && socket.State == WebSocketState.Open)
            {
                var next = await session.NextOutgoingAsync(cancel);
                if (next is null) break;
                if (next.Value.Text is { } text) await SendText(socket, text, cancel);
                else await socket.SendAsync(next.Value.Binary.AsMemory(), WebSocketMessageType.Binary, true, cancel);
            }
            if (!cancel.IsCancellationRequested && socket.State == WebSocketState.Open && session.EndReason is { } reason)
            {
                await SendText(socket, FrameWriter.Message("error", ("fatal", true), ("message", reason)), cancel);
                await CloseQuietly(socket, WebSocketCloseStatus.NormalClosure, "session ended");
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException) { }
    }

    private static Task SendText(WebSocket socket, string text, CancellationToken cancel) =>
        socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, cancel);

    private static async Task CloseQuietly(WebSocket socket, WebSocketCloseStatus status, string reason)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            if (socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
                await socket.CloseOutputAsync(status, reason, timeout.Token);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException) { }
    }
}
