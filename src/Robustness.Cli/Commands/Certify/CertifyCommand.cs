using System.CommandLine;
using System.Globalization;
using Robustness.Certification;
using Robustness.Cli.Commands.Eval;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Evaluation;
using Spectre.Console;

namespace Robustness.Cli.Commands.Certify;

/// <summary>Everything `robust certify` was asked to do.</summary>
public sealed record CertifyRunOptions
{
    public required ModelDataSelection Inputs { get; init; }
    /// <summary>"ibp" or "smoothing".</summary>
    public required string Method { get; init; }
    /// <summary>As given; null = the method's norm (L∞ for IBP, L2 for smoothing).</summary>
    public string? Norm { get; init; }
    public double? Epsilon { get; init; }
    public IReadOnlyList<double> Sweep { get; init; } = [];
    public double? Sigma { get; init; }
    public int N0 { get; init; } = 100;
    public int NoiseSamples { get; init; } = 100_000;
    public double Alpha { get; init; } = 0.001;
    public string CheckAttacks { get; init; } = "apgd-ce";
    public int CheckPoints { get; init; } = 100;
    public int CheckSamples { get; init; } = 10_000;
    public IReadOnlyList<string> Overlay { get; init; } = [];
    public long Seed { get; init; }
    public int? BatchSize { get; init; }
    public string Device { get; init; } = "auto";
    public int Threads { get; init; }
    /// <summary>Where the certificate is recorded (the verb: the results database unless --no-record).</summary>
    public ResultsTarget Results { get; init; } = ResultsTarget.None;
    public required string Out { get; init; }
}

/// <summary>
/// `robust certify`: proofs of robustness per point — IBP verification at L∞ ε, or randomized smoothing's certified
/// L2 radius — cross-checked against an attack, written as certificate.json / .md / .html and a plot.
/// </summary>
public sealed class CertifyCommand(CertifyRunOptions o)
{
    public static readonly IReadOnlyList<string> Methods = ["ibp", "crown-ibp", "smoothing"];

    private static readonly ModelDataOptionSet Inputs = new();
    private static readonly Option<string> MethodOption = new("--method") { Description = "ibp (interval bound propagation, L∞), crown-ibp (the better of IBP and CROWN-IBP bounds, L∞) or smoothing (randomized smoothing, L2).", Required = true };
    private static readonly Option<string?> NormOption = new("--norm") { Description = "Threat-model norm (ibp: linf; smoothing: l2); default the method's." };
    private static readonly Option<string?> EpsOption = new("--eps") { Description = "ibp: L∞ radius ε to verify (input units)." };
    private static readonly Option<string?> SweepOption = new("--eps-sweep") { Description = "ibp: more radii for the verified-accuracy curve, e.g. 0.02,0.05,0.1." };
    private static readonly Option<double?> SigmaOption = new("--sigma") { Description = "smoothing: noise standard deviation σ (use the σ the base classifier was trained with)." };
    private static readonly Option<int> N0Option = new("--n0") { Description = "smoothing: noise samples to choose the top class (n0).", DefaultValueFactory = _ => 100 };
    private static readonly Option<int> NoiseSamplesOption = new("--noise-samples") { Description = "smoothing: noise samples n to estimate p_A (the paper's 100,000; fewer is faster but certifies smaller radii).", DefaultValueFactory = _ => 100_000 };
    private static readonly Option<double> AlphaOption = new("--alpha") { Description = "smoothing: failure probability α of each certificate.", DefaultValueFactory = _ => 0.001 };
    private static readonly Option<string> CheckAttacksOption = new("--check-attacks") { Description = "ibp: attacks run on every clean-correct point to confirm verified ≤ empirical (registry names or preset; 'none' to skip).", DefaultValueFactory = _ => "apgd-ce" };
    private static readonly Option<int> CheckPointsOption = new("--check-points") { Description = "smoothing: points (the first ones) on which the smoothed classifier is attacked to confirm certified ≤ empirical (0 = skip).", DefaultValueFactory = _ => 100 };
    private static readonly Option<int> CheckSamplesOption = new("--check-samples") { Description = "smoothing: PREDICT's noise samples on the clean and attacked points of the check.", DefaultValueFactory = _ => 10_000 };
    private static readonly Option<string?> OverlayOption = new("--overlay") { Description = "Comma-separated folders of earlier certificates (e.g. other σ) to draw on the same plot." };
    private static readonly Option<long> SeedOption = SharedOptions.Seed();
    private static readonly Option<int?> BatchOption = new("--batch-size") { Description = "ibp: points per batch (default 256); smoothing: noisy copies per forward pass (default 250)." };
    private static readonly Option<string> DeviceOption = SharedOptions.Device();
    private static readonly Option<int> ThreadsOption = SharedOptions.Threads();
    private static readonly Option<string> OutOption = SharedOptions.Out("Output directory (certificate.json, certificate.md, certificate.html, plots/).");
    private static readonly ResultsDbOptions ResultsOptions = ResultsDbOptions.ForRecording();

