using System.CommandLine;
using System.Diagnostics;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Playground;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Spectre.Console;

namespace Robustness.Cli.Commands.Playground;

/// <summary>
/// `robust playground`: serves the adversarial playground (`--port`, `--host`, `--open`), or with `--render` trains
/// one setup headless and writes the picture the page shows (`--out view.png`).
/// </summary>
public sealed class PlaygroundCommand
{
    private static readonly Option<int> PortOption = new("--port") { Description = "TCP port to listen on.", DefaultValueFactory = _ => 8080 };
    private static readonly Option<string> HostOption = new("--host") { Description = "Address to listen on (127.0.0.1 = this machine only; 0.0.0.0 = every interface).", DefaultValueFactory = _ => "127.0.0.1" };
    private static readonly Option<bool> OpenOption = new("--open") { Description = "Open the page in the default browser." };
    private static readonly Option<int> MaxSessionsOption = new("--max-sessions") { Description = "Browser tabs served at once.", DefaultValueFactory = _ => 32 };
    private static readonly Option<int> IdleOption = new("--idle-minutes") { Description = "End a session after this many minutes without input from its page.", DefaultValueFactory = _ => 30 };
    private static readonly Option<bool> RenderOption = new("--render") { Description = "Do not serve: train one setup headless and write its picture to --out." };
    private static readonly Option<string?> OutOption = new("--out") { Description = "PNG to write with --render." };
    private static readonly Option<string?> StateOption = new("--state") { Description = "A setup as in the page's URL after '#' (key=value&...); the options below override it." };
    private static readonly Option<string?> DatasetOption = new("--dataset") { Description = "circle, xor, gauss, spiral (classification) or plane, multigauss (regression)." };
    private static readonly Option<string?> DefenseOption = new("--defense") { Description = "Training objective: none, pgd, trades, gaussian, fgsm-rs." };
    private static readonly Option<double?> EpsOption = new("--eps") { Description = "ε of the threat model (training and attack), in the units of the [-6, 6] view." };
    private static readonly Option<string?> NormOption = new("--norm") { Description = "linf or l2." };
    private static readonly Option<int> EpochsOption = new("--epochs") { Description = "Epochs to train with --render.", DefaultValueFactory = _ => 200 };
    private static readonly Option<string?> FeaturesOption = new("--features") { Description = "Input features (x1, x2, x1sq, x2sq, x1x2, sinx1, sinx2); --render default x1,x2,x1x2,sinx1,sinx2." };
    private static readonly Option<string?> HiddenOption = new("--hidden") { Description = "Hidden layer widths, e.g. 8,8,4 (0–6 layers of 1–8 neurons; \"\" for none); --render default 8,8." };
    private static readonly Option<string?> ActivationOption = new("--activation") { Description = "relu, tanh, sigmoid or linear." };
    private static readonly Option<double?> LrOption = new("--lr") { Description = "Learning rate (0.00001–10); --render default 0.1." };
    private static readonly Option<int?> NoiseOption = new("--noise") { Description = "Noise 0–50." };
    private static readonly Option<long?> SeedOption = new("--seed") { Description = "Seed of the data, the initial weights and the batch order." };
    private static readonly Option<int?> LoadTestOption = new("--load-test") { Description = "Do not serve: start the server on 127.0.0.1, open N sessions at once that train the given setup for --seconds, and report frames, epochs, errors and memory." };
    private static readonly Option<double> SecondsOption = new("--seconds") { Description = "Duration of --load-test.", DefaultValueFactory = _ => 10 };
    private static readonly Option<bool> JsonOption = new("--json") { Description = "With --load-test: print the result as JSON." };
    private static readonly Option<int> WidthOption = new("--width") { Description = "Width of the picture in pixels (800–3000).", DefaultValueFactory = _ => 1400 };

    public static Command Definition()
    {
        var command = new Command("playground", "Serve the adversarial playground in the browser (or --render one setup to a PNG).")
        {
            PortOption, HostOption, OpenOption, MaxSessionsOption, IdleOption, RenderOption, OutOption, StateOption, DatasetOption,
            DefenseOption, EpsOption, NormOption, EpochsOption, FeaturesOption, HiddenOption, ActivationOption, LrOption, NoiseOption,
            SeedOption, WidthOption, LoadTestOption, SecondsOption, JsonOption,
        };
        CommandRunner.SetAction(command, parse => parse.GetValue(RenderOption) ? Render(parse) : parse.GetValue(LoadTestOption) is { } n ? Load(parse, n) : Serve(parse));
        return command;
    }

    /// <summary>Library parameter names → this verb's flags, for error messages.</summary>
    private static readonly Dictionary<string, string> Flags = new()
    {
        ["dataset"] = "--dataset", ["regDataset"] = "--dataset", ["objective"] = "--defense", ["epsilon"] = "--eps", ["norm"] = "--norm",
        ["features"] = "--features", ["networkShape"] = "--hidden", ["activation"] = "--activation", ["learningRate"] = "--lr",
        ["noise"] = "--noise", ["seed"] = "--seed", ["Port"] = "--port", ["Host"] = "--host", ["MaxSessions"] = "--max-sessions",
        ["IdleTimeout"] = "--idle-minutes",
    };

