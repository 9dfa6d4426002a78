using Robustness.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Robustness.Defenses;

/// <summary>
/// Re-estimates the running statistics of every BatchNorm layer as a cumulative average over given images (PyTorch's
/// <c>momentum=None</c>; the pass SWA calls <c>bn_update</c>). Training keeps an exponential moving average with
/// momentum 0.1, which lags behind the weights when a run has few updates: a short run's eval-mode accuracy can then be
/// half its train-mode accuracy (docs/results.md, the preact-resnet18 smoke run). After this pass eval mode normalises
/// with the statistics of the current weights.
/// </summary>
public static class BatchNormStatistics
{
    /// <summary>The model's BatchNorm layers (1-D, 2-D and 3-D).</summary>
    public static IReadOnlyList<BatchNorm> Layers(nn.Module module) => module.modules().OfType<BatchNorm>().ToList();

    /// <summary>
    /// Resets each BatchNorm layer's statistics and recomputes them from <paramref name="data"/>'s images in batches of
    /// <paramref name="batchSize"/>: the k-th batch enters with momentum 1/k, so the running mean and variance end as the
    /// mean of the batches' statistics. No gradients; the model's mode and the layers' momentum are restored. Returns the
    /// number of layers updated (0: nothing to do, the data is not read).
    /// </summary>
    public static int Recompute(IGradientClassifier model, ImageDataset data, int batchSize, Device device)
    {
        if (batchSize < 2) throw new ParameterException("BatchSize", $"BatchNorm statistics need batches of at least 2 images, got {batchSize}");
        var layers = Layers(model.Module);
        if (layers.Count == 0) return 0;
        var momenta = layers.Select(l => l.momentum).ToArray();
        using var mode = model.TrainMode();
        using var _ = no_grad();
        foreach (var layer in layers) layer.reset_running_stats();
        try
        {
            int k = 0;
            foreach (var batch in data.Batches(batchSize, device))
            {
                using (batch)
                using (NewDisposeScope())
                {
                    if (batch.Count < 2) continue; // a single image has no batch variance
                    k++;
                    foreach (var layer in layers) layer.momentum = 1.0 / k;
                    model.Logits(Layout.ChannelsLastView(batch.Inputs));
                }
            }
        }
        finally
        {
            for (int i = 0; i < layers.Count; i++) layers[i].momentum = momenta[i];
        }
        return layers.Count;
    }
}