    public static Command Definition()
    {
        var command = new Command("certify", "Prove robustness per point: IBP verification (L∞) or randomized smoothing (L2), cross-checked against attacks.")
        {
            MethodOption, NormOption, EpsOption, SweepOption, SigmaOption, N0Option, NoiseSamplesOption, AlphaOption,
            CheckAttacksOption, CheckPointsOption, CheckSamplesOption, OverlayOption, SeedOption, BatchOption, DeviceOption, ThreadsOption, OutOption,
        };
        Inputs.AddTo(command);
        ResultsOptions.AddTo(command);
        CommandRunner.SetAction(command, p => new CertifyCommand(new CertifyRunOptions
        {
            Results = ResultsOptions.Read(p),
            Inputs = Inputs.Read(p),
            Method = p.GetValue(MethodOption)!,
            Norm = p.GetValue(NormOption),
            Epsilon = p.GetValue(EpsOption) is { } e ? SharedOptions.ParseDouble(e, "--eps") : null,
            Sweep = EvalCommand.ParseList(p.GetValue(SweepOption), "--eps-sweep"),
            Sigma = p.GetValue(SigmaOption),
            N0 = p.GetValue(N0Option),
            NoiseSamples = p.GetValue(NoiseSamplesOption),
            Alpha = p.GetValue(AlphaOption),
            CheckAttacks = p.GetValue(CheckAttacksOption)!,
            CheckPoints = p.GetValue(CheckPointsOption),
            CheckSamples = p.GetValue(CheckSamplesOption),
            Overlay = (p.GetValue(OverlayOption) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            Seed = p.GetValue(SeedOption),
            BatchSize = p.GetValue(BatchOption),
            Device = p.GetValue(DeviceOption)!,
            Threads = p.GetValue(ThreadsOption),
            Out = p.GetValue(OutOption)!,
        }).Execute());
        return command;
    }

    public int Execute()
    {
        var method = o.Method.Trim().ToLowerInvariant();
        if (!Methods.Contains(method)) throw new InputException($"--method: unknown method '{o.Method}' (valid: {string.Join(", ", Methods)})");
        // Check every option before loading anything or taking the output directory.
        bool bounds = method != "smoothing";
        var norm = o.Norm is null ? (bounds ? Norm.Linf : Norm.L2) : NormNames.Parse(o.Norm);
        if (bounds && norm != Norm.Linf) throw new InputException($"--norm: {method} certifies L∞ balls, not {norm.Name()} (use --method smoothing for L2)");
        if (method == "smoothing" && norm != Norm.L2) throw new InputException($"--norm: randomized smoothing with Gaussian noise certifies L2 radii, not {norm.Name()} (use --method ibp for L∞)");
        if (o.BatchSize is { } b) SharedOptions.RequirePositive(b, "--batch-size");
        RandomizedSmoothing? smoothing = null;
        if (bounds)
        {
            if (o.Epsilon is null) throw new InputException($"--eps: {method} needs the radius to verify (e.g. --eps 0.1)");
            if (o.Sigma is not null) throw new InputException($"--sigma: is a smoothing option; {method} takes --eps");
        }
        else
        {
            if (o.Sigma is null) throw new InputException("--sigma: smoothing needs the noise level (e.g. --sigma 0.25)");
            if (o.Epsilon is not null || o.Sweep.Count > 0) throw new InputException("--eps: smoothing certifies a radius per point; it takes --sigma, not --eps");
            smoothing = new RandomizedSmoothing(o.Sigma.Value) { N0 = o.N0, N = o.NoiseSamples, Alpha = o.Alpha, BatchSize = o.BatchSize ?? RandomizedSmoothing.DefaultBatchSize };
            smoothing.Validate();
            if (o.CheckPoints < 0) throw new InputException($"--check-points: must be ≥ 0, got {o.CheckPoints}");
            SharedOptions.RequirePositive(o.CheckSamples, "--check-samples");
        }
        var overlay = o.Overlay.Select(dir => (Dir: dir, Report: JsonCertificateWriter.Read(Path.Combine(dir, "certificate.json")))).ToArray();

        o.Results.CheckBeforeRun();
        using var run = LoadedRun.Open(o.Inputs, o.Seed, o.Device, o.Threads);
        if (run.Model.Spec.MultiLabel)
            throw new InputException($"--model: {o.Inputs.Model} is multi-label (one decision per label); certify proves the top-1 class of single-label models");
        CertificateReport report = null!;
        CertificateFiles files = null!;
        var options = (Seed: o.Seed, Indices: run.Indices, Path: Path.GetFullPath(o.Inputs.Model), Sha: run.ModelSha256);
        if (bounds)
        {
            var ibp = new IbpCertificationOptions
            {
                Bounds = method == "crown-ibp" ? BoundMethod.CrownIbp : BoundMethod.Ibp,
                Epsilon = o.Epsilon!.Value,
                SweepEpsilons = o.Sweep,
                BatchSize = o.BatchSize ?? 256,
                CheckAttacks = o.CheckAttacks.Trim().Equals("none", StringComparison.OrdinalIgnoreCase) ? "" : o.CheckAttacks,
                Seed = options.Seed, SampleIndices = options.Indices, ModelPath = options.Path, ModelSha256 = options.Sha,
            };
            foreach (var e in ibp.AllEpsilons()) new ThreatModel(Norm.Linf, e, run.Model.Spec.Bounds).Validate(e == ibp.Epsilon ? "--eps" : "--eps-sweep");
            if (ibp.CheckAttacks.Length > 0) Robustness.Attacks.AttackRegistry.Preset(ibp.CheckAttacks, new ThreatModel(Norm.Linf, ibp.Epsilon, run.Model.Spec.Bounds));
            Robustness.Core.Graphs.NetworkDescriptions.Of(run.Model, method);
            using var outLock = OutputLock.Acquire(o.Out);
            ProgressReporter.Run($"certify {method} ε={ibp.Epsilon}", progress => report = new Certifier().Ibp(run.Model, run.Data, ibp, progress));
            files = Write(report, overlay, outLock);
        }
        else
        {
            var opts = new SmoothingCertificationOptions
            {
                Smoothing = smoothing!,
                CheckPoints = o.CheckPoints,
                CheckSamples = o.CheckSamples,
                Seed = options.Seed, SampleIndices = options.Indices, ModelPath = options.Path, ModelSha256 = options.Sha,
            };
            using var outLock = OutputLock.Acquire(o.Out);
            ProgressReporter.Run($"certify smoothing σ={smoothing!.Sigma}", progress => report = new Certifier().Smoothing(run.Model, run.Data, opts, progress));
            files = Write(report, overlay, outLock);
        }
        bool violated = report.EmpiricalCheck is { Passed: false };
        var document = ReportJson.Summary(report);
        document["files"] = ReportJson.Files(files);
        document["recorded"] = Array.Empty<object>();
        if (o.Results.Record)
        {
            // A certificate the attack contradicted records nothing (FromCertificate returns no record for it).
            var records = ResultRecord.FromCertificate(report, Path.Combine(Path.GetFullPath(o.Out), "certificate.json"), o.Inputs.Split);
            var saved = records.Select(r => o.Results.Append(r)!.Value).ToArray();
            document["recorded"] = saved.Select(s => ReportJson.Recorded(s)).ToArray();
            CommandRunner.Out.MarkupLine(Markup.Escape(saved.Length == 0
                ? violated ? "not recorded in the results database (the attack check contradicted the certificate)" : "not recorded in the results database (no radius on the 0.25 grid was certified)"
                : $"recorded {saved.Length} {(saved.Length == 1 ? "entry" : "entries")} (#{saved[0].Record.Id}{(saved.Length > 1 ? $"–#{saved[^1].Record.Id}" : "")}) in {saved[0].Database}"));
        }
        JsonOutput.Write(document);
        return violated ? ExitCodes.Failure : ExitCodes.Ok;
    }

    private CertificateFiles Write(CertificateReport report, (string Dir, CertificateReport Report)[] overlay, OutputLock _)
    {
        var curves = overlay.Select(x => (Label(x.Report, x.Dir), x.Report)).ToArray();
        var files = CertificateBundle.WriteAll(report, o.Out, curves);
        var table = new Table().AddColumn("").AddColumn("value");
        foreach (var row in CertificateSummary.Rows(report))
            table.AddRow(Markup.Escape(row.Key), row.Key.StartsWith("WARNING", StringComparison.Ordinal) ? $"[red bold]{Markup.Escape(row.Value)}[/]" : Markup.Escape(row.Value));
        table.AddRow("certificate", Markup.Escape(files.Html));
        CommandRunner.Out.Write(table);
        if (report.EmpiricalCheck is { Passed: false })
            CommandRunner.Out.MarkupLine("[red bold]CERTIFIED ABOVE EMPIRICAL: a certified point was broken by the attack. This is a bug; see the warnings.[/]");
        return files;
    }

    private static string Label(CertificateReport r, string dir) => CertificateSummary.Verifies(r)
        ? $"{r.Method} ({Path.GetFileName(Path.TrimEndingDirectorySeparator(dir))})"
        : $"σ = {r.Provenance.Parameters.GetValueOrDefault("sigma", "?")} ({Path.GetFileName(Path.TrimEndingDirectorySeparator(dir))})";

    internal static string Inv(double v) => v.ToString(CultureInfo.InvariantCulture);
}
