using System.Diagnostics;
using Robustness.Attacks;
using Robustness.Certification;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Defenses;
using Robustness.Evaluation;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Cli.Commands.Bench;

/// <summary>How much repetition a benchmark run spends: quick for smoke tests, full for the numbers in docs.</summary>
public sealed record BenchBudget(int Warmup, int Repetitions, int TrainBatches, int EvalImages)
{
    /// <summary>Noise samples per timed run of the smoothing workload (one image).</summary>
    public int SmoothingSamples { get; init; } = 10_000;
    public static BenchBudget Full { get; } = new(2, 5, 8, 1000);
    /// <summary>No warm-up, one repetition, one training batch, 32 evaluation images: proves every path runs.</summary>
    public static BenchBudget Quick { get; } = new(0, 1, 1, 32) { SmoothingSamples = 1000 };
    /// <summary>The batch-size / model-size sweep: 15 configurations, so fewer repetitions each.</summary>
    public static BenchBudget Scaling { get; } = new(1, 3, 8, 1000);
}

/// <summary>
/// The measured workloads. Each runs the library's real code path (attacks through <see cref="IAttack.Run"/>, so the
/// sealed final threat-model check is included; training through <see cref="Trainer.Fit"/>; evaluation through
/// <see cref="Evaluator"/>) on the shipped Fashion-MNIST test images, warms up, and reports the median of the timed
/// repetitions. Models are freshly initialised with seed 0: speed does not depend on the weights (except evaluation,
/// which only attacks correctly classified points and therefore uses a trained model).
/// </summary>
public sealed class BenchWorkloads(ImageDataset data, BenchBudget budget, int threads)
{
    public const double Epsilon = 0.1;
    public const int AttackSteps = 10;
    public const int TrainBatch = 128;
    public const int MatmulSize = 2048;

    public BenchBudget Budget => budget;
    public int Threads => threads;
    public ImageDataset Data => data;

    /// <summary>Median and all samples (seconds) of <paramref name="run"/> after <paramref name="warmup"/> untimed calls.</summary>
    /// <param name="parametersPerRun">Parameters each run constructs (counted for good by TorchSharp, see TensorLedger).</param>
    public static (double Median, double[] Samples) Time(Action run, int warmup, int repetitions, int parametersPerRun = 0)
    {
        var live = SettledLiveTensors();
        for (int i = 0; i < warmup; i++) run();
        var samples = new double[repetitions];
        for (int i = 0; i < repetitions; i++)
        {
            var watch = Stopwatch.StartNew();
            run();
            samples[i] = watch.Elapsed.TotalSeconds;
        }
        long constructed = (long)parametersPerRun * (warmup + repetitions);
        TensorLedger.Constructed(constructed);
        TensorLedger.AddDrift(SettledLiveTensors() - live - constructed);
        return (Median(samples), samples);
    }

