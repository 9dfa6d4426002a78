using System.Text.Json;
using Robustness.Core.Formats;

namespace Robustness.Cli.Tests;

/// <summary>`robust train` with the lecture's architectures and options: what lands in the model file, and bad values.</summary>
[Collection("cli")]
public sealed class LectureTrainTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    private string Data(int count = 48)
    {
        var data = _temp.Sub("data");
        if (!Directory.Exists(data)) Make.FashionSubset(data, "train", 0, count);
        return data;
    }

    [Fact]
    public void Lstm_with_dropout_init_and_augmentation_records_all_of_them_and_trains_on_from_its_weights()
    {
        var outDir = _temp.Sub("lstm");
        var r = Cli.Run("train", "--arch", "lstm", "--rnn-hidden", "16", "--rnn-layers", "2", "--dropout", "0.2", "--init", "xavier",
            "--augment", "crop,flip", "--crop-padding", "3", "--data", Data(), "--epochs", "1", "--batch-size", "16", "--val-size", "16",
            "--threads", "1", "--seed", "2", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        using (var file = SafeTensors.Read(Path.Combine(outDir, "best.safetensors")))
        {
            var m = file.Metadata;
            Assert.Equal("lstm", m["arch"]);
            Assert.Equal("16", m["rnn_hidden"]);
            Assert.Equal("2", m["rnn_layers"]);
            Assert.Equal("0.2", m["dropout"]);
            Assert.Equal("xavier", m["init"]);
            Assert.Equal("crop(pad 3)+flip", m["training.augment"]);
            Assert.Contains("lstm.weight_hh_l1", file.Names);
        }
        using (var line = JsonDocument.Parse(File.ReadLines(Path.Combine(outDir, "metrics.jsonl")).First()))
        {
            var norms = line.RootElement.GetProperty("grad_norms").EnumerateObject().Select(p => p.Name).ToList();
            Assert.Equal(["lstm.l0", "lstm.l1", "fc"], norms);
        }

        // --from: a second run starts from those weights; its provenance names the file and its hash.
        var from = Path.Combine(outDir, "best.safetensors");
        var next = _temp.Sub("lstm-pgd");
        r = Cli.Run("train", "--arch", "lstm", "--rnn-hidden", "16", "--rnn-layers", "2", "--dropout", "0.2", "--from", from,
            "--defense", "pgd", "--steps", "1", "--data", Data(), "--epochs", "1", "--batch-size", "16", "--val-size", "16",
            "--threads", "1", "--seed", "2", "--out", next);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var trained = SafeTensors.Read(Path.Combine(next, "last.safetensors"));
        Assert.Equal(Robustness.Models.ModelFile.Sha256(from), trained.Metadata["training.from_sha256"]);

        // A different architecture option is refused before anything is written.
        var bad = _temp.Sub("bad-from");
        Expect.BadInput(Cli.Run("train", "--arch", "lstm", "--rnn-hidden", "32", "--from", from, "--data", Data(), "--epochs", "1",
            "--val-size", "8", "--threads", "1", "--out", bad), "--from");
        Expect.NoPartialOutput(bad);
    }

    [Theory]
    [InlineData("--augment", "rotate", "rotate")]
    [InlineData("--crop-padding", "0", "--crop-padding")]
    [InlineData("--init", "ones", "ones")]
    [InlineData("--dropout", "1.5", "--dropout")]
    [InlineData("--rnn-layers", "3", "--rnn-layers")]
    [InlineData("--bn-recompute", "-1", "--bn-recompute")]
    [InlineData("--ema", "1", "--ema")]
    [InlineData("--window", "12", "does not divide")]
    [InlineData("--window", "28", "only tiny-cnn and fmnist-cnn")]
    public void Bad_lecture_options_exit_2_naming_the_flag(string flag, string value, string fragment)
    {
        var outDir = _temp.Sub("out-" + Guid.NewGuid().ToString("N"));
        var arch = flag == "--rnn-layers" || (flag, value) == ("--window", "28") ? "gru" : "tiny-cnn";
        string[] augment = flag == "--crop-padding" ? ["--augment", "crop"] : [];
        var line = Expect.BadInput(Cli.Run(["train", "--arch", arch, flag, value, .. augment, "--data", Data(), "--epochs", "1", "--val-size", "8", "--threads", "1", "--out", outDir]), fragment);
        Assert.Contains(flag, line);
        Expect.NoPartialOutput(outDir);
    }

    [Fact]
    public void Preact_resnet18_trains_on_cifar10_format_files()
    {
        // Four records in the CIFAR-10 binary layout (1 label byte + 3,072 pixel bytes): the loader the real dataset uses.
        var dir = _temp.Sub("cifar");
        Directory.CreateDirectory(dir);
        var rng = new Random(3);
        var bytes = new byte[8 * 3073];
        rng.NextBytes(bytes);
        for (int i = 0; i < 8; i++) bytes[i * 3073] = (byte)(i % 10);
        File.WriteAllBytes(Path.Combine(dir, "data_batch_1.bin"), bytes);
        var outDir = _temp.Sub("resnet18");
        var r = Cli.Run("train", "--arch", "preact-resnet18", "--data", dir, "--augment", "crop,flip", "--crop-padding", "4", "--epochs", "1",
            "--batch-size", "4", "--val-size", "0", "--threads", "1", "--seed", "1", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var file = SafeTensors.Read(Path.Combine(outDir, "last.safetensors"));
        Assert.Equal("preact-resnet18", file.Metadata["arch"]);
        Assert.Equal("3,32,32", file.Metadata["input_shape"]);
        Assert.Equal("crop(pad 4)+flip", file.Metadata["training.augment"]);
    }

    [Fact]
    public void Bn_recompute_leaves_eval_mode_statistics_of_the_final_weights_and_is_recorded()
    {
        var outDir = _temp.Sub("resnet-bn");
        var r = Cli.Run("train", "--arch", "resnet-small", "--data", Data(), "--epochs", "1", "--batch-size", "16", "--val-size", "8",
            "--bn-recompute", "16", "--threads", "1", "--seed", "1", "--out", outDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        using var file = SafeTensors.Read(Path.Combine(outDir, "last.safetensors"));
        Assert.Equal("16", file.Metadata["training.bn_recompute_images"]);
        // The 40 training images made 3 steps (16 + 16 + 8), each counted by every BatchNorm layer; the re-estimation
        // resets the statistics and reads 16 images, one batch: the saved counters say 1, not 3.
        Assert.All(file.Tensors.Where(kv => kv.Key.EndsWith("num_batches_tracked", StringComparison.Ordinal)),
            kv => Assert.Equal(1L, kv.Value.item<long>()));
    }
}
