using System.CommandLine;
using Robustness.Core;
using Robustness.Models;

namespace Robustness.Cli.Common;

/// <summary>The input contract of a model without our metadata (ONNX, TorchScript) as options (the library's
/// parameter names map to these flags in <see cref="ParameterFlags"/>).</summary>
public sealed class ModelContractOptions
{
    public Option<string?> InputShape { get; } = new("--input-shape") { Description = "ONNX/TorchScript: per-sample input shape C,H,W (default: from the ONNX graph, else from --data)." };
    public Option<string?> Bounds { get; } = new("--bounds") { Description = "ONNX/TorchScript: pixel bounds lo,hi the model takes (default 0,1); ε is in these units." };
    public Option<string?> Mean { get; } = new("--mean") { Description = "ONNX/TorchScript: per-channel mean, applied inside the classifier ((x − mean)/std), so ε stays in pixel units." };
    public Option<string?> Std { get; } = new("--std") { Description = "ONNX/TorchScript: per-channel std (with --mean)." };
    public Option<string?> Labels { get; } = new("--labels") { Description = "ONNX/TorchScript: file with one class name a line." };

    public IEnumerable<Option> All => [InputShape, Bounds, Mean, Std, Labels];

    public InputContract Read(ParseResult p) => new()
    {
        InputShape = p.GetValue(InputShape) is { } s ? InputContract.ParseShape(s) : null,
        Bounds = p.GetValue(Bounds) is { } b ? Core.Bounds.Parse(b, "--bounds") : null,
        Mean = p.GetValue(Mean) is { } m ? InputContract.ParseFloats(m, nameof(InputContract.Mean)) : null,
        Std = p.GetValue(Std) is { } d ? InputContract.ParseFloats(d, nameof(InputContract.Std)) : null,
        Labels = p.GetValue(Labels) is { } l ? InputContract.ReadLabels(l) : null,
    };
}
