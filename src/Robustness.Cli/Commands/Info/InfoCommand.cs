using System.CommandLine;
using System.Globalization;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Models;
using Robustness.Models.Backends.OnnxRuntime;
using Spectre.Console;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Cli.Commands.Info;

/// <summary>
/// `robust info MODEL`: format, architecture, parameter count and metadata of a model file, with what was inferred
/// and what assumed; `--check` runs an ONNX model through ONNX Runtime as well and reports the largest difference.
/// </summary>
public sealed class InfoCommand(string modelPath, string? arch, InputContract contract, int? checkSamples, long seed)
{
    /// <summary>Largest difference from ONNX Runtime, relative to the logit scale, that `--check` accepts.</summary>
    public const double CheckTolerance = 1e-4;

    private static readonly Argument<string> ModelArg = new("model") { Description = "Model file: .safetensors, PyTorch .pt (state dict with --arch, or TorchScript), or .onnx." };
    private static readonly Option<string?> ArchOption = SharedOptions.Arch();
    private static readonly ModelContractOptions Contract = new();
    private static readonly Option<bool> CheckOption = new("--check") { Description = "ONNX: run a batch through our executor and through ONNX Runtime and report the largest difference (exit 1 above 1e-4 of the logit scale)." };
    private static readonly Option<int> CheckSamplesOption = new("--check-samples") { Description = "Batch size of --check (random inputs within the bounds, drawn with --seed).", DefaultValueFactory = _ => 16 };
    private static readonly Option<long> SeedOption = SharedOptions.Seed();

    public static Command Definition()
    {
        var command = new Command("info", "Show a model file's format, input contract (inferred and assumed), parameter count and metadata.") { ModelArg, ArchOption, CheckOption, CheckSamplesOption, SeedOption };
        foreach (var o in Contract.All) command.Options.Add(o);
        CommandRunner.SetAction(command, parse => new InfoCommand(parse.GetValue(ModelArg)!, parse.GetValue(ArchOption), Contract.Read(parse),
            parse.GetValue(CheckOption) ? parse.GetValue(CheckSamplesOption) : null, parse.GetValue(SeedOption)).Execute());
        return command;
    }

    public int Execute()
    {
        if (checkSamples is < 1) throw new InputException($"--check-samples: must be > 0, got {checkSamples}");
        using var loaded = ModelLoader.Load(modelPath, CPU, contract, arch);
        if (checkSamples is not null && loaded.Format != ModelFormat.Onnx)
            throw new InputException($"--check: compares an ONNX model with ONNX Runtime; {modelPath} is {loaded.Description.FormatName}");
        var model = loaded.Classifier;
        var spec = model.Spec;
        var table = new Table().AddColumn("property").AddColumn("value").AddColumn("source");
        table.AddRow("file", Markup.Escape(Path.GetFullPath(modelPath)), "");
        table.AddRow("sha256", ModelFile.Sha256(modelPath), "");
        table.AddRow("arch", Markup.Escape(spec.Arch), "");
        foreach (var fact in loaded.Description.Facts)
            table.AddRow(Markup.Escape(fact.Property), Markup.Escape(fact.Value), Markup.Escape(fact.Source));
        if (loaded.Format is ModelFormat.Safetensors or ModelFormat.PyTorchStateDict)
        {
            table.AddRow("parameters", model.ParameterCount.ToString("N0", CultureInfo.InvariantCulture), "");
            table.AddRow("labels", Markup.Escape(string.Join(", ", spec.Labels)), "file");
            if (spec.Mean is not null) table.AddRow("normalisation", $"mean [{string.Join(", ", spec.Mean)}], std [{string.Join(", ", spec.Std ?? [])}]", "file");
            if (spec.MultiLabel) table.AddRow("multi-label", "yes", "file");
            foreach (var (k, v) in spec.Extra.OrderBy(p => p.Key, StringComparer.Ordinal))
                table.AddRow(Markup.Escape(k), Markup.Escape(v), "metadata");
        }
        CommandRunner.Out.Write(table);
        foreach (var note in loaded.Description.Notes)
            CommandRunner.Out.MarkupLine($"[yellow]note:[/] {Markup.Escape(note)}");
        var document = new Dictionary<string, object?>
        {
            ["file"] = Path.GetFullPath(modelPath),
            ["sha256"] = ModelFile.Sha256(modelPath),
            ["format"] = loaded.Description.FormatName,
            ["arch"] = spec.Arch,
            ["input_shape"] = spec.InputShape,
            ["bounds"] = spec.Bounds.ToString(),
            ["num_classes"] = spec.NumClasses,
            ["labels"] = spec.Labels,
            ["mean"] = spec.Mean,
            ["std"] = spec.Std,
            ["multi_label"] = spec.MultiLabel,
            ["parameters"] = loaded.Format is ModelFormat.Safetensors or ModelFormat.PyTorchStateDict ? model.ParameterCount : null,
            ["facts"] = loaded.Description.Facts.Select(f => new Dictionary<string, object?> { ["property"] = f.Property, ["value"] = f.Value, ["source"] = f.Source }).ToArray(),
            ["metadata"] = spec.Extra,
            ["notes"] = loaded.Description.Notes,
            ["check"] = null,
        };
        if (checkSamples is not { } n)
        {
            JsonOutput.Write(document);
            return ExitCodes.Ok;
        }

        using var scope = NewDisposeScope();
        var generator = Seeding.Seed(seed);
        var b = spec.Bounds;
        var x = rand([n, .. spec.InputShape.Select(d => (long)d)], generator: generator) * Keep(b.Upper - b.Lower) + Keep(b.Lower);
        var check = OnnxRuntimeReference.Compare(loaded, modelPath, x);
        bool ok = check.Relative <= CheckTolerance && check.PredictionsAgree == check.Samples;
        var ort = typeof(Microsoft.ML.OnnxRuntime.InferenceSession).Assembly.GetName().Version;
        CommandRunner.Out.WriteLine(FormattableString.Invariant(
            $"check against ONNX Runtime {ort} on {check.Samples} random inputs (seed {seed}), output '{check.ComparedOutput}': largest difference {check.MaxAbsDifference:G3} = {check.Relative:G3} of the logit scale {check.Scale:G3} (tolerance {CheckTolerance:G1}); same top class on {check.PredictionsAgree}/{check.Samples}"));
        CommandRunner.Out.MarkupLine(ok ? "[green]agrees with ONNX Runtime[/]" : "[red]DISAGREES with ONNX Runtime: do not trust attacks on this model[/]");
        document["check"] = new Dictionary<string, object?>
        {
            ["onnx_runtime"] = ort?.ToString(),
            ["samples"] = check.Samples,
            ["seed"] = seed,
            ["output"] = check.ComparedOutput,
            ["max_abs_difference"] = check.MaxAbsDifference,
            ["relative"] = check.Relative,
            ["logit_scale"] = check.Scale,
            ["tolerance"] = CheckTolerance,
            ["same_top_class"] = check.PredictionsAgree,
            ["agrees"] = ok,
        };
        JsonOutput.Write(document);
        return ok ? ExitCodes.Ok : ExitCodes.Failure;
    }
}