    /// <summary>The live tensor count once the GC has finalized what it can: without it, the count depends on GC timing.</summary>
    private static long SettledLiveTensors()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return Robustness.Core.LiveTensors.Count;
    }

    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0) return double.NaN;
        var s = values.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    /// <summary>L∞ PGD, 10 steps, random start, ε = 0.1, α = ε/4, one batch of the first images, through IAttack.Run.</summary>
    public BenchMeasurement Attack(string arch, int batch, bool bf16 = false)
    {
        random.manual_seed(0);
        using var model = ModelZoo.CreateClassifier(arch, CPU);
        TensorLedger.Constructed(model.Module);
        using var half = bf16 ? new Bf16GradientClassifier(model) : null;
        if (half is not null) TensorLedger.Constructed(half.ParametersConstructed);
        IGradientClassifier classifier = half is null ? model : half;
        var attack = Pgd(model.Spec.Bounds);
        using var x = data.Images.narrow(0, 0, batch).contiguous();
        using var y = data.Labels.narrow(0, 0, batch).contiguous();
        var targets = new AttackTargets(y);
        using var generator = new Generator(0);
        var context = new AttackContext(generator);
        var (t, samples) = Time(() => { using var r = attack.Run(classifier, x, targets, context); }, budget.Warmup, budget.Repetitions);
        var extra = new Dictionary<string, double>();
        if (!bf16) extra["gflop_per_s"] = 3.0 * FlopCounter.ForwardFlops(model.Module, model.Spec.InputShape) * batch * AttackSteps / t / 1e9;
        return new BenchMeasurement("attack-pgd-linf", arch, batch, "img_steps_per_s", batch * AttackSteps / t)
        {
            Threads = threads, Samples = samples, Dtype = bf16 ? "bfloat16" : "float32", Extra = extra,
        };
    }

    public static ProjectedGradientAttack Pgd(Bounds bounds) =>
        Presets.Pgd(new ThreatModel(Norm.Linf, Epsilon, bounds), AttackSteps, 1) with { RelativeStepSize = 0.25 };

    /// <summary>
    /// One epoch of <see cref="Trainer.Fit"/> over the first TrainBatches·128 images (SGD, momentum 0.9, weight decay
    /// 5e-4, no validation, nothing written), as `robust train` runs it: the objective's attack, the clean-accuracy
    /// display pass, backward and the optimizer step are all inside the timed region.
    /// </summary>
    /// <param name="bf16">The objective's attack differentiates a bf16 copy (<see cref="TrainingOptions.AttackPrecision"/>).</param>
    public BenchMeasurement Train(string workload, bool bf16 = false)
    {
        random.manual_seed(0);
        var arch = workload == "train-ibp" ? "ibp-small" : "tiny-cnn";
        using var model = ModelZoo.CreateClassifier(arch, CPU);
        TensorLedger.Constructed(model.Module);
        using var subset = data.Take(budget.TrainBatches * TrainBatch);
        ITrainingObjective objective = workload switch
        {
            "train-standard" => new StandardObjective(),
            "train-fgsm-rs" => new FgsmRsObjective(Epsilon),
            "train-pgd7" => new PgdAdversarialObjective(Epsilon) { Steps = 7, StepSize = Epsilon / 4 },
            // Interval bounds at the full ε (no ramp), κ = 0.5: a clean pass plus the bound pass, backward through both.
            "train-ibp" => new IbpObjective(Epsilon) { KappaStart = 0.5 },
            _ => throw new ArgumentOutOfRangeException(nameof(workload)),
        };
        var trainer = new Trainer(model, objective, new TrainingOptions
        {
            Epochs = 1,
            BatchSize = TrainBatch,
            LearningRate = 0.01,
            Momentum = 0.9,
            WeightDecay = 5e-4,
            ValidationSize = 0,
            OutputDirectory = null,
            DetectCatastrophicOverfitting = false,
            Device = "cpu",
            Seed = 0,
            AttackPrecision = bf16 ? GradientPrecision.Bf16 : GradientPrecision.Float32,
        });
        // Each Fit with bf16 builds its bf16 view of the model.
        var perRun = bf16 ? Bf16GradientClassifier.ConstructedParameters(model) : 0;
        var (t, samples) = Time(() => trainer.Fit(subset), Math.Min(1, budget.Warmup), budget.Repetitions, perRun);
        return new BenchMeasurement(workload, arch, TrainBatch, "images_per_s", subset.Count / t)
        {
            Threads = threads, Samples = samples, Dtype = bf16 ? "bfloat16" : "float32",
        };
    }

    /// <summary>
    /// Seconds per 1,000 images of the `fast` preset (APGD-CE then APGD-T on the points still standing), sanity checks
    /// off, batch 256, on <paramref name="model"/> (trained: the evaluator only attacks correctly classified points).
    /// </summary>
    public BenchMeasurement Eval(IClassifier model, string modelName, int batch = 256)
    {
        var n = Math.Min(budget.EvalImages, data.Count);
        var options = new EvaluationOptions
        {
            Norm = Norm.Linf,
            Epsilon = Epsilon,
            Attacks = new RegistryAttackSuite("fast"),
            BatchSize = batch,
            Seed = 0,
            SampleIndices = Enumerable.Range(0, n).Select(i => (long)i).ToArray(),
            ImageCount = 0,
            SanityChecks = false,
        };
        var evaluator = new Evaluator();
        // Warm up on one small batch, not on the whole set: one evaluation of 1,000 images takes tens of seconds.
        if (budget.Warmup > 0) evaluator.Evaluate(model, data, options with { SampleIndices = options.SampleIndices.Take(Math.Min(32, n)).ToArray() });
        var (t, samples) = Time(() => evaluator.Evaluate(model, data, options), 0, Math.Min(budget.Repetitions, 3));
        return new BenchMeasurement("eval-fast", modelName, batch, "seconds_per_1000_s", t * 1000.0 / n)
        {
            Threads = threads, Samples = samples, Note = $"{n} images",
        };
    }

    /// <summary>
    /// Randomized smoothing's inner loop: the base classifier's class counts over <see cref="BenchBudget.SmoothingSamples"/>
    /// noisy copies of one image (batches of <paramref name="noiseBatch"/>, counted on the device), untrained tiny-cnn.
    /// </summary>
    public BenchMeasurement Smoothing(int noiseBatch = RandomizedSmoothing.DefaultBatchSize)
    {
        random.manual_seed(0);
        using var model = ModelZoo.CreateClassifier("tiny-cnn", CPU);
        TensorLedger.Constructed(model.Module);
        var smoothing = new RandomizedSmoothing(0.25) { BatchSize = noiseBatch };
        using var x = data.Images.narrow(0, 0, 1).contiguous();
        using var generator = new Generator(0);
        long samples = budget.SmoothingSamples;
        var (t, times) = Time(() => smoothing.SampleCounts(model, x, samples, generator), budget.Warmup, budget.Repetitions);
        return new BenchMeasurement("certify-smoothing", "tiny-cnn", noiseBatch, "image_samples_per_s", samples / t)
        {
            Threads = threads, Samples = times, Note = $"{samples} noise samples of one image",
        };
    }

    /// <summary>IBP verification of one batch at L∞ ε = 0.1 on ibp-small: float64 bounds with the float32 rounding slack,
    /// last layer folded (what `robust certify --method ibp` runs).</summary>
    public BenchMeasurement IbpVerify(int batch = 256)
    {
        random.manual_seed(0);
        using var model = ModelZoo.CreateClassifier("ibp-small", CPU);
        TensorLedger.Constructed(model.Module);
        var verifier = new IntervalVerifier(Epsilon);
        using var x = data.Images.narrow(0, 0, batch).contiguous();
        using var y = data.Labels.narrow(0, 0, batch).contiguous();
        var (t, times) = Time(() => { using var r = verifier.Verify(model, x, y); }, budget.Warmup, budget.Repetitions);
        return new BenchMeasurement("certify-ibp", "ibp-small", batch, "images_per_s", batch / t)
        {
            Threads = threads, Samples = times, Dtype = "float64",
        };
    }

    /// <summary>A 2048³ float32 matmul: the practical peak of this CPU through libtorch's BLAS.</summary>
    public BenchMeasurement MatmulPeak()
    {
        random.manual_seed(0);
        using var a = randn(MatmulSize, MatmulSize);
        using var b = randn(MatmulSize, MatmulSize);
        var (t, samples) = Time(() => { using var c = a.matmul(b); }, Math.Max(1, budget.Warmup), Math.Max(3, budget.Repetitions));
        return new BenchMeasurement("matmul-peak", $"{MatmulSize}x{MatmulSize}", 1, "gflop_per_s", 2.0 * Math.Pow(MatmulSize, 3) / t / 1e9)
        {
            Threads = threads, Samples = samples,
        };
    }
}
