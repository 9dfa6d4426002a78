using System.Text.Json;
using Robustness.Core;
using Robustness.Core.Formats;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Defenses.Tests;

/// <summary>The lecture's training tricks: augmentation, per-layer gradient norms, initialisation, and adversarial
/// training of every zoo architecture with batch norm handled as usual (attack in eval mode, step in train mode).</summary>
public class LectureTrainingTests
{
    [Fact]
    public void Crop_takes_a_window_of_the_padded_image_and_flip_mirrors_whole_images()
    {
        using var scope = NewDisposeScope();
        const int n = 64, p = 2;
        // Every pixel distinct and > 0, so a window is identified by its values; the pad value is 0.
        var x = (arange(Keep(n * 8 * 8), dtype: ScalarType.Float32) + Keep(1)).view(n, 1, 8, 8) / Keep(n * 64 + 1);
        var padded = nn.functional.pad(x, [p, p, p, p]);
        var augmentation = new Augmentation { Crop = true, CropPadding = p, Flip = true };
        var y = augmentation.Apply(x, new Generator(5), Bounds.Unit);
        Assert.Equal(x.shape, y.shape);
        var offsets = new HashSet<(int, int)>();
        int flipped = 0;
        for (int i = 0; i < n; i++)
        {
            (int, int, bool)? match = null;
            for (int dy = 0; dy <= 2 * p && match is null; dy++)
                for (int dx = 0; dx <= 2 * p && match is null; dx++)
                {
                    var window = padded[i, .., dy..(dy + 8), dx..(dx + 8)];
                    if (y[i].eq(window).all().ToBoolean()) match = (dy, dx, false);
                    else if (y[i].eq(window.flip(2)).all().ToBoolean()) match = (dy, dx, true);
                }
            Assert.True(match is not null, $"image {i} is not a (flipped) window of the padded image");
            offsets.Add((match.Value.Item1, match.Value.Item2));
            if (match.Value.Item3) flipped++;
        }
        Assert.True(offsets.Count >= 10, $"only {offsets.Count} distinct offsets in 64 images");
        Assert.InRange(flipped, 16, 48);
        // Seeded: the same generator state gives the same batch; the input is untouched.
        Assert.True(augmentation.Apply(x, new Generator(5), Bounds.Unit).eq(y).all().ToBoolean());
        Assert.False(augmentation.Apply(x, new Generator(6), Bounds.Unit).eq(y).all().ToBoolean());
        Assert.Equal(1f / (n * 64 + 1), x.min().ToSingle(), 6);
        // Flip alone mirrors; none is the identity.
        var mirrored = new Augmentation { Flip = true }.Apply(x, new Generator(1), Bounds.Unit);
        for (int i = 0; i < n; i++)
            Assert.True(mirrored[i].eq(x[i]).all().ToBoolean() || mirrored[i].eq(x[i].flip(2)).all().ToBoolean());
        Assert.Same(x, Augmentation.None.Apply(x, new Generator(1), Bounds.Unit));
    }

    [Fact]
    public void Augmentation_options_are_parsed_and_checked()
    {
        Assert.Equal("crop(pad 3)+flip", Augmentation.Parse("crop, flip", 3).ToString());
        Assert.Equal("flip", Augmentation.Parse("flip").ToString());
        Assert.True(Augmentation.Parse("none").IsNone);
        Assert.True(Augmentation.Parse("").IsNone);
        Assert.Equal(nameof(Augmentation), Assert.Throws<ParameterException>(() => Augmentation.Parse("rotate")).Parameter);
        Assert.Equal(nameof(Augmentation.CropPadding), Assert.Throws<ParameterException>(() => Augmentation.Parse("crop", 0)).Parameter);
        Assert.Throws<ParameterException>(() => new Augmentation { Crop = true, CropPadding = 4 }.CheckShape([1, 4, 4]));
        Assert.Throws<ParameterException>(() => new Augmentation { Flip = true }.CheckShape([784]));
    }

    [Fact]
    public void Augmented_training_resumes_exactly_and_records_the_augmentation()
    {
        var data = Fixtures.TrainSubset(400);
        var options = new TrainingOptions
        {
            Epochs = 2, BatchSize = 50, LearningRate = 0.05, Schedule = LearningRateScheduleKind.Cosine, Seed = 4, ValidationSize = 50,
            Threads = 2, LogEvery = 3, Augmentation = new Augmentation { Crop = true, CropPadding = 3, Flip = true },
        };
        var objective = new FgsmRsObjective(0.1);

        var straightDir = Fixtures.TempDir();
        using var straight = Fixtures.TinyMlp(3);
        new Trainer(straight, objective, options with { OutputDirectory = straightDir }) { ModelWriter = ModelFileWriter.Instance }.Fit(data);

        using var resumed = Fixtures.TinyMlp(99);
        var crashDir = Fixtures.CrashThenResume(objective, options, data, seed: 3, epoch: 2, batch: 3, resumed);
        var diff = Fixtures.MaxDifference(Fixtures.Weights(straight.Module), Fixtures.Weights(resumed.Module));
        Assert.True(diff == 0, $"resumed augmented run differs by {diff}");

        // The augmentation really changed training, and a resume with other augmentation is refused.
        using var plain = Fixtures.TinyMlp(3);
        new Trainer(plain, objective, options with { Augmentation = Augmentation.None }).Fit(data);
        Assert.True(Fixtures.MaxDifference(Fixtures.Weights(straight.Module), Fixtures.Weights(plain.Module)) > 1e-4);
        var e = Assert.ThrowsAny<InputException>(() => new Trainer(resumed, objective, options with { Augmentation = Augmentation.Parse("flip") }) { ModelWriter = ModelFileWriter.Instance }.Resume(crashDir, data));
        Assert.Contains("augmentation", e.Message);

        using var file = SafeTensors.Read(Path.Combine(straightDir, Trainer.BestModelFile));
        Assert.Equal("crop(pad 3)+flip", file.Metadata["training.augment"]);
    }

