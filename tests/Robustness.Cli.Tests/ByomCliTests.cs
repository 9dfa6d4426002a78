using System.Text.Json;
using Onnx;
using Robustness.Models.Tests.Byom;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Robustness.Cli.Tests;

/// <summary>Bring your own model through the CLI: ONNX and TorchScript files in `info`, `attack` and `eval`; the
/// input-contract options; hostile files refused in one line with nothing written.</summary>
[Collection("cli")]
public sealed class ByomCliTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    private static string Fixture(string name) => Path.Combine(Repo.Root, "tests", "fixtures", "byom", name);

    /// <summary>Console text without table borders and line wrapping, for phrase checks.</summary>
    private static string Flat(string text) =>
        System.Text.RegularExpressions.Regex.Replace(text.Replace("│", " "), @"\s+", " ");

    [Theory]
    [InlineData("cnn-bn.onnx")]
    [InlineData("softmax-mlp-opset12.onnx")]
    [InlineData("resnet-mini-opset11-batch1.onnx")]
    public void Info_check_agrees_with_OnnxRuntime(string file)
    {
        var r = Cli.Run("info", Fixture(file), "--check", "--check-samples", "8");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("agrees with ONNX Runtime", r.Stdout);
        Assert.Contains("assumed (default)", r.Stdout); // the bounds were assumed
        Assert.Contains("graph", r.Stdout);
    }

    [Fact]
    public void Info_says_TorchScript_runs_inside_libtorch_without_Python()
    {
        var r = Cli.Run("info", Fixture("cnn-bn-script.pt"), "--input-shape", "1,28,28");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("inside libtorch", Flat(r.Stdout));
        Assert.Contains("no Python", Flat(r.Stdout));
    }

    [Fact]
    public void Info_says_a_final_softmax_was_cut()
    {
        var r = Cli.Run("info", Fixture("softmax-mlp-opset13.onnx"));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("ends in Softmax", Flat(r.Stdout));
    }

    [Fact]
    public void Attack_an_onnx_model_with_labels_and_normalisation()
    {
        var labels = _temp.File("labels.txt", System.Text.Encoding.UTF8.GetBytes(string.Join("\n", Enumerable.Range(0, 10).Select(i => $"class{i}")) + "\n"));
        var outDir = _temp.Sub("attack");
        var r = Cli.Run("attack", "--model", Fixture("cnn-bn.onnx"), "--labels", labels, "--mean", "0", "--std", "1", "--bounds", "0,1",
            "--n", "16", "--attack", "pgd", "--eps", "0.05", "--steps", "5", "--out", outDir, "--threads", "1");
        Assert.True(r.ExitCode == 0, r.ToString());
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "result.json")));
        var root = json.RootElement;
        Assert.True(root.GetProperty("robust_accuracy").GetDouble() <= root.GetProperty("clean_accuracy").GetDouble());
        Assert.True(root.GetProperty("max_perturbation").GetDouble() <= 0.05 + 1e-6);
    }

    [Fact]
    public void Eval_a_torchscript_model_takes_its_input_shape_from_the_data()
    {
        var outDir = _temp.Sub("eval");
        var r = Cli.Run("eval", "--model", Fixture("cnn-bn-trace.pt"), "--n", "8", "--eps", "0.03", "--attacks", "fgsm", "--out", outDir, "--threads", "1");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.True(File.Exists(Path.Combine(outDir, "report.json")));
    }

    [Fact]
    public void Mnist_shaped_data_into_an_rgb_model_is_an_input_contract_error()
    {
        var outDir = _temp.Sub("rgb");
        var r = Cli.Run("attack", "--model", Fixture("resnet-mini-opset11-batch1.onnx"), "--data", "fashion-mnist", "--n", "4",
            "--attack", "fgsm", "--eps", "0.1", "--out", outDir, "--threads", "1");
        Expect.BadInput(r, "--data", "[1,28,28]", "[3,32,32]", "1-channel");
        Expect.NoPartialOutput(outDir);
    }

    [Fact]
    public void A_photo_folder_is_resized_and_center_cropped_for_the_model()
    {
        // 3 classes of 40x60 RGB photos → --resize 36 (shorter side) → --center-crop 32 → the 3x32x32 model.
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 2; i++)
            {
                using var image = new Image<Rgb24>(40 + 8 * i, 60);
                for (int y = 0; y < image.Height; y++)
                    for (int x = 0; x < image.Width; x++)
                        image[x, y] = new Rgb24((byte)(40 * c + x), (byte)(3 * y), (byte)(i * 100));
                var path = _temp.Sub($"photos/class{c}/img{i}.png");
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                image.SaveAsPng(path);
            }
        var outDir = _temp.Sub("photos-out");
        var r = Cli.Run("attack", "--model", Fixture("resnet-mini-opset11-batch1.onnx"), "--data", _temp.Sub("photos"), "--resize", "36", "--center-crop", "32",
            "--attack", "fgsm", "--eps", "0.01", "--out", outDir, "--threads", "1");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(6, JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "result.json"))).RootElement.GetProperty("samples").GetInt32());
    }

    [Fact]
    public void Resize_on_a_dataset_that_is_not_an_image_folder_names_the_option()
    {
        var outDir = _temp.Sub("resize");
        var r = Cli.Run("attack", "--model", Fixture("cnn-bn.onnx"), "--data", "fashion-mnist", "--resize", "32", "--n", "4",
            "--attack", "fgsm", "--eps", "0.1", "--out", outDir, "--threads", "1");
        Expect.BadInput(r, "--resize", "image-folder");
        Expect.NoPartialOutput(outDir);
    }

    [Fact]
    public void Contract_options_on_our_own_model_files_are_refused()
    {
        var r = Cli.Run("info", Make.TinyCnn, "--mean", "0.5", "--std", "0.5");
        Expect.BadInput(r, "--mean", "ONNX and TorchScript");
    }

    [Fact]
    public void Wrong_label_count_names_the_option()
    {
        var labels = _temp.File("three.txt", "a\nb\nc\n"u8.ToArray());
        Expect.BadInput(Cli.Run("info", Fixture("cnn-bn.onnx"), "--labels", labels), "--labels", "3 class names", "10 outputs");
    }

    [Fact]
    public void Input_shape_that_contradicts_the_graph_names_the_option()
    {
        Expect.BadInput(Cli.Run("info", Fixture("cnn-bn.onnx"), "--input-shape", "3,28,28"), "--input-shape", "1×28×28");
    }

    public static TheoryData<string> HostileCases() => new(["truncated", "cycle", "size", "absurd", "dtype", "external", "operator", "not-a-module"]);

    [Theory]
    [MemberData(nameof(HostileCases))]
    public void Hostile_model_files_exit_2_with_one_line_and_nothing_written(string kind)
    {
        var path = Hostile(kind);
        foreach (var verb in new[] { "info", "attack", "eval" })
        {
            var outDir = _temp.Sub($"out-{kind}-{verb}");
            string[] args = verb == "info"
                ? ["info", path, .. kind == "not-a-module" ? new[] { "--input-shape", "1,28,28" } : []]
                : [verb, "--model", path, "--n", "4", verb == "attack" ? "--attack" : "--attacks", "fgsm", "--eps", "0.1", "--out", outDir, "--threads", "1"];
            Expect.BadInput(Cli.Run(args), Path.GetFileName(path));
            Assert.False(Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any(), $"{kind}/{verb} wrote into {outDir}");
        }
    }

    private string Hostile(string kind)
    {
        var b = OnnxBuilder.Linear();
        switch (kind)
        {
            case "truncated":
                var bytes = b.Bytes();
                return _temp.File("truncated.onnx", bytes[..(bytes.Length * 2 / 3)]);
            case "cycle":
                b = new OnnxBuilder([null, 1, 28, 28]).Node("Add", ["x", "loop"], ["a"]).Node("Relu", ["a"], ["loop"]).Output("loop");
                break;
            case "size":
                b.Graph.Initializer[0].RawData = Google.Protobuf.ByteString.CopyFrom(new byte[12]);
                break;
            case "absurd":
                b.Graph.Initializer[0].Dims.Clear();
                b.Graph.Initializer[0].Dims.AddRange([1L << 20, 1L << 20]);
                break;
            case "dtype":
                b.Graph.Initializer[1].DataType = 99;
                break;
            case "external":
                var w = b.Graph.Initializer[0];
                w.ClearRawData();
                w.DataLocation = TensorProto.Types.DataLocation.External;
                w.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "../../etc/passwd" });
                break;
            case "operator":
                b.Graph.Node[1].OpType = "TfIdfVectorizer";
                break;
            case "not-a-module":
                return Fixture("hostile-script-function.pt");
        }
        return b.Save(_temp.Sub($"{kind}.onnx"));
    }
}
