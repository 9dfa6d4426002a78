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
/// </summary>
public sealed class DemoCommand(string output, int? n, string preset, long seed, string device, int threads, string? modelsDir)
{
    public const double Epsilon = 0.1;
    public static readonly double[] Sweep = [0, 0.05, 0.1, 0.15];
    public static readonly string[] ModelNames = ["tiny-cnn-standard", "tiny-cnn-pgd", "ibp-small-ibp"];
    /// <summary>The certified model's column is shown when its file is there (data/README.md says how to make it).</summary>
    public const string CertifiedModel = "ibp-small-ibp";

    private static readonly Option<string> OutOption = new("--out") { Description = "Output directory (one report folder per model).", DefaultValueFactory = _ => "demo-report" };
    private static readonly Option<int?> NOption = new("--n") { Description = "Test samples to evaluate (first N in file order; default 500; 10000 = the whole test set)." };
    private static readonly Option<string> PresetOption = new("--preset") { Description = "Attack ensemble: fast (apgd-ce, apgd-t) or standard (+ square).", DefaultValueFactory = _ => "fast" };
    private static readonly Option<long> SeedOption = SharedOptions.Seed();
    private static readonly Option<string> DeviceOption = SharedOptions.Device();
    private static readonly Option<int> ThreadsOption = SharedOptions.Threads();
    private static readonly Option<string?> ModelsOption = new("--models") { Description = "Folder with tiny-cnn-standard.safetensors, tiny-cnn-pgd.safetensors and ibp-small-ibp.safetensors (default: the repo's data/models)." };

    public static Command Definition()
    {
        var command = new Command("demo", "The main job on shipped defaults: standard, adversarially trained and certifiably trained models on Fashion-MNIST, L∞ ε = 0.1, attacked and verified.")
        {
            OutOption, NOption, PresetOption, SeedOption, DeviceOption, ThreadsOption, ModelsOption,
        };
        CommandRunner.SetAction(command, p => new DemoCommand(p.GetValue(OutOption)!, p.GetValue(NOption), p.GetValue(PresetOption)!,
            p.GetValue(SeedOption), p.GetValue(DeviceOption)!, p.GetValue(ThreadsOption), p.GetValue(ModelsOption)).Execute(),
            new Dictionary<string, string> { ["Attack"] = "--preset", ["SampleCount"] = "--n" });
        return command;
    }

    public static string? DefaultModelsDir() => DatasetCatalog.FindShippedData() is { } data ? Path.Combine(data, "models") : null;

    public int Execute()
    {
        var dir = modelsDir ?? DefaultModelsDir()
            ?? throw new InputException("--models: cannot find the repository's data/models; run from the repository or pass --models DIR");
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