    /// <summary>Mean per-layer gradient norms of the first epoch of a 10-layer MLP (9 hidden layers of 64), Kaiming-initialised.</summary>
    private static IReadOnlyDictionary<string, double> FirstEpochGradientNorms(string activation, string dir)
    {
        random.manual_seed(2);
        var spec = ModelZoo.DefaultSpec("mlp", new ZooOptions { Hidden = Enumerable.Repeat(64, 9).ToArray(), Activation = activation });
        using var model = ModelZoo.CreateClassifier("mlp", CPU, spec, WeightInit.Kaiming);
        var options = new TrainingOptions { Epochs = 1, BatchSize = 50, LearningRate = 0.05, Seed = 1, ValidationSize = 0, Threads = 2, OutputDirectory = dir };
        new Trainer(model, new StandardObjective(), options) { ModelWriter = ModelFileWriter.Instance }.Fit(Fixtures.TrainSubset(500));
        using var line = JsonDocument.Parse(File.ReadLines(Path.Combine(dir, Trainer.MetricsFile)).First());
        return line.RootElement.GetProperty("grad_norms").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
    }

    [Fact]
    public void Per_layer_gradient_norms_show_the_vanishing_gradient_of_a_deep_sigmoid_mlp()
    {
        var sigmoidDir = Fixtures.TempDir();
        var sigmoid = FirstEpochGradientNorms("sigmoid", sigmoidDir);
        var relu = FirstEpochGradientNorms("relu", Fixtures.TempDir());
        Assert.Equal(Enumerable.Range(1, 10).Select(i => $"fc{i}"), sigmoid.Keys);
        Assert.All(sigmoid.Values.Concat(relu.Values), v => Assert.True(v > 0 && double.IsFinite(v)));
        // Same (Kaiming) start: each sigmoid layer passes back at most ¼ of the gradient, so the first layer gets orders
        // of magnitude less than the last; with ReLU (the gain Kaiming's scale is made for) the layers stay comparable.
        double sigmoidRatio = sigmoid["fc1"] / sigmoid["fc10"], reluRatio = relu["fc1"] / relu["fc10"];
        Assert.True(sigmoidRatio < 1e-3 && reluRatio > 0.1, $"fc1/fc10 gradient norm ratio: sigmoid {sigmoidRatio:E2}, relu {reluRatio:E2}");
        Assert.True(File.Exists(Path.Combine(sigmoidDir, Trainer.CurvesFile)));
    }

    [Fact]
    public void Mlp_initialised_with_zeros_never_breaks_symmetry_and_stays_at_chance()
    {
        var options = new TrainingOptions { Epochs = 2, BatchSize = 50, LearningRate = 0.1, Seed = 1, ValidationSize = 0, Threads = 2 };
        var data = Fixtures.TrainSubset(1000);
        double Train(WeightInit init, string activation, out Dictionary<string, Tensor> weights)
        {
            var spec = ModelZoo.DefaultSpec("mlp", new ZooOptions { Hidden = [32], Activation = activation });
            random.manual_seed(1);
            using var model = ModelZoo.CreateClassifier("mlp", CPU, spec, init);
            new Trainer(model, new StandardObjective(), options).Fit(data);
            weights = Fixtures.Weights(model.Module);
            return Fixtures.Evaluate(model, Fixtures.HeldOut.Value, 0.1).Clean;
        }
        using var scope = NewDisposeScope();
        // ReLU(0) = 0: no hidden unit ever gets a gradient; only the output biases learn, so every image gets the same
        // class and the accuracy is that class's share (chance, 10 classes of about equal size).
        var zeroAccuracy = Train(WeightInit.Zeros, "relu", out var zeroWeights);
        Assert.InRange(zeroAccuracy, 0.0, 0.15);
        Assert.Equal(0f, zeroWeights["fc1.weight"].abs().max().ToSingle());
        Assert.Equal(0f, zeroWeights["fc2.weight"].abs().max().ToSingle());
        // Sigmoid(0) = ½: the units do learn, but all identically — every row of fc1 stays equal to the first.
        Train(WeightInit.Zeros, "sigmoid", out var sigmoidWeights);
        var w1 = sigmoidWeights["fc1.weight"];
        Assert.True(w1.abs().max().ToSingle() > 0, "sigmoid units should have moved");
        Assert.Equal(0f, (w1 - w1[0]).abs().max().ToSingle());
        // Random starts break the symmetry and learn.
        var kaimingAccuracy = Train(WeightInit.Kaiming, "relu", out _);
        Assert.True(kaimingAccuracy > 0.6, $"kaiming-initialised accuracy {kaimingAccuracy:P1}");
    }

