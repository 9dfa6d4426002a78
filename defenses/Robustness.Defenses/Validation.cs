using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Defenses;

/// <summary>Held-out accuracies after an epoch (in [0, 1]; null = not measured). For multi-label data the accuracies
/// are subset (exact-match) accuracies and the Hamming accuracies are set as well.</summary>
public sealed record ValidationMetrics(double CleanAccuracy, double? RobustAccuracy, double? FgsmAccuracy)
{
    public double? HammingAccuracy { get; init; }
    /// <summary>Multi-label: (sample, class) decisions correct on the clean input and at the PGD point.</summary>
    public double? RobustHammingAccuracy { get; init; }
}

/// <summary>Measures the model on the held-out split after each epoch.</summary>
public interface IValidator
{
    ValidationMetrics Validate(IGradientClassifier model, ImageDataset data, int epoch);
}

/// <summary>
/// Clean accuracy and PGD accuracy (K steps, α = ε/4, random start) on the held-out split, plus FGSM accuracy on its
/// first batch for the catastrophic-overfitting detector. Randomness comes from a generator seeded by (seed, epoch),
/// so validation never consumes the training generator and resumed runs validate identically. On multi-label data
/// (multi-hot labels) PGD maximises the BCE against the true set, a point counts as robust when no class is flipped,
/// and Hamming accuracies (clean, and correct both clean and at the PGD point) are measured too.
/// </summary>
public sealed class RobustValidator : IValidator
{
    private readonly ThreatModel? _threat;
    private readonly int _steps, _batchSize;
    private readonly long _seed;
    private readonly bool _measureFgsm;

    public RobustValidator(ThreatModel? threat, int pgdSteps = 10, int batchSize = 256, long seed = 0, bool measureFgsm = false)
    {
        _threat = threat is { Epsilon: > 0 } ? threat : null;
        _steps = pgdSteps;
        _batchSize = batchSize;
        _seed = seed;
        _measureFgsm = measureFgsm;
    }

    public ValidationMetrics Validate(IGradientClassifier model, ImageDataset data, int epoch)
    {
        using var mode = model.EvalMode();
        var device = model.Device;
        using var cleanCorrect = zeros(1, ScalarType.Int64, device);
        using var robustCorrect = zeros(1, ScalarType.Int64, device);
        bool multi = data.MultiLabel;
        using var cleanLabels = zeros(1, ScalarType.Int64, device);
        using var robustLabels = zeros(1, ScalarType.Int64, device);
        Tensor? fgsmCorrect = null;
        long fgsmCount = 0;
        using var generator = new Generator(unchecked((ulong)(_seed * 1_000_003 + epoch)), CPU);
        var context = new AttackContext(generator);
        var pgd = _threat is null ? null : new ProjectedGradientAttack(_threat) { Steps = _steps, RelativeStepSize = 0.25, Start = Starts.Uniform, EarlyStop = false };
        bool first = true;
        foreach (var batch in data.Batches(_batchSize, device))
        {
            using var scope = NewDisposeScope();
            using (batch)
            {
                Tensor? cleanOk = null;
                using (no_grad())
                {
                    var logits = model.Logits(batch.Inputs);
                    if (multi)
                    {
                        cleanOk = MultiLabelTargets.Flipped(logits, batch.Labels).logical_not();
                        cleanCorrect.add_(cleanOk.all(1).sum());
                        cleanLabels.add_(cleanOk.sum());
                    }
                    else cleanCorrect.add_(logits.argmax(1).eq(batch.Labels).sum());
                }
                if (pgd is not null)
                {
                    var targets = new AttackTargets(batch.Labels);
                    using var result = pgd.Run(model, batch.Inputs, targets, context);
                    robustCorrect.add_(result.Success.logical_not().sum());
                    if (cleanOk is not null)
                        robustLabels.add_(MultiLabelTargets.Flipped(result.Logits, batch.Labels).logical_not().logical_and(cleanOk).sum());
                    if (first && _measureFgsm)
                    {
                        using var fgsm = Presets.Fgsm(_threat!).Run(model, batch.Inputs, targets, context);
                        fgsmCorrect = fgsm.Success.logical_not().sum().MoveToOuterDisposeScope();
                        fgsmCount = batch.Count;
                    }
                }
            }
            first = false;
        }
        double n = Math.Max(1, data.Count);
        var clean = cleanCorrect.item<long>() / n;
        double? robust = pgd is null ? null : robustCorrect.item<long>() / n;
        double? fgsmAcc = fgsmCorrect is null ? null : fgsmCorrect.item<long>() / (double)fgsmCount;
        fgsmCorrect?.Dispose();
        double labelsTotal = n * Math.Max(1, data.NumClasses);
        return new ValidationMetrics(clean, robust, fgsmAcc)
        {
            HammingAccuracy = multi ? cleanLabels.item<long>() / labelsTotal : null,
            RobustHammingAccuracy = multi && pgd is not null ? robustLabels.item<long>() / labelsTotal : null,
        };
    }
}

/// <summary>Splits a training set into train and held-out parts by a seeded permutation.</summary>
public static class ValidationSplit
{
    /// <summary>The first <paramref name="validationSize"/> rows of a seeded permutation are held out; both parts keep file order.</summary>
    public static (ImageDataset Train, ImageDataset Validation) Split(ImageDataset data, int validationSize, long seed)
    {
        if (validationSize <= 0 || validationSize >= data.Count)
            throw new ParameterException("ValidationSize", $"{validationSize} must be between 1 and the training set size − 1 ({data.Count - 1})");
        var order = Enumerable.Range(0, data.Count).Select(i => (long)i).ToArray();
        new Random(unchecked((int)(seed ^ (seed >> 32)) ^ 0x5EED)).Shuffle(order);
        var held = order.Take(validationSize).Order().ToArray();
        var rest = order.Skip(validationSize).Order().ToArray();
        return (data.Subset(rest, data.Name + "-train"), data.Subset(held, data.Name + "-val"));
    }
}
