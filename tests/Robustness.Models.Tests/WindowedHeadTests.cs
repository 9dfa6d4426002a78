using Robustness.Core;
using Robustness.Core.Graphs;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Tests;

/// <summary>
/// The two-stage CNNs' windowed head (<see cref="ZooOptions.Window"/>): on a grid of windows it must be exactly the
/// plain one-window network run on every block, with the class-wise maximum taken, and its graph must say so.
/// </summary>
public class WindowedHeadTests
{
    internal static nn.Module<Tensor, Tensor> Build(string arch, int height, int width, int window, int seed)
    {
        random.manual_seed(seed);
        var network = ModelZoo.Create(arch, new ZooOptions { InputShape = [1, height, width], Window = window });
        network.eval();
        return network;
    }

    private static void AssertClose(Tensor expected, Tensor actual, double tolerance = 1e-5)
    {
        Assert.Equal(expected.shape, actual.shape);
        var gap = (expected - actual).abs().max().ToDouble();
        Assert.True(gap <= tolerance, $"largest difference {gap}");
    }

    [Theory]
    [InlineData("tiny-cnn")]
    [InlineData("fmnist-cnn")]
    public void On_one_window_it_is_the_plain_network(string arch)
    {
        using var plain = Build(arch, 28, 28, window: 0, seed: 1);
        using var windowed = Build(arch, 28, 28, window: 28, seed: 2);
        windowed.load_state_dict(plain.state_dict());
        using var scope = NewDisposeScope();
        random.manual_seed(3);
        var x = rand(4, 1, 28, 28);
        using var _ = no_grad();
        AssertClose(plain.call(x), windowed.call(x));
    }

    [Theory]
    [InlineData("tiny-cnn", 56, 56)]
    [InlineData("tiny-cnn", 28, 84)]
    [InlineData("fmnist-cnn", 56, 56)]
    public void On_a_grid_it_is_the_classwise_maximum_of_the_one_window_head_over_the_blocks(string arch, int height, int width)
    {
        // The same weights run by hand: the convolutional trunk over the whole input (so features at a block's edge see
        // the neighbouring block, as in any CNN), then the plain network's fc1/fc2 on each block of the feature map.
        using var windowed = Build(arch, height, width, window: 28, seed: 5);
        var w = windowed.state_dict();
        using var scope = NewDisposeScope();
        random.manual_seed(6);
        var x = rand(3, 1, height, width);
        using var _ = no_grad();
        var f = nn.functional.max_pool2d(nn.functional.conv2d(x, w["conv1.weight"], w["conv1.bias"], padding: [w["conv1.weight"].shape[2] / 2]).relu(), 2);
        f = nn.functional.max_pool2d(nn.functional.conv2d(f, w["conv2.weight"], w["conv2.bias"], padding: [w["conv2.weight"].shape[2] / 2]).relu(), 2);
        var blocks = new List<Tensor>();
        for (int r = 0; r < height / 4; r += 7)
            for (int c = 0; c < width / 4; c += 7)
            {
                var h = nn.functional.linear(f[.., .., r..(r + 7), c..(c + 7)].flatten(1), w["fc1.weight"], w["fc1.bias"]).relu();
                blocks.Add(nn.functional.linear(h, w["fc2.weight"], w["fc2.bias"]));
            }
        AssertClose(stack(blocks).amax(0), windowed.call(x));
        // Not a trivial maximum: different blocks win for different classes.
        Assert.True(stack(blocks).argmax(0).unique().output.numel() > 1);
    }

    [Fact]
    public void Its_graph_computes_the_same_function_and_gradients_reach_the_head()
    {
        using var network = Build("tiny-cnn", 56, 56, window: 28, seed: 7);
        var graph = ((IDescribedNetwork)network).Describe();
        using var scope = NewDisposeScope();
        random.manual_seed(8);
        var x = rand(2, 1, 56, 56);
        using (no_grad()) AssertClose(network.call(x), GraphExecutor.Forward(graph, x));

        network.train();
        network.call(x).sum().backward();
        foreach (var (name, p) in network.named_parameters())
            Assert.True(p.grad is { } g && g.abs().sum().ToDouble() > 0, $"{name} got no gradient");
    }

    [Fact]
    public void The_window_travels_in_the_model_file_and_sets_the_parameter_count()
    {
        var options = new ZooOptions { InputShape = [1, 56, 56], Window = 28, NumClasses = 10 };
        var spec = ModelZoo.DefaultSpec("fmnist-cnn", options);
        Assert.Equal("28", spec.Extra[ModelMetadata.Window]);
        random.manual_seed(9);
        using var model = ModelZoo.CreateClassifier("fmnist-cnn", CPU, spec);
        long count = model.Network.parameters().Sum(p => p.numel());
        Assert.Equal(count, ModelZoo.ParameterCount("fmnist-cnn", options));
        Assert.True(count < ModelZoo.ParameterCount("fmnist-cnn", options with { Window = 0 }) / 3);

        var path = Fixtures.TempFile(".safetensors");
        ModelFile.Save(model, path);
        using (var loaded = ModelFile.Load(path))
        {
            Assert.Equal(28, ModelZoo.OptionsFor(loaded.Spec).Window);
            using var scope = NewDisposeScope();
            var x = rand(2, 1, 56, 56);
            AssertClose(model.Logits(x), loaded.Logits(x));
        }
        File.Delete(path);
    }

    [Theory]
    [InlineData("tiny-cnn", 6, "multiple of 4")]
    [InlineData("tiny-cnn", 24, "does not divide")]
    [InlineData("mlp", 28, "only tiny-cnn and fmnist-cnn")]
    [InlineData("lstm", 28, "only tiny-cnn and fmnist-cnn")]
    public void A_window_the_network_cannot_have_is_a_named_error(string arch, int window, string problem)
    {
        var e = Assert.Throws<ParameterException>(() =>
            ModelZoo.Create(arch, new ZooOptions { InputShape = [1, 56, 56], Window = window }).Dispose());
        Assert.Equal(nameof(ZooOptions.Window), e.Parameter);
        Assert.Contains(problem, e.Message);
    }
}

/// <summary>The live tensor count is global to the process: this runs alone, after the parallel classes, so tensors
/// they create meanwhile cannot move it.</summary>
[CollectionDefinition("tensor counts", DisableParallelization = true)]
public sealed class TensorCountCollection;

[Collection("tensor counts")]
public class WindowedHeadMemoryTests
{
    [Fact]
    public void Describing_again_makes_no_new_tensors()
    {
        // IBP training describes the network every step.
        using var network = WindowedHeadTests.Build("tiny-cnn", 56, 56, window: 28, seed: 7);
        ((IDescribedNetwork)network).Describe();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long live = LiveTensors.Count;
        for (int i = 0; i < 50; i++) ((IDescribedNetwork)network).Describe();
        Assert.Equal(live, LiveTensors.Count);
    }
}