    public static TheoryData<string, string> EveryArchitectureAndDefense()
    {
        var data = new TheoryData<string, string>();
        foreach (var arch in new[] { "mlp", "tiny-cnn", "lenet5", "fmnist-cnn", "resnet-small", "lstm", "gru", "preact-resnet18" })
            foreach (var defense in new[] { "pgd", "fgsm-rs", "trades" })
                data.Add(arch, defense);
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryArchitectureAndDefense))]
    public void Adversarial_training_steps_every_architecture_with_batch_norm_updated_only_by_the_training_passes(string arch, string defense)
    {
        // preact-resnet18 (11 M parameters) on 16×16 images: the same network at a quarter of the cost of 32×32.
        int[] shape = arch == "preact-resnet18" ? [3, 16, 16] : ModelZoo.DefaultInputShape(arch);
        int count = arch switch { "preact-resnet18" => 8, "resnet-small" => 16, _ => 24 };
        random.manual_seed(3);
        var spec = ModelZoo.DefaultSpec(arch, new ZooOptions { InputShape = shape, Dropout = arch is "mlp" or "tiny-cnn" ? 0.3 : 0 });
        using var model = ModelZoo.CreateClassifier(arch, CPU, spec);
        using var images = rand([count, .. shape.Select(d => (long)d)]);
        using var labels = arange(Keep(count), ScalarType.Int64) % Keep(10);
        using var data = new ImageDataset("random", images.clone(), labels.clone(), Enumerable.Range(0, 10).Select(i => $"{i}").ToList());
        var before = Fixtures.Weights(model.Network);
        model.Module.eval(); // the trainer switches to train mode for the steps and restores the caller's mode
        var objective = TrainingObjectives.Create(defense, new DefenseSettings { Epsilon = 0.1, Steps = 2 });
        var options = new TrainingOptions { Epochs = 1, BatchSize = count / 2, LearningRate = 0.01, Seed = 1, ValidationSize = 0, Threads = 2,
            Augmentation = new Augmentation { Crop = true, Flip = true } };
        var report = new Trainer(model, objective, options).Fit(data);

        Assert.False(model.Module.training, "the caller's eval mode was not restored");
        Assert.True(double.IsFinite(report.Final!.TrainLoss) && report.Final.TrainLoss > 0);
        Assert.True(Fixtures.MaxDifference(before.Where(kv => !kv.Key.Contains("running") && !kv.Key.Contains("num_batches")).ToDictionary(),
            Fixtures.Weights(model.Network).Where(kv => !kv.Key.Contains("running") && !kv.Key.Contains("num_batches")).ToDictionary()) > 0, "no step was taken");
        Assert.NotNull(report.Final.GradientNorms);
        // Batch norm counts its train-mode passes: one per step (the adversarial batch) for PGD-AT and FGSM-RS, two
        // for TRADES (clean and adversarial). Attack iterations and the clean-accuracy display run in eval mode.
        var counters = model.Network.state_dict().Where(kv => kv.Key.EndsWith("num_batches_tracked", StringComparison.Ordinal)).ToList();
        Assert.Equal(arch is "resnet-small" or "preact-resnet18", counters.Count > 0);
        long expected = 2 * (defense == "trades" ? 2 : 1);
        Assert.All(counters, c => Assert.Equal(expected, c.Value.ToInt64()));
    }

    [Theory]
    [InlineData("resnet-small")]
    [InlineData("lstm")]
    public void Pgd_training_with_a_bf16_inner_attack_supports_the_lecture_architectures(string arch)
    {
        random.manual_seed(4);
        using var model = ModelZoo.CreateClassifier(arch, CPU, ModelZoo.DefaultSpec(arch));
        var options = new TrainingOptions { Epochs = 1, BatchSize = 16, LearningRate = 0.01, Seed = 1, ValidationSize = 0, Threads = 2, AttackPrecision = GradientPrecision.Bf16 };
        var report = new Trainer(model, new PgdAdversarialObjective(0.1) { Steps = 2 }, options) { ReducedPrecisionViews = Bf16Views.Instance }.Fit(Fixtures.TrainSubset(32));
        Assert.True(double.IsFinite(report.Final!.TrainLoss));
        var counters = model.Network.state_dict().Where(kv => kv.Key.EndsWith("num_batches_tracked", StringComparison.Ordinal));
        Assert.All(counters, c => Assert.Equal(2L, c.Value.ToInt64()));
    }
}
