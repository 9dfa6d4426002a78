using Robustness.Core;
using Robustness.Core.Graphs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Models.Tests;

/// <summary>Every zoo architecture describes exactly the function its forward() computes, over its live parameters.</summary>
public class NetworkGraphTests
{
    [Theory]
    [InlineData("tiny-cnn", 1, 28, 28, null)]
    [InlineData("fmnist-cnn", 1, 28, 28, null)]
    [InlineData("lenet5", 1, 28, 28, null)]
    [InlineData("ibp-small", 1, 28, 28, null)]
    [InlineData("mlp", 1, 28, 28, "relu")]
    [InlineData("mlp", 1, 28, 28, "tanh")]
    [InlineData("mlp", 1, 28, 28, "sigmoid")]
    [InlineData("mlp", 1, 28, 28, "linear")]
    [InlineData("preact-resnet18", 3, 16, 16, null)]
    public void Description_computes_the_same_logits_as_the_module(string arch, int c, int h, int w, string? activation)
    {
        random.manual_seed(11);
        var options = new ZooOptions { InputShape = [c, h, w], Hidden = arch == "mlp" ? [32, 16] : null, Activation = activation ?? "relu" };
        var spec = ModelZoo.DefaultSpec(arch, options) with { Mean = c == 1 ? [0.3f] : [0.4f, 0.5f, 0.6f], Std = c == 1 ? [0.2f] : [0.2f, 0.25f, 0.3f] };
        using var model = ModelZoo.CreateClassifier(arch, CPU, spec);
        using var scope = NewDisposeScope();
        RandomiseBatchNormStatistics(model.Module);
        using var eval = ((IGradientClassifier)model).EvalMode();
        using var noGrad = no_grad();
        var x = rand(3, c, h, w);
        var graph = NetworkDescriptions.Of(model);
        Assert.IsType<ChannelAffineOp>(graph.Nodes[0].Op);
        var expected = model.Logits(x);
        var described = GraphExecutor.Forward(graph, x);
        var tolerance = 1e-4f * (1 + expected.abs().max().ToSingle());
        Assert.True(Fixtures.MaxAbsDifference(expected, described) < tolerance, $"{arch}: {Fixtures.MaxAbsDifference(expected, described)}");
    }

    [Fact]
    public void Description_refers_to_the_live_parameters()
    {
        random.manual_seed(12);
        using var model = ModelZoo.CreateClassifier("ibp-small", CPU);
        var graph = NetworkDescriptions.Of(model);
        var fc2 = Assert.IsType<LinearOp>(graph.Output.Op);
        Assert.Same(model.Network.get_parameter("fc2.weight"), fc2.Weight);
        var conv1 = model.Network.get_parameter("conv1.weight")!;
        // Gradients of a function of the description reach the network's parameters.
        using var x = rand(2, 1, 28, 28);
        using var y = GraphExecutor.Forward(graph, x);
        using var loss = y.square().sum();
        loss.backward();
        Assert.NotNull(conv1.grad);
    }

    [Fact]
    public void A_network_without_a_description_is_refused_with_its_name()
    {
        using var net = nn.Sequential(("flatten", nn.Flatten()), ("fc", nn.Linear(784, 10)));
        using var model = new TorchClassifier(net, ModelZoo.DefaultSpec("mlp") with { Arch = "custom-net" });
        var e = Assert.Throws<InputException>(() => NetworkDescriptions.Of(model));
        Assert.Equal("ibp: model custom-net does not describe its layers (bound propagation needs a layer-level description, IDescribedNetwork)", e.Message);
    }

    [Fact]
    public void Graph_checks_that_nodes_read_earlier_nodes()
    {
        Assert.Throws<ArgumentException>(() => new NetworkGraph([new GraphNode("a", ReluOp.Instance, [0])]));
        Assert.Throws<ArgumentException>(() => new NetworkGraph([new GraphNode("a", AddOp.Instance, [-1])]));
        var ok = new NetworkGraph([new GraphNode("a", ReluOp.Instance, [-1]), new GraphNode("b", AddOp.Instance, [0, -1])]);
        Assert.Equal([1, 1], ok.Consumers());
    }

    /// <summary>Running statistics away from (0, 1), so a description that ignored them would not match.</summary>
    private static void RandomiseBatchNormStatistics(nn.Module module)
    {
        using var noGrad = no_grad();
        foreach (var (_, m) in module.named_modules())
            if (m is BatchNorm2d bn)
            {
                bn.running_mean!.copy_(randn(bn.running_mean.shape) * Keep(0.1));
                bn.running_var!.copy_(rand(bn.running_var.shape) + Keep(0.5));
                bn.weight!.copy_(rand(bn.weight.shape) + Keep(0.5));
                bn.bias!.copy_(randn(bn.bias!.shape) * Keep(0.1));
            }
    }
}
