using System.CommandLine;
using Robustness.Attacks;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Evaluation;
using Robustness.Models;
using Spectre.Console;

namespace Robustness.Cli.Commands.Eval;

/// <summary>Everything `robust eval` was asked to do.</summary>
public sealed record EvalRunOptions
{
    public required ModelDataSelection Inputs { get; init; }
    public Norm Norm { get; init; } = Norm.Linf;
    public double? Epsilon { get; init; }
    public IReadOnlyList<double> Sweep { get; init; } = [];
    public string Attacks { get; init; } = "standard";
    public AttackOptions AttackOptions { get; init; } = AttackOptions.Default;
    public GradientPrecision Precision { get; init; } = GradientPrecision.Float32;
    public long Seed { get; init; }
    public int BatchSize { get; init; } = 256;
    public string Device { get; init; } = "auto";
    public int Threads { get; init; }
    public int Images { get; init; } = 16;
    public bool Sanity { get; init; } = true;
    /// <summary>Also verify every point with IBP (L∞) and report certified beside empirical accuracy.</summary>
    public bool Certify { get; init; }
    public ShardSpec? Shard { get; init; }
    public MultiLabelOptions MultiLabel { get; init; } = new();
    /// <summary>Where the finished run is recorded (the verb: the results database unless --no-record; other callers: nowhere).</summary>
    public ResultsTarget Results { get; init; } = ResultsTarget.None;
    public required string Out { get; init; }
}

/// <summary>`robust eval`: clean and worst-case robust accuracy over an attack ensemble, ε sweep, sanity checks, reports.</summary>
public sealed class EvalCommand(EvalRunOptions o)
{
    private static readonly ModelDataOptionSet Inputs = new();
    private static readonly Option<string> NormOption = SharedOptions.Norm();
    private static readonly Option<string?> EpsOption = new("--eps") { Description = "Main radius ε (input units). Default: the largest value of --eps-sweep." };
    private static readonly Option<string?> SweepOption = new("--eps-sweep") { Description = "Comma-separated radii for the accuracy-vs-ε curve, e.g. 0,0.02,0.05,0.1,0.2." };
    private static readonly Option<string?> PresetOption = new("--preset")
    {
        Description = "Attack ensemble: fast (apgd-ce, apgd-t), standard (apgd-ce, apgd-t, square; the default), autoattack (AutoAttack's standard " +
            "version exactly: apgd-ce, apgd-t, fab-t, square) or rand (AutoAttack's rand version for randomised models: apgd-ce, apgd-dlr with EOT over 20).",
    };
    private static readonly Option<string?> AttacksOption = new("--attacks") { Description = $"Comma-separated attacks instead of a preset ({string.Join(", ", AttackRegistry.Names)})." };
    private static readonly AttackOptionSet AttackOptions = new();
    private static readonly Option<long> SeedOption = SharedOptions.Seed();
    private static readonly Option<int> BatchOption = SharedOptions.BatchSize(256);
    private static readonly Option<string> DeviceOption = SharedOptions.Device();
    private static readonly Option<int> ThreadsOption = SharedOptions.Threads();
    private static readonly Option<int> ImagesOption = new("--images") { Description = "Perturbation images in the report.", DefaultValueFactory = _ => 16 };
    private static readonly Option<bool> NoSanityOption = new("--no-sanity") { Description = "Skip the sanity checks (not recommended)." };
    private static readonly Option<bool> CertifyOption = new("--certify") { Description = "Also prove robustness with interval bound propagation (L∞) at every ε and report verified beside empirical accuracy; a verified point an attack breaks is flagged as a bug." };
    private static readonly Option<string?> ShardOption = new("--shard") { Description = "Evaluate only shard i of n (i/n); combine with `robust merge`." };
    private static readonly Option<string> OutOption = SharedOptions.Out("Output directory (report.json, report.md, report.html, images/, plots/).");
    private static readonly ResultsDbOptions ResultsOptions = ResultsDbOptions.ForRecording();

    public static Command Definition()
    {
        var command = new Command("eval", "Evaluate robustness: clean vs worst-case robust accuracy over an attack ensemble, ε sweep, per class, sanity checks, reports.")
        {
            NormOption, EpsOption, SweepOption,
            PresetOption, AttacksOption, SeedOption, BatchOption, DeviceOption, ThreadsOption, ImagesOption, NoSanityOption, CertifyOption, ShardOption, OutOption,
        };
        Inputs.AddTo(command);
        AttackOptions.AddTo(command);
        ResultsOptions.AddTo(command);
        CommandRunner.SetAction(command, p =>
        {
            var preset = p.GetValue(PresetOption);
            var list = p.GetValue(AttacksOption);
            if (preset is not null && list is not null) throw new InputException("--preset and --attacks: give one or the other");
            var sweep = ParseList(p.GetValue(SweepOption), "--eps-sweep");
            var eps = p.GetValue(EpsOption) is { } e ? SharedOptions.ParseDouble(e, "--eps") : (double?)null;
            if (eps is null && sweep.Count == 0) throw new InputException("--eps: give --eps or --eps-sweep");
            return new EvalCommand(new EvalRunOptions
            {
                Inputs = Inputs.Read(p),
                Norm = NormNames.Parse(p.GetValue(NormOption)!),
                Epsilon = eps,
                Sweep = sweep,
                Attacks = list ?? preset ?? "standard",
                AttackOptions = AttackOptions.Read(p),
                Precision = AttackOptions.ReadPrecision(p),
                Seed = p.GetValue(SeedOption),
                BatchSize = p.GetValue(BatchOption),
                Device = p.GetValue(DeviceOption)!,
                Threads = p.GetValue(ThreadsOption),
                Images = p.GetValue(ImagesOption),
                Sanity = !p.GetValue(NoSanityOption),
                Certify = p.GetValue(CertifyOption),
                Shard = p.GetValue(ShardOption) is { } s ? ShardSpec.Parse(s) : null,
                MultiLabel = AttackOptions.ReadMultiLabel(p) is var (labels, target, flip) ? new MultiLabelOptions(labels, target, flip) : new(),
                Results = ResultsOptions.Read(p),
                Out = p.GetValue(OutOption)!,
            }).Execute();
        }, new Dictionary<string, string> { ["Attack"] = "--attacks" });
        return command;
    }

