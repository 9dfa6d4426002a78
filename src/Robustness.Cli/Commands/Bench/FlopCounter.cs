using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Robustness.Cli.Commands.Bench;

/// <summary>
/// FLOPs of one forward pass over conv and linear layers (2 per multiply-add), the convention of
/// tests/bench/pytorch_reference.py. An attack step (forward + input-gradient backward) counts as 3× this.
/// </summary>
public static class FlopCounter
{
    public static long ForwardFlops(nn.Module<Tensor, Tensor> model, IReadOnlyList<int> inputShape)
    {
        long total = 0;
        var removers = new List<Action>();
        foreach (var (_, module) in model.named_modules())
        {
            switch (module)
            {
                case Conv2d conv:
                    var hc = conv.register_forward_hook((m, input, output) =>
                    {
                        var c = (Conv2d)m;
                        long k = c.kernel_size[0] * c.kernel_size[1] * c.in_channels / c.groups;
                        total += 2 * k * output.numel();
                        return output;
                    });
                    removers.Add(hc.remove);
                    break;
                case Linear linear:
                    var hl = linear.register_forward_hook((m, input, output) =>
                    {
                        var l = (Linear)m;
                        total += 2 * l.in_features * l.out_features * (output.numel() / l.out_features);
                        return output;
                    });
                    removers.Add(hl.remove);
                    break;
            }
        }
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var shape = new long[] { 1 }.Concat(inputShape.Select(d => (long)d)).ToArray();
            model.call(zeros(shape));
        }
        finally
        {
            foreach (var remove in removers) remove();
        }
        return total;
    }
}
