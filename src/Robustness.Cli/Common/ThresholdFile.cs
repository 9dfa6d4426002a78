using System.Globalization;
using Robustness.Core;
using Robustness.Data;
using Robustness.Defenses;
using Robustness.Models;
using Spectre.Console;
using TorchSharp;

namespace Robustness.Cli.Common;

/// <summary>Tunes the decision threshold of a saved multi-label model on held-out images and writes the model with it
/// (the tuning record in its metadata), atomically; `robust train --tune-threshold` and `robust threshold` share it.</summary>
public static class ThresholdFile
{
    /// <summary>Tunes <paramref name="model"/> (loaded from a file, multi-label) and writes it to <paramref name="outPath"/>.</summary>
    public static ThresholdTuningResult TuneAndSave(TorchClassifier model, string outPath, ImageDataset validation, ThresholdMetric metric,
        ThresholdAttack? attack, int batchSize, torch.Device device)
    {
        ThresholdTuningResult tuned = null!;
        ProgressBar.Run($"threshold: {ThresholdTuning.Name(metric)}", attack is null ? 1 : validation.Count, tick =>
            tuned = ThresholdTuning.Tune(model, validation, metric, batchSize, attack, new Ticks(tick)));
        var spec = model.Spec with
        {
            DecisionThreshold = tuned.Threshold,
            Extra = new Dictionary<string, string>(model.Spec.Extra) { [ThresholdTuning.MetadataKey] = tuned.Describe() },
        };
        // Shares the network with `model` (the caller disposes it).
        var retuned = ModelZoo.Wrap(model.Network, spec, device);
        ModelFile.Save(retuned, outPath);
        CommandRunner.Out.MarkupLine($"{Markup.Escape(Path.GetFileName(outPath))}: decision threshold {tuned.Threshold.ToString("0.##", CultureInfo.InvariantCulture)} ({Markup.Escape(tuned.Describe())})");
        return tuned;
    }

    private sealed class Ticks(Action tick) : IProgress<int>
    {
        public void Report(int images)
        {
            for (int i = 0; i < images; i++) tick();
        }
    }
}
