using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Robustness.Models.Zoo;

#pragma warning disable IDE1006 // naming: PyTorch attribute names

/// <summary>
/// resnet-small: a pre-activation ResNet for 28×28 inputs (docs/zoo.md). conv1 3×3 → 16 channels, three stages of
/// two <see cref="PreActBlock"/>s with 16, 32, 64 channels (stages 2 and 3 start with stride 2: 28 → 14 → 7), then
/// BN → ReLU → global average pooling → (dropout) → linear. The same block and key names as preact-resnet18.
/// </summary>
internal sealed class ResNetSmall : nn.Module<Tensor, Tensor>
{
    public static readonly int[] Widths = [16, 32, 64];

    private readonly Conv2d conv1;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly BatchNorm2d bn;
    private readonly Linear linear;
    private readonly double _dropout;

    public ResNetSmall(int channels, int classes, double dropout = 0) : base("resnet-small")
    {
        conv1 = nn.Conv2d(channels, Widths[0], 3, stride: 1, padding: 1, bias: false);
        layer1 = nn.Sequential(new PreActBlock(Widths[0], Widths[0], 1), new PreActBlock(Widths[0], Widths[0], 1));
        layer2 = nn.Sequential(new PreActBlock(Widths[0], Widths[1], 2), new PreActBlock(Widths[1], Widths[1], 1));
        layer3 = nn.Sequential(new PreActBlock(Widths[1], Widths[2], 2), new PreActBlock(Widths[2], Widths[2], 1));
        bn = nn.BatchNorm2d(Widths[2]);
        linear = nn.Linear(Widths[2], classes);
        _dropout = dropout;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = conv1.call(x);
        h = layer3.call(layer2.call(layer1.call(h)));
        h = F.relu(bn.call(h));
        h = F.adaptive_avg_pool2d(h, 1).flatten(1);
        return linear.call(Head.Dropout(h, _dropout, training)).MoveToOuterDisposeScope();
    }

    /// <summary>Trainable parameters, computed without building (for <see cref="ModelZoo.ParameterCount"/>).</summary>
    public static long ParameterCount(long channels, long classes)
    {
        long total = channels * Widths[0] * 9;
        int inPlanes = Widths[0];
        for (int stage = 0; stage < Widths.Length; stage++)
            for (int block = 0; block < 2; block++)
            {
                int stride = stage > 0 && block == 0 ? 2 : 1;
                total += PreActBlockParameters(inPlanes, Widths[stage], stride);
                inPlanes = Widths[stage];
            }
        return total + 2L * Widths[^1] + Widths[^1] * classes + classes;
    }

    /// <summary>bn1, conv1, bn2, conv2 and the 1×1 shortcut when the shape changes (no conv biases).</summary>
    public static long PreActBlockParameters(long inPlanes, long planes, int stride) =>
        2 * inPlanes + inPlanes * planes * 9 + 2 * planes + planes * planes * 9 + (stride != 1 || inPlanes != planes ? inPlanes * planes : 0);
}

/// <summary>The classifier-head dropout every zoo architecture shares: F.dropout in train mode, identity in eval mode.</summary>
internal static class Head
{
    public static Tensor Dropout(Tensor h, double p, bool training) =>
        p > 0 && training ? F.dropout(h, p, training: true) : h;
}
