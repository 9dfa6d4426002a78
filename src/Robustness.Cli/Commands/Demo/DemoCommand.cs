using System.CommandLine;
using System.Globalization;
using Robustness.Cli.Commands.Eval;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Data;
using Robustness.Evaluation;
using Spectre.Console;

namespace Robustness.Cli.Commands.Demo;

/// <summary>
/// `robust demo`: the main job on shipped defaults — the standard and the PGD-trained tiny-cnn and the IBP-trained
/// ibp-small, attacked on the shipped Fashion-MNIST test set at L∞ ε = 0.1 with a short ε sweep and verified by interval
/// bound propagation, side by side ("attacks leave X, certificates prove Y"), with every report written.
/// `robust demo --multi-label`: the same for the shipped multi-label tiny-cnn pair on fashion-mnist-multi (generated
/// from the shipped test set), with subset and Hamming accuracy, worst case per sample and per label.
/// </summary>
public sealed class DemoCommand(string output, int? n, string preset, long seed, string device, int threads, string? modelsDir, bool multiLabel = false)
{
    public const double Epsilon = 0.1;
    public static readonly double[] Sweep = [0, 0.05, 0.1, 0.15];
    public static readonly string[] ModelNames = ["tiny-cnn-standard", "tiny-cnn-pgd", "ibp-small-ibp"];
    /// <summary>The certified model's column is shown when its file is there (data/README.md says how to make it).</summary>
    public const string CertifiedModel = "ibp-small-ibp";
    public static readonly string[] MultiLabelModelNames = ["tiny-cnn-multi-standard", "tiny-cnn-multi-pgd"];
    /// <summary>Multi-label demo: the first 200 canvases, ε sweep 0, 0.05, 0.1; FGSM then PGD-10 on the samples, PGD-10
    /// on every label still standing (sized to stay under 3 minutes for both models on 2 cores).</summary>
    public const int MultiLabelSamples = 200;
    public static readonly double[] MultiLabelSweep = [0, 0.05, 0.1];
    public const string MultiLabelAttacks = "fgsm,pgd";
    public const string MultiLabelLabelAttacks = "pgd";

    private static readonly Option<string> OutOption = new("--out") { Description = "Output directory (one report folder per model).", DefaultValueFactory = _ => "demo-report" };
    private static readonly Option<int?> NOption = new("--n") { Description = "Test samples to evaluate (first N in file order; default 500; 10000 = the whole test set)." };
    private static readonly Option<string?> PresetOption = new("--preset") { Description = "Attack ensemble: fast (apgd-ce, apgd-t) or standard (+ square); default fast (multi-label: fgsm,pgd on the samples and pgd per label)." };
    private static readonly Option<bool> MultiLabelOption = new("--multi-label") { Description = "The multi-label pair (tiny-cnn-multi-standard, tiny-cnn-multi-pgd) on fashion-mnist-multi: subset and Hamming accuracy, worst case per sample and per label." };
    private static readonly Option<long> SeedOption = SharedOptions.Seed();
    private static readonly Option<string> DeviceOption = SharedOptions.Device();
    private static readonly Option<int> ThreadsOption = SharedOptions.Threads();
    private static readonly Option<string?> ModelsOption = new("--models") { Description = "Folder with tiny-cnn-standard.safetensors, tiny-cnn-pgd.safetensors and ibp-small-ibp.safetensors (--multi-label: tiny-cnn-multi-standard and tiny-cnn-multi-pgd; default: the repo's data/models)." };

    public static Command Definition()
    {
        var command = new Command("demo", "The main job on shipped defaults: standard, adversarially trained and certifiably trained models on Fashion-MNIST, L∞ ε = 0.1, attacked and verified.")
        {
            OutOption, NOption, PresetOption, SeedOption, DeviceOption, ThreadsOption, ModelsOption, MultiLabelOption,
        };
        CommandRunner.SetAction(command, p => new DemoCommand(p.GetValue(OutOption)!, p.GetValue(NOption),
            p.GetValue(PresetOption) ?? (p.GetValue(MultiLabelOption) ? MultiLabelAttacks : "fast"),
            p.GetValue(SeedOption), p.GetValue(DeviceOption)!, p.GetValue(ThreadsOption), p.GetValue(ModelsOption), p.GetValue(MultiLabelOption)).Execute(),
            new Dictionary<string, string> { ["Attack"] = "--preset", ["SampleCount"] = "--n" });
        return command;
    }

