using Robustness.Core.Formats;
using Robustness.Models.Formats;

namespace Robustness.Models.Tests.Byom;

/// <summary>The committed bring-your-own-model fixtures (tests/fixtures/byom, made by make_models.py).</summary>
internal static class ByomFixtures
{
    public static readonly string Dir = Path.Combine(Path.GetDirectoryName(Fixtures.PyTorchDir)!, "byom");

    public static string File(string name) => Path.Combine(Dir, name);

    /// <summary>ONNX fixtures: file, the PyTorch model it was exported from, its input key in inputs.safetensors.</summary>
    public static readonly (string File, string Model, string Inputs)[] Onnx =
    [
        ("cnn-bn.onnx", "cnn-bn", "x1x28x28"),
        ("cnn-bn-folded.onnx", "cnn-bn", "x1x28x28"),
        ("resnet-mini-opset11-batch1.onnx", "resnet-mini", "x3x32x32"),
        ("gelu-layernorm-opset17.onnx", "gelu-layernorm", "x3x32x32"),
        ("gelu-layernorm-opset14.onnx", "gelu-layernorm", "x3x32x32"),
        ("softmax-mlp-opset12.onnx", "softmax-mlp", "x1x28x28"),
        ("softmax-mlp-opset13.onnx", "softmax-mlp", "x1x28x28"),
        ("non-square-opset15.onnx", "non-square", "x3x24x40"),
        ("misc-ops-opset16.onnx", "misc-ops", "x1x28x28"),
        ("misc-ops-opset11.onnx", "misc-ops", "x1x28x28"),
    ];

    public static readonly (string File, string Model, string Inputs)[] TorchScript =
    [
        ("cnn-bn-script.pt", "cnn-bn", "x1x28x28"),
        ("cnn-bn-trace.pt", "cnn-bn", "x1x28x28"),
        ("gelu-layernorm-script.pt", "gelu-layernorm", "x3x32x32"),
    ];

    public static TheoryData<string> OnnxFiles() => new(Onnx.Select(o => o.File));
    public static TheoryData<string> TorchScriptFiles() => new(TorchScript.Select(o => o.File));

    public static StateDict Inputs() => SafeTensors.Read(File("inputs.safetensors"));

    public static int[] ShapeOf(string inputsKey) => inputsKey[1..].Split('x').Select(int.Parse).ToArray();
}
