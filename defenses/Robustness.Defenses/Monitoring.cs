using System.Globalization;

namespace Robustness.Defenses;

/// <summary>Metrics of one finished epoch (accuracies in [0, 1]; null = not measured).</summary>
public sealed record EpochMetrics
{
    public int Epoch { get; init; }
    /// <summary>LR of the epoch's last iteration.</summary>
    public double LearningRate { get; init; }
    /// <summary>ε of the epoch's last iteration (after the ramp).</summary>
    public double Epsilon { get; init; }
    public double TrainLoss { get; init; }
    public double? TrainCleanAccuracy { get; init; }
    /// <summary>Accuracy on the attacked (or noisy) training inputs the loss saw.</summary>
    public double? TrainAdversarialAccuracy { get; init; }
    public double? ValidationCleanAccuracy { get; init; }
    /// <summary>PGD accuracy on the held-out split at the validation ε.</summary>
    public double? ValidationRobustAccuracy { get; init; }
    /// <summary>FGSM accuracy on the first held-out batch (catastrophic-overfitting signal).</summary>
    public double? ValidationFgsmAccuracy { get; init; }
    /// <summary>Multi-label: Hamming accuracy on the held-out split (the accuracies above are subset accuracies).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public double? ValidationHammingAccuracy { get; init; }
    /// <summary>Multi-label: Hamming accuracy under the validation PGD (decisions correct clean and attacked).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public double? ValidationRobustHammingAccuracy { get; init; }
    public double Seconds { get; init; }
    public IReadOnlyList<string> Events { get; init; } = [];
    /// <summary>Mean over the epoch's batches of each layer's gradient L2 norm (all its parameters together), in
    /// layer order; the gradient is that of the training loss the optimizer stepped on. Null for old checkpoints.</summary>
    public IReadOnlyDictionary<string, double>? GradientNorms { get; init; }

    /// <summary>What "best" means (Rice et al. 2020): robust validation accuracy, else clean validation accuracy.</summary>
    public double? SelectionScore => ValidationRobustAccuracy ?? ValidationCleanAccuracy;
}

/// <summary>Something the run wants the user to know (the CLI prints it; metrics.jsonl records it).</summary>
public sealed record TrainingEvent(int Epoch, string Kind, string Message)
{
    public const string CatastrophicOverfitting = "catastrophic-overfitting";
    public const string EarlyStop = "early-stop";
    public const string Resumed = "resumed";
    public const string BestRestored = "best-restored";
    public const string TargetReached = "target-reached";
    public const string RobustOverfitting = "robust-overfitting";

    public override string ToString() => $"epoch {Epoch}: {Kind}: {Message}";
}

/// <summary>
/// Keeps the epoch with the highest <see cref="EpochMetrics.SelectionScore"/> (ties keep the earlier epoch).
/// Without any validation score every epoch counts as the best so far, i.e. best = last.
/// </summary>
public sealed class BestEpochTracker
{
    public int? BestEpoch { get; private set; }
    public double? BestScore { get; private set; }

    /// <summary>True when <paramref name="metrics"/> is the new best.</summary>
    public bool Observe(EpochMetrics metrics)
    {
        var score = metrics.SelectionScore;
        bool better = score is null || BestScore is null || score > BestScore;
        if (!better) return false;
        BestEpoch = metrics.Epoch;
        BestScore = score;
        return true;
    }

    internal void Restore(int? epoch, double? score) => (BestEpoch, BestScore) = (epoch, score);
}

/// <summary>
/// Robust overfitting (Rice et al. 2020): validation robust accuracy falls well below its best while training goes
/// on, as it does late in PGD-AT with few steps once the learning rate is small. The run is not stopped (the best file
/// already keeps the best epoch); the first epoch that is <see cref="Drop"/> or more below the best says so once.
/// </summary>
public static class RobustOverfitting
{
    public const double Drop = 0.05;

    /// <summary>The event for <paramref name="metrics"/>, or null: no robust validation, not far enough below the best
    /// of <paramref name="earlier"/> epochs, or already said in <paramref name="events"/>.</summary>
    public static TrainingEvent? Check(EpochMetrics metrics, IReadOnlyList<EpochMetrics> earlier, IEnumerable<TrainingEvent> events, string bestFile, string lastFile)
    {
        if (metrics.ValidationRobustAccuracy is not { } robust || events.Any(e => e.Kind == TrainingEvent.RobustOverfitting)) return null;
        var best = earlier.Where(m => m.ValidationRobustAccuracy is not null).MaxBy(m => m.ValidationRobustAccuracy!.Value);
        if (best?.ValidationRobustAccuracy is not { } top || top - robust < Drop) return null;
        return new TrainingEvent(metrics.Epoch, TrainingEvent.RobustOverfitting, string.Create(CultureInfo.InvariantCulture,
            $"validation robust accuracy {robust:P1} is {100 * (top - robust):F1} points below its best ({top:P1}, epoch {best.Epoch}); " +
            $"{bestFile} keeps the most robust epoch, {lastFile} is less robust"));
    }
}

/// <summary>
/// Catastrophic overfitting of FGSM training (Wong et al. 2020): within an epoch PGD accuracy falls to near zero
/// while accuracy against FGSM climbs. Fires when robust validation accuracy drops more than
/// <see cref="MaxDrop"/> (absolute) below the best epoch, or falls under <see cref="CollapseFraction"/> of the best
/// while FGSM accuracy rises compared with the previous epoch.
/// </summary>
public sealed class CatastrophicOverfittingDetector
{
    public double MaxDrop { get; init; } = 0.20;
    public double CollapseFraction { get; init; } = 0.2;

    public double? BestRobustAccuracy { get; private set; }
    public double? PreviousFgsmAccuracy { get; private set; }

    /// <summary>The reason when this epoch shows catastrophic overfitting, else null.</summary>
    public string? Observe(EpochMetrics metrics)
    {
        string? reason = null;
        if (metrics.ValidationRobustAccuracy is { } robust && BestRobustAccuracy is { } best)
        {
            bool fgsmRising = metrics.ValidationFgsmAccuracy is { } f && PreviousFgsmAccuracy is { } pf && f > pf;
            if (best - robust > MaxDrop)
                reason = Inv($"robust validation accuracy fell from {best:P1} (best) to {robust:P1}");
            else if (robust < CollapseFraction * best && fgsmRising)
                reason = Inv($"robust validation accuracy collapsed to {robust:P1} (best {best:P1}) while FGSM accuracy rose to {metrics.ValidationFgsmAccuracy:P1}");
        }
        if (metrics.ValidationRobustAccuracy is { } r && (BestRobustAccuracy is null || r > BestRobustAccuracy)) BestRobustAccuracy = r;
        if (metrics.ValidationFgsmAccuracy is { } fg) PreviousFgsmAccuracy = fg;
        return reason;
    }

    internal void Restore(double? best, double? previousFgsm) => (BestRobustAccuracy, PreviousFgsmAccuracy) = (best, previousFgsm);

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