    public static string? DefaultModelsDir() => DatasetCatalog.FindShippedData() is { } data ? Path.Combine(data, "models") : null;

    public int Execute()
    {
        var dir = modelsDir ?? DefaultModelsDir()
            ?? throw new InputException("--models: cannot find the repository's data/models; run from the repository or pass --models DIR");
        if (multiLabel) return ExecuteMultiLabel(dir);
        var names = ModelNames.Where(m => m != CertifiedModel || File.Exists(Path.Combine(dir, m + ".safetensors"))).ToArray();
        var paths = names.Select(m => Path.Combine(dir, m + ".safetensors")).ToArray();
        foreach (var p in paths)
            if (!File.Exists(p))
                throw new InputException($"{p}: shipped model missing; make it with the commands in data/README.md (robust train ...), or pass --models DIR");

        var reports = new List<(string Name, RobustnessReport Report)>();
        foreach (var (name, path) in names.Zip(paths))
        {
            CommandRunner.Out.MarkupLine($"[bold]{Markup.Escape(name)}[/]");
            var report = EvalCommand.Run(new EvalRunOptions
            {
                Inputs = new ModelDataSelection { Model = path, Data = "fashion-mnist", N = n ?? 500 },
                Norm = Norm.Linf,
                Epsilon = Epsilon,
                Sweep = Sweep,
                Attacks = preset,
                Seed = seed,
                Device = device,
                Threads = threads,
                Certify = true,
                Out = Path.Combine(output, name),
            }, render: false)!;
            reports.Add((name, report));
        }

        var table = new Table().Title($"Fashion-MNIST test, first {reports[0].Report.Total} images, L∞, {Markup.Escape(preset)} ensemble (per-sample worst case)");
        table.AddColumn("");
        foreach (var (name, _) in reports) table.AddColumn(new TableColumn(Markup.Escape(name)).RightAligned());
        table.AddRow(["clean accuracy", .. reports.Select(r => Pct(r.Report.CleanAccuracy))]);
        foreach (var e in reports[0].Report.EpsSweep.Select(s => s.Epsilon))
            table.AddRow([$"robust, ε = {e.ToString("G3", CultureInfo.InvariantCulture)}", .. reports.Select(r => Pct(r.Report.EpsSweep.First(s => s.Epsilon == e).RobustAccuracy))]);
        table.AddRow([$"verified (IBP), ε = {Epsilon.ToString("G3", CultureInfo.InvariantCulture)}", .. reports.Select(r => r.Report.VerifiedAccuracy is { } v ? Pct(v) : "–")]);
        table.AddRow(["warnings", .. reports.Select(r => r.Report.Warnings.Count == 0 ? "none" : Markup.Escape(string.Join(", ", r.Report.Warnings.Select(w => w.Code))))]);
        CommandRunner.Out.Write(table);
        foreach (var (name, _) in reports)
            CommandRunner.Out.MarkupLine($"report: [link]{Markup.Escape(Path.GetFullPath(Path.Combine(output, name, "report.html")))}[/]");
        JsonOutput.Write(Document(reports));
        return ExitCodes.Ok;
    }

