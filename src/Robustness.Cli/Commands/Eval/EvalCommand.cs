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
    public ShardSpec? Shard { get; init; }
    public MultiLabelOptions MultiLabel { get; init; } = new();
    public required string Out { get; init; }
}

/// <summary>`robust eval`: clean and worst-case robust accuracy over an attack ensemble, ε sweep, sanity checks, reports.</summary>
public sealed class EvalCommand(EvalRunOptions o)
{
    private static readonly ModelDataOptionSet Inputs = new();
    private static readonly Option<string> NormOption = SharedOptions.Norm();
    private static readonly Option<string?> EpsOption = new("--eps") { Description = "Main radius ε (input units). Default: the largest value of --eps-sweep." };
    private static readonly Option<string?> SweepOption = new("--eps-sweep") { Description = "Comma-separated radii for the accuracy-vs-ε curve, e.g. 0,0.02,0.05,0.1,0.2." };
    private static readonly Option<string?> PresetOption = new("--preset") { Description = "Attack ensemble: fast (apgd-ce, apgd-t) or standard (apgd-ce, apgd-t, square). Default standard." };
    private static readonly Option<string?> AttacksOption = new("--attacks") { Description = $"Comma-separated attacks instead of a preset ({string.Join(", ", AttackRegistry.Names)})." };
    private static readonly AttackOptionSet AttackOptions = new();
    private static readonly Option<long> SeedOption = SharedOptions.Seed();
    private static readonly Option<int> BatchOption = SharedOptions.BatchSize(256);
    private static readonly Option<string> DeviceOption = SharedOptions.Device();
    private static readonly Option<int> ThreadsOption = SharedOptions.Threads();
    private static readonly Option<int> ImagesOption = new("--images") { Description = "Perturbation images in the report.", DefaultValueFactory = _ => 16 };
    private static readonly Option<bool> NoSanityOption = new("--no-sanity") { Description = "Skip the sanity checks (not recommended)." };
    private static readonly Option<string?> ShardOption = new("--shard") { Description = "Evaluate only shard i of n (i/n); combine with `robust merge`." };
    private static readonly Option<string> OutOption = SharedOptions.Out("Output directory (report.json, report.md, report.html, images/, plots/).");

    public static Command Definition()
    {
        var command = new Command("eval", "Evaluate robustness: clean vs worst-case robust accuracy over an attack ensemble, ε sweep, per class, sanity checks, reports.")
        {
            NormOption, EpsOption, SweepOption,
            PresetOption, AttacksOption, SeedOption, BatchOption, DeviceOption, ThreadsOption, ImagesOption, NoSanityOption, ShardOption, OutOption,
        };
        Inputs.AddTo(command);
        AttackOptions.AddTo(command);
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
                Shard = p.GetValue(ShardOption) is { } s ? ShardSpec.Parse(s) : null,
                MultiLabel = AttackOptions.ReadMultiLabel(p) is var (labels, target, flip) ? new MultiLabelOptions(labels, target, flip) : new(),
                Out = p.GetValue(OutOption)!,
            }).Execute();
        }, new Dictionary<string, string> { ["Attack"] = "--attacks" });
        return command;
    }

    public static IReadOnlyList<double> ParseList(string? text, string option) =>
        string.IsNullOrWhiteSpace(text) ? [] :
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(t => SharedOptions.ParseDouble(t, option)).ToArray();

    public int Execute()
    {
        var result = Run(o, render: true);
        return result is null ? ExitCodes.Failure : ExitCodes.Ok;
    }

    /// <summary>Runs the evaluation and writes the bundle; returns the report (also used by `demo`).</summary>
    public static RobustnessReport? Run(EvalRunOptions o, bool render)
    {
        SharedOptions.RequirePositive(o.BatchSize, "--batch-size");
        using var run = LoadedRun.Open(o.Inputs, o.Seed, o.Device, o.Threads);
        var epsilon = o.Epsilon ?? o.Sweep.Max();
        var options = new EvaluationOptions
        {
            Norm = o.Norm,
            Epsilon = epsilon,
            SweepEpsilons = o.Sweep,
            Attacks = new CliAttackSuite(o.Attacks, o.AttackOptions),
            BatchSize = o.BatchSize,
            Seed = o.Seed,
            SampleIndices = run.Indices,
            ImageCount = o.Images,
            SanityChecks = o.Sanity,
            Shard = o.Shard,
            ModelPath = Path.GetFullPath(o.Inputs.Model),
            ModelSha256 = run.ModelSha256,
            AttackPrecision = o.Precision.Name(),
        };
        options = o.MultiLabel.ApplyTo(options, run.Model.Spec, run.ClassNames, o.AttackOptions);
        options.Validate(run.Model.Spec.Bounds);
        // Fail on a bad attack name before taking the output directory or spending time.
        options.Attacks.Build(new ThreatModel(o.Norm, epsilon, run.Model.Spec.Bounds));
        options.LabelAttacks?.Build(new ThreatModel(o.Norm, epsilon, run.Model.Spec.Bounds));
        using var outLock = OutputLock.Acquire(o.Out);
        EvaluationResult? result = null;
        var label = $"eval {Path.GetFileName(o.Inputs.Model)} {o.Norm.Name()} ε={epsilon}";
        // bf16 only for the gradient passes: the clean pass and every verdict come from the float32 model.
        using var bf16 = Bf16Views.ViewOf(run.Model, o.Precision);
        IGradientClassifier model = (IGradientClassifier?)bf16 ?? run.Model;
        ProgressReporter.Run(label, progress =>
            result = new Evaluator().Evaluate(model, run.Data, options, progress));
        var files = ReportBundle.WriteAll(result!.Report, o.Out, result.Examples);
        if (render)
        {
            var table = new Table().AddColumn("").AddColumn("value");
            foreach (var row in ConsoleSummary.Rows(result.Report))
                table.AddRow(Markup.Escape(row.Key), Markup.Escape(row.Value));
            table.AddRow("report", Markup.Escape(files.Html));
            CommandRunner.Out.Write(table);
        }
        return result.Report;
    }
}
