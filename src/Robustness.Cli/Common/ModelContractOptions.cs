using System.CommandLine;
using Robustness.Core;
using Robustness.Data;
using Robustness.Models;

namespace Robustness.Cli.Common;

/// <summary>
/// The input contract of a model without our metadata (ONNX, TorchScript) and the image-folder preprocessing,
/// as options; and the one place where the libraries' parameter names map to these flags.
/// </summary>
public sealed class ModelContractOptions
{
    public Option<string?> InputShape { get; } = new("--input-shape") { Description = "ONNX/TorchScript: per-sample input shape C,H,W (default: from the ONNX graph, else from --data)." };
    public Option<string?> Bounds { get; } = new("--bounds") { Description = "ONNX/TorchScript: pixel bounds lo,hi the model takes (default 0,1); ε is in these units." };
    public Option<string?> Mean { get; } = new("--mean") { Description = "ONNX/TorchScript: per-channel mean, applied inside the classifier ((x − mean)/std), so ε stays in pixel units." };
    public Option<string?> Std { get; } = new("--std") { Description = "ONNX/TorchScript: per-channel std (with --mean)." };
    public Option<string?> Labels { get; } = new("--labels") { Description = "ONNX/TorchScript: file with one class name a line." };

    public IEnumerable<Option> All => [InputShape, Bounds, Mean, Std, Labels];

    public InputContract Read(ParseResult p) => Flags.Map(() => new InputContract
    {
        InputShape = p.GetValue(InputShape) is { } s ? InputContract.ParseShape(s) : null,
        Bounds = p.GetValue(Bounds) is { } b ? Core.Bounds.Parse(b, "--bounds") : null,
        Mean = p.GetValue(Mean) is { } m ? InputContract.ParseFloats(m, nameof(InputContract.Mean)) : null,
        Std = p.GetValue(Std) is { } d ? InputContract.ParseFloats(d, nameof(InputContract.Std)) : null,
        Labels = p.GetValue(Labels) is { } l ? InputContract.ReadLabels(l) : null,
    });
}

/// <summary>Library parameter names → CLI flags, for the model-loading and data-loading parameters.</summary>
public static class Flags
{
    private static readonly Dictionary<string, string> Names = new(StringComparer.Ordinal)
    {
        [nameof(InputContract.InputShape)] = "--input-shape",
        [nameof(InputContract.Bounds)] = "--bounds",
        [nameof(InputContract.Mean)] = "--mean",
        [nameof(InputContract.Std)] = "--std",
        [nameof(InputContract.Labels)] = "--labels",
        [nameof(InputContract)] = "--input-shape/--bounds/--mean/--std/--labels",
        ["Arch"] = "--arch",
        [nameof(ImageFolderOptions.Resize)] = "--resize",
        [nameof(ImageFolderOptions.CenterCrop)] = "--center-crop",
    };

    /// <summary>Runs <paramref name="body"/>, rewriting a <see cref="ParameterException"/> about a mapped parameter to name the flag.</summary>
    public static T Map<T>(Func<T> body)
    {
        try { return body(); }
        catch (ParameterException e) when (Names.TryGetValue(e.Parameter, out var flag))
        { throw new InputException($"{flag}: {e.Problem}", e); }
    }
}
