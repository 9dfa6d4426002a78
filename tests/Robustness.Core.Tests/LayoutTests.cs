using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Core.Tests;

public class LayoutTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void ChannelsLastViewKeepsValuesAndGradientsAndHasNhwcStrides(int channels)
    {
        using var scope = NewDisposeScope();
        random.manual_seed(1);
        // A narrowed batch: a non-zero storage offset must survive the view.
        var all = rand(6, channels, 5, 7);
        var x = all.narrow(0, 2, 3).detach().requires_grad_(true);
        var view = Layout.ChannelsLastView(x);
        Assert.True(Layout.IsChannelsLast(view), $"strides [{string.Join(",", view.stride())}]");
        Assert.False(Layout.IsChannelsLast(x.detach().contiguous()) && channels > 1);
        Assert.Equal(x.shape, view.shape);
        Assert.True(view.eq(x).all().ToBoolean());
        Assert.Same(view, Layout.ChannelsLastView(view));

        var weights = arange(Keep(view.numel()), dtype: ScalarType.Float32).reshape(view.shape);
        var grad = autograd.grad([(view * weights).sum()], [x])[0];
        Assert.True(grad.eq(weights).all().ToBoolean(), "gradient did not flow back through the layout change");
    }

    [Fact]
    public void LogitsDoNotDependOnTheCallersLayout()
    {
        using var scope = NewDisposeScope();
        random.manual_seed(2);
        var net = nn.Sequential(("conv", nn.Conv2d(3, 8, 3, padding: 1)), ("relu", nn.ReLU()), ("flatten", nn.Flatten()), ("fc", nn.Linear(8 * 8 * 8, 4)));
        var spec = new ModelSpec { Arch = "test", InputShape = [3, 8, 8], NumClasses = 4, Labels = ["a", "b", "c", "d"], Bounds = Bounds.Unit };
        using var model = new TorchClassifier(net, spec);
        var x = rand(5, 3, 8, 8);
        using var _ = no_grad();
        var viaModel = model.Logits(x);
        var direct = net.call(x.contiguous());
        Assert.True((viaModel - direct).abs().max().ToSingle() < 1e-5f);
        Assert.Equal(new long[] { 5, 4 }, viaModel.shape);
        // Non-image inputs pass through untouched.
        var flat = rand(2, 10);
        Assert.Same(flat, Layout.ChannelsLastView(flat));
    }
}
