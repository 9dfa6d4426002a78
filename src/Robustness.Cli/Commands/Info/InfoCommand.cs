using System.CommandLine;
using Robustness.Cli.Common;
using Robustness.Models;
using Spectre.Console;

namespace Robustness.Cli.Commands.Info;

/// <summary>`robust info MODEL`: architecture, parameter count and metadata of a model file.</summary>
public sealed class InfoCommand(string modelPath, string? arch)
{
    private static readonly Argument<string> ModelArg = new("model") { Description = "Model file (.safetensors or PyTorch .pt with --arch)." };
    private static readonly Option<string?> ArchOption = SharedOptions.Arch();

    public static Command Definition()
    {
        var command = new Command("info", "Show a model file's architecture, parameter count and metadata.") { ModelArg, ArchOption };
        CommandRunner.SetAction(command, parse => new InfoCommand(parse.GetValue(ModelArg)!, parse.GetValue(ArchOption)).Execute());
        return command;
    }

    public int Execute()
    {
        using var model = ModelFile.Load(modelPath, TorchSharp.torch.CPU, arch);
        var spec = model.Spec;
        var table = new Table().AddColumn("property").AddColumn("value");
        table.AddRow("file", Markup.Escape(Path.GetFullPath(modelPath)));
        table.AddRow("sha256", ModelFile.Sha256(modelPath));
        table.AddRow("arch", Markup.Escape(spec.Arch));
        table.AddRow("parameters", model.ParameterCount.ToString("N0", System.Globalization.CultureInfo.InvariantCulture));
        table.AddRow("input shape", string.Join("×", spec.InputShape));
        table.AddRow("classes", $"{spec.NumClasses}: {Markup.Escape(string.Join(", ", spec.Labels))}");
        table.AddRow("bounds", spec.Bounds.ToString());
        if (spec.Mean is not null) table.AddRow("normalisation", $"mean [{string.Join(", ", spec.Mean)}], std [{string.Join(", ", spec.Std ?? [])}]");
        if (spec.MultiLabel) table.AddRow("multi-label", "yes");
        foreach (var (k, v) in spec.Extra.OrderBy(p => p.Key, StringComparer.Ordinal))
            table.AddRow(Markup.Escape(k), Markup.Escape(v));
        CommandRunner.Out.Write(table);
        return ExitCodes.Ok;
    }
}
