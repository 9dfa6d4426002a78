using Robustness.Core;
using System.Globalization;

namespace Robustness.Defenses;

/// <summary>Where a training run is, for hooks; hooks can ask the trainer to stop after the current epoch.</summary>
public sealed class TrainingState
{
    public int Epoch { get; internal set; }
    public int Epochs { get; internal init; }
    public long Iteration { get; internal set; }
    public int IterationsPerEpoch { get; internal init; }
    public IReadOnlyList<EpochMetrics> History { get; internal init; } = [];
    public string? StopReason { get; private set; }

    /// <summary>Stop after the current epoch (early stopping); the run counts as finished.</summary>
    public void RequestStop(string reason) => StopReason ??= reason;
}

/// <summary>Progress after a batch. The running values are only read from the device every LogEvery batches
/// (and at the epoch's last batch); on other batches they are null, so hooks never force a host sync.</summary>
public sealed record BatchProgress(
    int Epoch, int Batch, int BatchesPerEpoch, long Iteration, double LearningRate, double Epsilon,
    double? RunningLoss, double? RunningCleanAccuracy, double? RunningAdversarialAccuracy);

/// <summary>Callbacks around a training run: logging, progress, early stopping, custom checks.</summary>
public interface ITrainingHook
{
    void OnEpochStart(TrainingState state) { }
    void OnBatchEnd(BatchProgress progress, TrainingState state) { }
    void OnEpochEnd(EpochMetrics metrics, TrainingState state) { }
    void OnEvent(TrainingEvent trainingEvent) { }
}

/// <summary>Stops when the selection score (robust, else clean validation accuracy) has not improved for
/// <see cref="Patience"/> epochs.</summary>
public sealed class EarlyStoppingHook(int patience) : ITrainingHook
{
    public int Patience { get; } = patience >= 1 ? patience : throw new ParameterException("Patience", $"must be ≥ 1, got {patience}");

    public void OnEpochEnd(EpochMetrics metrics, TrainingState state)
    {
        var scored = state.History.Append(metrics).Where(m => m.SelectionScore is not null).ToList();
        if (scored.Count == 0) return;
        var best = scored.MaxBy(m => m.SelectionScore!.Value)!;
        if (metrics.Epoch - best.Epoch >= Patience)
            state.RequestStop(string.Create(CultureInfo.InvariantCulture, $"no improvement for {Patience} epochs (best {best.SelectionScore:P1} at epoch {best.Epoch})"));
    }
}

/// <summary>Writes a progress line every LogEvery batches and a summary per epoch.</summary>
public sealed class TextProgressHook(TextWriter writer) : ITrainingHook
{
    public void OnBatchEnd(BatchProgress p, TrainingState state)
    {
        if (p.RunningLoss is not { } loss) return;
        writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"epoch {p.Epoch}/{state.Epochs} batch {p.Batch}/{p.BatchesPerEpoch} lr {p.LearningRate:G4} eps {p.Epsilon:G4} loss {loss:F4}{Acc(" acc", p.RunningCleanAccuracy)}{Acc(" adv", p.RunningAdversarialAccuracy)}"));
    }

    public void OnEpochEnd(EpochMetrics m, TrainingState state) =>
        writer.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"epoch {m.Epoch}/{state.Epochs}: loss {m.TrainLoss:F4}{Acc(" train", m.TrainCleanAccuracy)}{Acc(" train-adv", m.TrainAdversarialAccuracy)}{Acc(" val", m.ValidationCleanAccuracy)}{Acc(" val-robust", m.ValidationRobustAccuracy)} ({m.Seconds:F1} s)"));

    public void OnEvent(TrainingEvent e) => writer.WriteLine($"warning: {e}");

    private static string Acc(string label, double? v) => v is { } x ? string.Create(CultureInfo.InvariantCulture, $"{label} {x:P1}") : "";
}