    public static IReadOnlyList<double> ParseList(string? text, string option) =>
        string.IsNullOrWhiteSpace(text) ? [] : SharedOptions.SplitList(text, option).Select(t => SharedOptions.ParseDouble(t, option)).ToArray();

    public int Execute()
    {
        var result = Run(o, render: true);
        return result is null ? ExitCodes.Failure : ExitCodes.Ok;
    }

    /// <summary>Runs the evaluation and writes the bundle; returns the report (also used by `demo`).</summary>
    public static RobustnessReport? Run(EvalRunOptions o, bool render)
    {
        SharedOptions.RequirePositive(o.BatchSize, "--batch-size");
        // A shard is not a result: `robust merge` records the merged report.
        var results = o.Shard is { Count: > 1 } ? ResultsTarget.None : o.Results;
        results.CheckBeforeRun();
        using var run = LoadedRun.Open(o.Inputs, o.Seed, o.Device, o.Threads);
        var epsilon = o.Epsilon ?? o.Sweep.Max();
        var options = new EvaluationOptions
        {
            Norm = o.Norm,
            Epsilon = epsilon,
            SweepEpsilons = o.Sweep,
            Attacks = new CliAttackSuite(o.Attacks, run.WithSurrogate(o.AttackOptions)),
            BatchSize = o.BatchSize,
            Seed = o.Seed,
            SampleIndices = run.Indices,
            ImageCount = o.Images,
            SanityChecks = o.Sanity,
            CertifyIbp = o.Certify,
            Shard = o.Shard,
            ModelPath = Path.GetFullPath(o.Inputs.Model),
            ModelSha256 = run.ModelSha256,
            DatasetSplit = o.Inputs.Split,
            AttackPrecision = o.Precision.Name(),
        };
        options = o.MultiLabel.ApplyTo(options, run.Model.Spec, run.ClassNames, run.WithSurrogate(o.AttackOptions));
        options.Validate(run.Model.Spec.Bounds);
        // Fail on a bad attack name, or one the model cannot answer, before taking the output directory or spending time.
        var threat = new ThreatModel(o.Norm, epsilon, run.Model.Spec.Bounds);
        var attacks = options.Attacks.Build(threat).Concat(options.LabelAttacks?.Build(threat) ?? []).ToArray();
        AttackRegistry.RequireRunnable(attacks, run.Access);
        run.CheckSurrogateUsed(attacks);
        // bf16 only for the gradient passes: the clean pass and every verdict come from the float32 model.
        var (model, bf16) = run.AttackModel(o.Precision);
        using var view = bf16;
        var wrapping = ModelWrapping.Apply(o.Inputs, model, o.Precision);
        options = options with { ModelNotes = wrapping.Notes };
        if (o.Certify && run.Model.Spec.MultiLabel)
            throw new InputException("--certify: IBP proves the top-1 class of single-label models; this model is multi-label (one decision per label)");
        if (o.Certify) Robustness.Core.Graphs.NetworkDescriptions.Of(run.Model, "--certify");
        using var outLock = OutputLock.Acquire(o.Out);
        EvaluationResult? result = null;
        var label = $"eval {Path.GetFileName(o.Inputs.Model)} {o.Norm.Name()} ε={epsilon}";
        ProgressReporter.Run(label, progress =>
            result = new Evaluator().Evaluate(wrapping.Model, run.Data, options, progress));
        var files = ReportBundle.WriteAll(result!.Report, o.Out, result.Examples);
        var recorded = results.Record ? results.Append(ResultRecord.FromReport(result.Report, files.Json)) : null;
        if (render)
        {
            var table = new Table().AddColumn("").AddColumn("value");
            foreach (var row in ConsoleSummary.Rows(result.Report))
                table.AddRow(Markup.Escape(row.Key), Markup.Escape(row.Value));
            table.AddRow("report", Markup.Escape(files.Html));
            table.AddRow("recorded", Markup.Escape(recorded is { } r ? $"#{r.Record.Id} in {r.Database}" : o.Shard is { Count: > 1 } ? "no (a shard: robust merge records the merged report)" : "no (--no-record)"));
            CommandRunner.Out.Write(table);
            // --json: the report's numbers, the files written and where the run was recorded.
            var document = ReportJson.Summary(result.Report);
            document["files"] = ReportJson.Files(files);
            document["recorded"] = ReportJson.Recorded(recorded);
            JsonOutput.Write(document);
        }
        return result.Report;
    }
}
