using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using Robustness.Playground;

namespace Robustness.Playground.Tests;

public class ServerTests
{
    private static PlaygroundFactory Factory(PlaygroundOptions? o = null) => new(o ?? new PlaygroundOptions());

    [Fact]
    public async Task The_page_and_its_assets_are_served_from_the_assembly()
    {
        using var f = Factory();
        var client = f.CreateClient();
        var page = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType!.MediaType);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("Robustness <span>Playground</span>", html);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org", ""));  // nothing from a CDN
        foreach (var (path, type) in new[] { ("/app.js", "text/javascript"), ("/style.css", "text/css"), ("/favicon.svg", "image/svg+xml") })
        {
            var r = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal(type, r.Content.Headers.ContentType!.MediaType);
            Assert.True((await r.Content.ReadAsByteArrayAsync()).Length > 100);
        }
        foreach (var bad in new[] { "/missing.js", "/app.exe", "/..%2F..%2Fetc%2Fpasswd", "/wwwroot%2Fapp.js" })
            Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync(bad)).StatusCode);
        var ws = await client.GetAsync("/ws");
        Assert.Equal(HttpStatusCode.BadRequest, ws.StatusCode);
        var status = JsonDocument.Parse(await client.GetStringAsync("/api/status")).RootElement;
        Assert.Equal(32, status.GetProperty("maxSessions").GetInt32());
    }

    [Fact]
    public async Task A_session_trains_streams_frames_and_applies_each_command()
    {
        using var f = Factory();
        using var page = await f.ConnectAsync();
        var welcome = await page.WaitForAsync(m => PageClient.Type(m) == "welcome", "welcome");
        Assert.False(string.IsNullOrEmpty(welcome.GetProperty("session").GetString()));
        await page.SendAsync(new { type = "state", state = new { dataset = "spiral", features = "x1,x2,sinx1", networkShape = "6,3", learningRate = 0.1 } });
        var state = await page.WaitForAsync(m => PageClient.Type(m) == "state", "state echo");
        Assert.Equal("spiral", state.GetProperty("state").GetProperty("dataset").GetString());
        Assert.Equal("6,3", state.GetProperty("state").GetProperty("networkShape").GetString());
        var data = await page.WaitForAsync(m => PageClient.Type(m) == "data" && m.GetProperty("train").GetArrayLength() == 250, "spiral data");
        Assert.Equal(250, data.GetProperty("test").GetArrayLength());

        var first = await page.FrameAsync(m => m.GetProperty("networks")[0].GetProperty("weights")[0].GetArrayLength() == 6
            && m.GetProperty("networks")[0].GetProperty("weights")[0][0].GetArrayLength() == 3, "frame of the 6,3 network on 3 features");
        Assert.Equal(0, first.GetProperty("epoch").GetInt32());
        // payload: the heat map, then thumbnails for 3 features + 6 + 3 neurons + the output
        int grid = first.GetProperty("grid").GetInt32(), thumb = first.GetProperty("thumb").GetInt32();
        Assert.Equal(13, first.GetProperty("thumbCount").GetInt32());
        Assert.Equal(grid * grid + 13 * thumb * thumb, page.LastPayload.Length);

        await page.SendAsync(new { type = "step" });
        var stepped = await page.FrameAsync(m => m.GetProperty("epoch").GetInt32() == 1, "epoch 1 after a step");
        Assert.False(stepped.GetProperty("playing").GetBoolean());

        await page.SendAsync(new { type = "play" });
        var playing = await page.FrameAsync(m => m.GetProperty("playing").GetBoolean() && m.GetProperty("epoch").GetInt32() > 10, "training past epoch 10");
        var losses = playing.GetProperty("networks")[0];
        Assert.True(losses.GetProperty("testLoss").GetDouble() > 0);
        await page.SendAsync(new { type = "pause" });
        var paused = await page.FrameAsync(m => !m.GetProperty("playing").GetBoolean(), "paused frame");

        await page.SendAsync(new { type = "weight", layer = 0, to = 2, from = 1, value = 1.25 });
        await page.FrameAsync(m => Math.Abs(m.GetProperty("networks")[0].GetProperty("weights")[0][2][1].GetDouble() - 1.25) < 1e-6, "the edited weight");
        await page.SendAsync(new { type = "bias", layer = 1, neuron = 0, value = -0.5 });
        await page.FrameAsync(m => Math.Abs(m.GetProperty("networks")[0].GetProperty("biases")[1][0].GetDouble() + 0.5) < 1e-6, "the edited bias");

        // PGD-AT with a side-by-side standard twin; the latest attack reports robust ≤ clean and certified ≤ robust.
        await page.SendAsync(new { type = "state", state = new { objective = "pgd", epsilon = 0.3, showAttack = true } });
        var twin = await page.FrameAsync(m => m.GetProperty("networks").GetArrayLength() == 2 && m.GetProperty("networks")[1].TryGetProperty("attack", out _), "a frame with the standard twin");
        Assert.Equal(grid * grid * 2 + 13 * thumb * thumb, page.LastPayload.Length);
        foreach (var n in twin.GetProperty("networks").EnumerateArray())
        {
            var a = n.GetProperty("attack");
            double clean = n.GetProperty("testAcc").GetDouble(), robust = a.GetProperty("robustAcc").GetDouble(), certified = a.GetProperty("certifiedAcc").GetDouble();
            Assert.InRange(robust, 0, clean + 1e-9);
            Assert.InRange(certified, 0, robust + 1e-9);
            Assert.Equal(500, a.GetProperty("adv").GetArrayLength());
            Assert.Equal(250, a.GetProperty("broken").GetString()!.Length);
        }
        Assert.Equal("standard", twin.GetProperty("networks")[1].GetProperty("role").GetString());
        Assert.Equal("pgd", twin.GetProperty("networks")[0].GetProperty("objective").GetString());

        await page.SendAsync(new { type = "reset" });
        await page.FrameAsync(m => m.GetProperty("epoch").GetInt32() == 0 && m.GetProperty("networks")[0].GetProperty("history").GetArrayLength() <= 1, "epoch 0 after reset");
    }

    public static TheoryData<string, string> BadMessages => new()
    {
        { "not json", "message: not valid JSON" },
        { "[1,2,3]", "message: must be a JSON object" },
        { "{\"kind\":\"play\"}", "type: missing" },
        { "{\"type\":\"dance\"}", "unknown command 'dance'" },
        { "{\"type\":\"state\"}", "state: missing" },
        { "{\"type\":\"state\",\"state\":{\"learningRate\":99}}", "learningRate: must be in [1E-05, 10], got 99" },
        { "{\"type\":\"state\",\"state\":{\"learningRate\":\"fast\"}}", "learningRate: 'fast' is not a finite number" },
        { "{\"type\":\"state\",\"state\":{\"networkShape\":\"4,9\"}}", "networkShape: each hidden layer has 1–8 neurons, got 9" },
        { "{\"type\":\"state\",\"state\":{\"networkShape\":\"1,1,1,1,1,1,1\"}}", "networkShape: at most 6 hidden layers" },
        { "{\"type\":\"state\",\"state\":{\"features\":\"\"}}", "features: at least one input feature must be on" },
        { "{\"type\":\"state\",\"state\":{\"features\":\"x1,x3\"}}", "features: 'x3' is not one of" },
        { "{\"type\":\"state\",\"state\":{\"dataset\":\"moons\"}}", "dataset: 'moons' is not one of circle, xor, gauss, spiral" },
        { "{\"type\":\"state\",\"state\":{\"epsilon\":-1}}", "epsilon: must be in [0, 3], got -1" },
        { "{\"type\":\"state\",\"state\":{\"objective\":\"pgd\",\"epsilon\":0}}", "epsilon: the pgd objective trains against an ε-ball and needs ε > 0" },
        { "{\"type\":\"state\",\"state\":{\"batchSize\":31}}", "batchSize: must be in [1, 30], got 31" },
        { "{\"type\":\"state\",\"state\":{\"percTrainData\":95}}", "percTrainData: must be in [10, 90], got 95" },
        { "{\"type\":\"state\",\"state\":{\"noise\":\"1e400\"}}", "noise: '1e400' is not a whole number" },
        { "{\"type\":\"state\",\"state\":{\"compare\":\"maybe\"}}", "compare: 'maybe' is not true or false" },
        { "{\"type\":\"state\",\"state\":{\"hacker\":1}}", "hacker: unknown setting" },
        { "{\"type\":\"state\",\"state\":{\"seed\":{\"a\":1}}}", "seed: expected a string, number or boolean, got object" },
        { "{\"type\":\"weight\",\"layer\":7,\"to\":0,\"from\":0,\"value\":1}", "layer: must be in [0, 2], got 7" },
        { "{\"type\":\"weight\",\"layer\":0,\"to\":0,\"from\":5,\"value\":1}", "from: input 5 is not in layer 0" },
        { "{\"type\":\"weight\",\"layer\":0,\"to\":0,\"from\":0,\"value\":\"NaN\"}", "value: must be finite" },
        { "{\"type\":\"weight\",\"layer\":0,\"to\":0,\"from\":0,\"value\":1000}", "value: a weight must be a finite number in [-100, 100], got 1000" },
        { "{\"type\":\"bias\",\"layer\":0,\"neuron\":-1,\"value\":0}", "neuron: neuron -1 is not in layer 1" },
        { "{\"type\":\"weight\",\"layer\":0.5,\"to\":0,\"from\":0,\"value\":0}", "layer: missing or not a whole number" },
    };

    [Theory]
    [MemberData(nameof(BadMessages))]
    public async Task A_bad_message_gets_a_one_line_error_and_the_session_carries_on(string message, string expected)
    {
        using var f = Factory();
        using var page = await f.ConnectAsync();
        await page.FrameAsync();
        await page.SendAsync(message);
        var error = await page.ErrorAsync();
        var text = error.GetProperty("message").GetString()!;
        Assert.Contains(expected, text);
        Assert.DoesNotContain("\n", text);
        Assert.DoesNotContain("Exception", text);
        Assert.False(error.TryGetProperty("fatal", out _));
        await page.SendAsync(new { type = "step" });
        await page.FrameAsync(m => m.GetProperty("epoch").GetInt32() == 1, "a step after the bad message");
    }

    [Fact]
    public async Task Fuzzed_messages_never_break_the_session_or_the_server()
    {
        using var f = Factory();
        using var page = await f.ConnectAsync();
        await page.FrameAsync();
        var rng = new Random(14);
        string[] keys = [.. PlaygroundState.Keys, "type", "state", "layer", "value", "", "__proto__"];
        string[] values = ["0", "-1", "1e9", "NaN", "\"\"", "\"x1,x2\"", "\"8,8,8,8,8,8\"", "true", "null", "[]", "{}", "\"spiral\"", "\"pgd\"", "0.3", "\"\\u0000\""];
        int errors = 0;
        for (int i = 0; i < 150; i++)
        {
            string msg = (i % 3) switch
            {
                0 => Encoding.UTF8.GetString(Enumerable.Range(0, rng.Next(1, 60)).Select(_ => (byte)rng.Next(32, 127)).ToArray()),
                1 => $"{{\"type\":\"state\",\"state\":{{\"{keys[rng.Next(keys.Length)]}\":{values[rng.Next(values.Length)]}}}}}",
                _ => $"{{\"type\":\"{new[] { "weight", "bias", "step", "state", "x" }[rng.Next(5)]}\",\"layer\":{values[rng.Next(values.Length)]},\"to\":{rng.Next(-2, 10)},\"from\":{rng.Next(-2, 10)},\"neuron\":{rng.Next(-2, 10)},\"value\":{values[rng.Next(values.Length)]}}}",
            };
            await page.SendAsync(msg);
        }
        // Whatever was accepted or refused, the session still answers, and every refusal was a one-line error.
        await page.SendAsync(new { type = "state", state = new { networkShape = "2", features = "x1,x2", objective = "standard" } });
        await page.SendAsync(new { type = "reset" });
        await page.SendAsync(new { type = "step" });
        var deadline = DateTime.UtcNow.AddSeconds(40);
        while (true)
        {
            var m = (await page.ReceiveAsync())!.Value;
            if (PageClient.Type(m) == "error")
            {
                errors++;
                Assert.False(m.TryGetProperty("fatal", out _), m.GetProperty("message").GetString());
                Assert.DoesNotContain("\n", m.GetProperty("message").GetString());
            }
            if (PageClient.Type(m) == "frame" && m.GetProperty("epoch").GetInt32() == 1 && m.GetProperty("networks")[0].GetProperty("weights").GetArrayLength() == 2) break;
            Assert.True(DateTime.UtcNow < deadline, "the session stopped answering after the fuzzed messages");
        }
        Assert.True(errors > 50, $"only {errors} fuzzed messages were refused");
        var status = JsonDocument.Parse(await f.CreateClient().GetStringAsync("/api/status")).RootElement;
        Assert.Equal(1, status.GetProperty("sessions").GetInt32());
    }

    [Fact]
    public async Task Oversized_and_binary_messages_are_refused()
    {
        using var f = Factory(new PlaygroundOptions { MaxMessageBytes = 2048 });
        using (var page = await f.ConnectAsync())
        {
            await page.FrameAsync();
            await page.Socket.SendAsync(new byte[] { 1, 2, 3 }, WebSocketMessageType.Binary, true, CancellationToken.None);
            Assert.Contains("expected JSON text, got binary", (await page.ErrorAsync()).GetProperty("message").GetString());
            await page.SendAsync("{\"type\":\"ping\",\"pad\":\"" + new string('x', 5000) + "\"}");
            await page.WaitForAsync(_ => false, "close").ContinueWith(t => Assert.IsType<InvalidOperationException>(t.Exception!.InnerException));
            Assert.Equal(WebSocketCloseStatus.MessageTooBig, page.Socket.CloseStatus);
        }
        await WaitFor(() => f.Services.GetSessions().Count == 0, "the oversized session to be freed");
    }

    [Fact]
    public async Task Sessions_are_bounded_in_number_and_end_when_idle()
    {
        using var f = Factory(new PlaygroundOptions { MaxSessions = 2, IdleTimeout = TimeSpan.FromSeconds(1.5) });
        using var a = await f.ConnectAsync();
        using var b = await f.ConnectAsync();
        await a.FrameAsync();
        await b.FrameAsync();
        using var c = await f.ConnectAsync();
        var refused = await c.ErrorAsync();
        Assert.True(refused.GetProperty("fatal").GetBoolean());
        Assert.Contains("already runs 2 sessions, its limit", refused.GetProperty("message").GetString());
        // a keeps talking, b stays silent: b ends after the idle timeout, a lives on.
        var end = DateTime.UtcNow.AddSeconds(2.5);
        while (DateTime.UtcNow < end) { await a.SendAsync(new { type = "ping" }); await Task.Delay(200); }
        var ended = await b.ErrorAsync();
        Assert.True(ended.GetProperty("fatal").GetBoolean());
        Assert.Contains("without input", ended.GetProperty("message").GetString());
        await WaitFor(() => f.Services.GetSessions().Count == 1, "the idle session to be freed");
        await a.SendAsync(new { type = "step" });
        await a.FrameAsync(m => m.GetProperty("epoch").GetInt32() == 1, "the active session still trains");
    }

    internal static async Task WaitFor(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"waited 20 s for {what}");
            await Task.Delay(50);
        }
    }
}

internal static class ServiceExtensions
{
    public static IReadOnlyCollection<Session> GetSessions(this IServiceProvider services) =>
        ((SessionManager)services.GetService(typeof(SessionManager))!).Sessions;
}