    private static T Mapped<T>(Func<T> body, string? fallback = null)
    {
        try { return body(); }
        catch (ParameterException e)
        {
            var flag = fallback is not null ? $"{fallback} ({e.Parameter})" : Flags.TryGetValue(e.Parameter, out var f) ? f : e.Parameter;
            throw new InputException($"{flag}: {e.Problem}");
        }
    }

    private static int Serve(ParseResult parse)
    {
        var options = Mapped(() => new PlaygroundOptions
        {
            Host = parse.GetValue(HostOption)!,
            Port = parse.GetValue(PortOption),
            MaxSessions = parse.GetValue(MaxSessionsOption),
            IdleTimeout = TimeSpan.FromMinutes(parse.GetValue(IdleOption)),
            InitialState = RenderState(parse, requireDataset: false),
        }.Validate());
        var app = Mapped(() => PlaygroundServer.Build(options));
        try { app.Start(); }
        catch (IOException e) { throw new InputException($"--port: cannot listen on {options.Host}:{options.Port} ({e.Message})"); }
        var shownHost = options.Host == "0.0.0.0" ? "127.0.0.1" : options.Host;
        var url = $"http://{shownHost}:{options.Port}/";
        CommandRunner.Out.MarkupLine($"[bold]Robustness Playground[/] at [link]{Markup.Escape(url)}[/]  (Ctrl+C to stop; up to {options.MaxSessions} tabs, {options.IdleTimeout.TotalMinutes:0} min idle timeout)");
        if (parse.GetValue(OpenOption)) OpenBrowser(url);
        app.WaitForShutdown();
        return ExitCodes.Ok;
    }