    private int ExecuteMultiLabel(string dir)
    {
        var paths = MultiLabelModelNames.Select(m => Path.Combine(dir, m + ".safetensors")).ToArray();
        foreach (var p in paths)
            if (!File.Exists(p))
                throw new InputException($"{p}: shipped model missing; make it with the commands in data/README.md (robust train --multi-label ...), or pass --models DIR");
        var reports = new List<(string Name, RobustnessReport Report)>();
        foreach (var (name, path) in MultiLabelModelNames.Zip(paths))
        {
            CommandRunner.Out.MarkupLine($"[bold]{Markup.Escape(name)}[/]");
            var report = EvalCommand.Run(new EvalRunOptions
            {
                Inputs = new ModelDataSelection { Model = path, Data = FashionMnistMulti.Name, N = n ?? MultiLabelSamples },
                Norm = Norm.Linf,
                Epsilon = Epsilon,
                Sweep = MultiLabelSweep,
                Attacks = preset,
                MultiLabel = new MultiLabelOptions(LabelAttacks: MultiLabelLabelAttacks),
                Seed = seed,
                Device = device,
                Threads = threads,
                Out = Path.Combine(output, name),
            }, render: false)!;
            reports.Add((name, report));
        }

        var table = new Table().Title($"fashion-mnist-multi test, first {reports[0].Report.Total} canvases, L∞, {Markup.Escape(preset)} per sample, {MultiLabelLabelAttacks} per label (worst case)");
        table.AddColumn("");
        foreach (var (name, _) in reports) table.AddColumn(new TableColumn(Markup.Escape(name)).RightAligned());
        table.AddRow(["clean subset accuracy", .. reports.Select(r => Pct(r.Report.SubsetAccuracy ?? 0))]);
        table.AddRow(["clean Hamming accuracy", .. reports.Select(r => Pct(r.Report.HammingAccuracy ?? 0))]);
        foreach (var e in reports[0].Report.MultiLabel!.EpsSweep.Select(s => s.Epsilon).Where(e => e > 0))
        {
            string Eps() => e.ToString("G3", CultureInfo.InvariantCulture);
            table.AddRow([$"robust subset, ε = {Eps()}", .. reports.Select(r => Pct(r.Report.MultiLabel!.EpsSweep.First(s => s.Epsilon == e).RobustSubsetAccuracy))]);
            table.AddRow([$"robust Hamming, ε = {Eps()}", .. reports.Select(r => Pct(r.Report.MultiLabel!.EpsSweep.First(s => s.Epsilon == e).RobustHammingAccuracy))]);
        }
        table.AddRow(["labels flipped per sample, ε = 0.1", .. reports.Select(r => r.Report.MultiLabel!.MeanLabelsFlipped.ToString("0.00", CultureInfo.InvariantCulture))]);
        table.AddRow(["warnings", .. reports.Select(r => r.Report.Warnings.Count == 0 ? "none" : Markup.Escape(string.Join(", ", r.Report.Warnings.Select(w => w.Code))))]);
        CommandRunner.Out.Write(table);
        foreach (var (name, _) in reports)
            CommandRunner.Out.MarkupLine($"report: [link]{Markup.Escape(Path.GetFullPath(Path.Combine(output, name, "report.html")))}[/]");
        JsonOutput.Write(Document(reports));
        return ExitCodes.Ok;
    }

    private static string Pct(double v) => (100 * v).ToString("F1", CultureInfo.InvariantCulture) + " %";

    /// <summary>--json: the demo's settings and, per model, its report's numbers and where the report is.</summary>
    private Dictionary<string, object?> Document(IReadOnlyList<(string Name, RobustnessReport Report)> reports) => new()
    {
        ["epsilon"] = Epsilon,
        ["sweep"] = reports[0].Report.EpsSweep.Select(e => e.Epsilon).ToArray(),
        ["preset"] = preset,
        ["samples"] = reports[0].Report.Total,
        ["seed"] = seed,
        ["output"] = Path.GetFullPath(output),
        ["models"] = reports.Select(r =>
        {
            var dir = Path.GetFullPath(Path.Combine(output, r.Name));
            var model = ReportJson.Summary(r.Report);
            model["name"] = r.Name;
            model["files"] = new Dictionary<string, object?>
            {
                ["json"] = Path.Combine(dir, "report.json"), ["markdown"] = Path.Combine(dir, "report.md"), ["html"] = Path.Combine(dir, "report.html"),
            };
            return model;
        }).ToArray(),
    };
}
