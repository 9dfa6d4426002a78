using static TorchSharp.torch;

namespace Robustness.Core;

/// <summary>
/// Channels-last (NHWC in memory, shape still [N, C, H, W]) views for the network's input. libtorch 2.x runs oneDNN
/// convolutions much faster on channels-last activations, every later layer keeps the layout, and the values are the
/// same, so <see cref="TorchClassifier.Logits"/> hands every 4-D batch to the network in this layout.
/// </summary>
public static class Layout
{
    /// <summary>True when a 4-D tensor already has dense channels-last strides.</summary>
    public static bool IsChannelsLast(Tensor t)
    {
        if (t.dim() != 4) return false;
        var (s, st) = (t.shape, t.stride());
        return st[1] == 1 && st[3] == s[1] && st[2] == s[1] * s[3] && st[0] == s[1] * s[2] * s[3];
    }

    /// <summary>
    /// <paramref name="batch"/> in channels-last layout, differentiable (gradients flow back to the original). A
    /// channels-last batch and anything that is not 4-D come back as they are. With one channel the NCHW and NHWC orders
    /// are the same bytes; only the strides must say so (oneDNN reads the layout from them), so no copy is made.
    /// </summary>
    public static Tensor ChannelsLastView(Tensor batch)
    {
        if (batch.dim() != 4 || IsChannelsLast(batch)) return batch;
        var s = batch.shape;
        return s[1] == 1
            ? batch.reshape(s[0], s[2], s[3], 1).permute(0, 3, 1, 2)
            : batch.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2);
    }
}