    private static void OpenBrowser(string url)
    {
        try
        {
            var opener = OperatingSystem.IsWindows() ? "explorer" : OperatingSystem.IsMacOS() ? "open" : "xdg-open";
            using var _ = Process.Start(new ProcessStartInfo(opener, url) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true });
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            CommandRunner.Out.MarkupLine($"[yellow]could not open a browser ({Markup.Escape(e.Message)}); open the URL yourself[/]");
        }
    }

    /// <summary>The state from --state and the individual options.</summary>
    private static PlaygroundState RenderState(ParseResult parse, bool requireDataset)
    {
        var state = new PlaygroundState();
        var given = parse.GetValue(StateOption) is { } text ? Mapped(() => PlaygroundState.ParseQuery(text), "--state") : [];
        var changes = new Dictionary<string, string>();
        if (requireDataset)
        {
            // A rendered picture should show a network that can learn every toy set: unless told otherwise, feed in
            // X1X2 and the sines and use two hidden layers of 8 (the page starts from the TF Playground's 2 features, 4,2).
            if (!given.ContainsKey("features")) changes["features"] = "x1,x2,x1x2,sinx1,sinx2";
            if (!given.ContainsKey("networkShape")) changes["networkShape"] = "8,8";
            if (!given.ContainsKey("learningRate")) changes["learningRate"] = "0.1";
        }
        state = Mapped(() => state.With(given), "--state");
        if (parse.GetValue(DatasetOption) is { } d)
        {
            var problem = Robustness.Data.Toy.ToyDatasets.RegressionNames.Contains(d.ToLowerInvariant()) ? "regression" : "classification";
            changes["problem"] = problem;
            changes[problem == "regression" ? "regDataset" : "dataset"] = d;
        }
        if (parse.GetValue(DefenseOption) is { } def) changes["objective"] = def == "none" ? "standard" : def;
        if (parse.GetValue(EpsOption) is { } eps) changes["epsilon"] = eps.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        if (parse.GetValue(NormOption) is { } norm) changes["norm"] = norm;
        if (parse.GetValue(FeaturesOption) is { } f) changes["features"] = f;
        if (parse.GetValue(HiddenOption) is { } h) changes["networkShape"] = h;
        if (parse.GetValue(ActivationOption) is { } a) changes["activation"] = a;
        if (parse.GetValue(LrOption) is { } lr) changes["learningRate"] = lr.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        if (parse.GetValue(NoiseOption) is { } n) changes["noise"] = n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (parse.GetValue(SeedOption) is { } s) changes["seed"] = s.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Mapped(() => state.With(changes));
    }

    private static int Render(ParseResult parse)
    {
        var outPath = parse.GetValue(OutOption) ?? throw new InputException("--out: required with --render (the PNG to write)");
        if (!outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase)) throw new InputException($"--out: '{outPath}' must end in .png");
        int epochs = parse.GetValue(EpochsOption);
        if (epochs < 0 || epochs > 100_000) throw new InputException($"--epochs: must be in [0, 100000], got {epochs}");
        int width = parse.GetValue(WidthOption);
        if (width < 800 || width > 3000) throw new InputException($"--width: must be in [800, 3000], got {width}");
        var state = RenderState(parse, requireDataset: true);
        // The picture of a rendered run shows everything the page can: test points, balls, attacks, certificates.
        state = state with { ShowTestData = true, ShowBalls = state.Epsilon > 0, ShowAttack = state.Epsilon > 0, ShowCertified = state.IsClassification && state.Epsilon > 0 };
        var sw = Stopwatch.StartNew();
        // The networks are tiny: one intra-op thread is fastest (more threads only add synchronisation per op).
        TorchSharp.torch.set_num_threads(1);
        using var engine = new PlaygroundEngine(state, gridSize: 120);
        CommandRunner.Out.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("training", maxValue: Math.Max(1, epochs));
                engine.Evaluate();
                for (int e = 0; e < epochs; e++) { engine.RunEpoch(); engine.Evaluate(); task.Increment(1); }
            });
        engine.Evaluate();
        engine.Attack();
        var png = PlaygroundRenderer.Render(engine, width);
        AtomicFile.WriteAllBytes(outPath, png);
        var table = new Table().AddColumn("network").AddColumn("test loss").AddColumn(state.IsClassification ? "clean acc." : "adv. loss")
            .AddColumn(state.IsClassification ? "robust acc." : "").AddColumn(state.IsClassification ? "IBP-certified" : "");
        foreach (var n in engine.Snapshots())
        {
            var a = n.Attack;
            table.AddRow(Markup.Escape(n.Objective), F(n.TestLoss), state.IsClassification ? P(n.TestAccuracy) : F(a?.RobustLoss),
                state.IsClassification ? P(a?.RobustAccuracy) : "", state.IsClassification ? P(a?.CertifiedAccuracy) : "");
        }
        CommandRunner.Out.Write(table);
        CommandRunner.Out.MarkupLine($"wrote [bold]{Markup.Escape(Path.GetFullPath(outPath))}[/] ({epochs} epochs, {sw.Elapsed.TotalSeconds:0.0} s; seed {state.Seed}; "
            + $"setup: {Markup.Escape(state.ToQuery())})");
        return ExitCodes.Ok;
    }

    private static int Load(ParseResult parse, int sessions)
    {
        if (sessions < 1 || sessions > 200) throw new InputException($"--load-test: must be in [1, 200] sessions, got {sessions}");
        double seconds = parse.GetValue(SecondsOption);
        if (!(seconds > 0 && seconds <= 600)) throw new InputException($"--seconds: must be in (0, 600], got {seconds}");
        var state = RenderState(parse, requireDataset: true);
        var options = new PlaygroundOptions { Host = "127.0.0.1", Port = 0, MaxSessions = Math.Max(sessions, 1) };
        var app = PlaygroundServer.Build(options);
        app.Start();
        try
        {
            var address = new Uri(app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
                .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First());
            var result = LoadTest.RunAsync(address, sessions, TimeSpan.FromSeconds(seconds), state.ToDictionary()).GetAwaiter().GetResult();
            if (parse.GetValue(JsonOption))
            {
                Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
                {
                    sessions, seconds, setup = state.ToQuery(), errors = result.Errors, frames_per_second_per_session = result.FramesPerSecondPerSession,
                    epochs_per_second_per_session = result.EpochsPerSecondPerSession, epochs_per_second_total = result.EpochsPerSecondTotal,
                    working_set_bytes_per_session = result.BytesPerSession, frame_bytes = result.Pages.Max(p => p.FrameBytes),
                    processor_count = Environment.ProcessorCount, pages = result.Pages,
                }));
            }
            else
            {
                var t = new Table().AddColumn("measure").AddColumn("value");
                t.AddRow("sessions × seconds", $"{sessions} × {seconds:0.#}");
                t.AddRow("setup", Markup.Escape($"{state.ActiveDataset}, {TrainCount(state)} training points, hidden {string.Join(",", state.NetworkShape)}, {state.Objective}"));
                t.AddRow("frames/s per session", $"{result.FramesPerSecondPerSession:0.0}");
                t.AddRow("epochs/s per session", $"{result.EpochsPerSecondPerSession:0.0}");
                t.AddRow("epochs/s all sessions", $"{result.EpochsPerSecondTotal:0.0}");
                t.AddRow("frame size", $"{result.Pages.Max(p => p.FrameBytes) / 1024.0:0.0} KiB");
                t.AddRow("memory per session", $"{result.BytesPerSession / (1024 * 1024):0.0} MiB (process working set)");
                t.AddRow("errors", result.Errors == 0 ? "none" : $"{result.Errors}: {Markup.Escape(result.Pages.First(p => p.Errors > 0).FirstError ?? "")}");
                CommandRunner.Out.Write(t);
            }
            return result.Errors == 0 ? ExitCodes.Ok : ExitCodes.Failure;
        }
        finally
        {
            app.StopAsync().GetAwaiter().GetResult();
        }
    }

    private static int TrainCount(PlaygroundState s) => (int)Math.Floor(Robustness.Data.Toy.ToyDatasets.DefaultCount(s.ActiveDataset) * s.PercTrainData / 100.0);

    private static string F(double? v) => v is { } x && double.IsFinite(x) ? x.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture) : "–";
    private static string P(double? v) => v is { } x ? (100 * x).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) + "%" : "–";
}
