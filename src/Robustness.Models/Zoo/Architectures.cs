using Robustness.Core;
using Robustness.Core.Graphs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Robustness.Models.Zoo;

// Field names are the PyTorch attribute names: RegisterComponents() turns them into the state-dict keys
// (conv1.weight, layer1.0.shortcut.0.weight, ...) that reference-models.md fixes.
#pragma warning disable IDE1006 // naming: PyTorch attribute names

/// <summary>
/// The two-stage CNNs: conv/ReLU/2×2 max-pool twice, then a hidden linear layer and the classes.
/// tiny-cnn: 3×3 convs with 16, 32 channels, 128 hidden units; fmnist-cnn: the MNIST CNN of Madry et al.
/// (5×5 convs with 32, 64 channels, 1024 hidden units).
/// With a window (<see cref="ZooOptions.Window"/>) the head reads each window×window block of the input on its own
/// (fc1 and fc2 applied as convolutions, stride one window) and returns each class's maximum over the blocks. The
/// parameters are those of the plain network on one window, with the same names and shapes.
/// </summary>
internal sealed class TwoStageCnn : nn.Module<Tensor, Tensor>, IDescribedNetwork
{
    private readonly Conv2d conv1;
    private readonly Conv2d conv2;
    private readonly Linear fc1;
    private readonly Linear fc2;

    private readonly double _dropout;
    /// <summary>The window's side in feature cells (pixels / 4); 0 = no window.</summary>
    private readonly int _cells;
    private readonly int _c2;
    /// <summary>The grid of windows: rows and columns.</summary>
    private readonly long[] _grid;
    /// <summary>The head's kernels as described last, and the weights they view (IBP training describes every step).</summary>
    private (IntPtr Fc1Handle, Tensor Fc1, Tensor Fc2)? _described;

    private TwoStageCnn(string name, int channels, int height, int width, int classes, double dropout, int window, int c1, int c2, int kernel, int hidden) : base(name)
    {
        _dropout = dropout;
        _cells = window / 4;
        _c2 = c2;
        _grid = window > 0 ? [height / window, width / window] : [1, 1];
        conv1 = nn.Conv2d(channels, c1, kernel, padding: kernel / 2);
        conv2 = nn.Conv2d(c1, c2, kernel, padding: kernel / 2);
        fc1 = nn.Linear(window > 0 ? (long)c2 * _cells * _cells : (long)c2 * (height / 2 / 2) * (width / 2 / 2), hidden);
        fc2 = nn.Linear(hidden, classes);
        RegisterComponents();
    }

    public static TwoStageCnn Tiny(int channels, int height, int width, int classes, double dropout = 0, int window = 0) =>
        new("tiny-cnn", channels, height, width, classes, dropout, window, c1: 16, c2: 32, kernel: 3, hidden: 128);

    public static TwoStageCnn Fmnist(int channels, int height, int width, int classes, double dropout = 0, int window = 0) =>
        new("fmnist-cnn", channels, height, width, classes, dropout, window, c1: 32, c2: 64, kernel: 5, hidden: 1024);

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = F.max_pool2d(F.relu(conv1.call(x)), 2);
        h = F.max_pool2d(F.relu(conv2.call(h)), 2);
        if (_cells == 0)
        {
            h = F.relu(fc1.call(h.flatten(1)));
            return fc2.call(Head.Dropout(h, _dropout, training)).MoveToOuterDisposeScope();
        }
        var (w1, w2) = HeadKernels();
        h = F.relu(F.conv2d(h, w1, fc1.bias, strides: [_cells, _cells]));
        h = F.conv2d(Head.Dropout(h, _dropout, training), w2, fc2.bias);
        return h.amax([2L, 3L]).MoveToOuterDisposeScope();
    }

    /// <summary>fc1 and fc2 as convolution kernels: views of the live weights ([hidden, c2·s·s] is [hidden, c2, s, s]
    /// in PyTorch's flatten order).</summary>
    private (Tensor Fc1, Tensor Fc2) HeadKernels() =>
        (fc1.weight!.view(fc1.weight.shape[0], _c2, _cells, _cells), fc2.weight!.view(fc2.weight.shape[0], fc2.weight.shape[1], 1, 1));

    public NetworkGraph Describe()
    {
        var g = new NetworkGraphBuilder();
        g.Then("conv1", Layers.Conv(conv1)); g.Then("relu1", ReluOp.Instance); g.Then("pool1", Layers.MaxPool(2));
        g.Then("conv2", Layers.Conv(conv2)); g.Then("relu2", ReluOp.Instance); g.Then("pool2", Layers.MaxPool(2));
        if (_cells == 0)
        {
            g.Then("flatten", FlattenOp.Instance);
            g.Then("fc1", Layers.Linear(fc1)); g.Then("relu3", ReluOp.Instance);
            g.Then("fc2", Layers.Linear(fc2));
            return g.Build();
        }
        // The views live as long as the module (the graph refers to them, as to the other layers' parameters) and
        // are made again only when the weights are new tensors (after .to(device)).
        if (_described is not { } d || d.Fc1Handle != fc1.weight!.Handle)
        {
            DisposeDescribed();
            var (k1, k2) = HeadKernels();
            _described = d = (fc1.weight!.Handle, k1.DetachFromDisposeScope(), k2.DetachFromDisposeScope());
        }
        var (w1, w2) = (d.Fc1, d.Fc2);
        g.Then("fc1", new Conv2dOp(w1, fc1.bias, [_cells, _cells], [0, 0], [1, 1])); g.Then("relu3", ReluOp.Instance);
        g.Then("fc2", new Conv2dOp(w2, fc2.bias, [1, 1], [0, 0], [1, 1]));
        g.Then("max", new MaxPool2dOp(_grid, _grid, [0, 0]));
        g.Then("flatten", FlattenOp.Instance);
        return g.Build();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) DisposeDescribed();
        base.Dispose(disposing);
    }

    private void DisposeDescribed()
    {
        if (_described is { } d) { d.Fc1.Dispose(); d.Fc2.Dispose(); }
        _described = null;
    }
}

/// <summary>LeNet-5 with ReLU and max-pooling (padding 2 on the first conv so 28×28 inputs keep LeNet's 32×32 geometry).</summary>
internal sealed class LeNet5 : nn.Module<Tensor, Tensor>, IDescribedNetwork
{
    private readonly Conv2d conv1;
    private readonly Conv2d conv2;
    private readonly Linear fc1;
    private readonly Linear fc2;
    private readonly Linear fc3;

    private readonly double _dropout;

    public LeNet5(int channels, int height, int width, int classes, double dropout = 0) : base("lenet5")
    {
        _dropout = dropout;
        conv1 = nn.Conv2d(channels, 6, 5, padding: 2);
        conv2 = nn.Conv2d(6, 16, 5);
        fc1 = nn.Linear(16L * ((height / 2 - 4) / 2) * ((width / 2 - 4) / 2), 120);
        fc2 = nn.Linear(120, 84);
        fc3 = nn.Linear(84, classes);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = F.max_pool2d(F.relu(conv1.call(x)), 2);
        h = F.max_pool2d(F.relu(conv2.call(h)), 2);
        h = Head.Dropout(F.relu(fc1.call(h.flatten(1))), _dropout, training);
        h = F.relu(fc2.call(h));
        return fc3.call(Head.Dropout(h, _dropout, training)).MoveToOuterDisposeScope();
    }

    public NetworkGraph Describe()
    {
        var g = new NetworkGraphBuilder();
        g.Then("conv1", Layers.Conv(conv1)); g.Then("relu1", ReluOp.Instance); g.Then("pool1", Layers.MaxPool(2));
        g.Then("conv2", Layers.Conv(conv2)); g.Then("relu2", ReluOp.Instance); g.Then("pool2", Layers.MaxPool(2));
        g.Then("flatten", FlattenOp.Instance);
        g.Then("fc1", Layers.Linear(fc1)); g.Then("relu3", ReluOp.Instance);
        g.Then("fc2", Layers.Linear(fc2)); g.Then("relu4", ReluOp.Instance);
        g.Then("fc3", Layers.Linear(fc3));
        return g.Build();
    }
}

/// <summary>A fully connected network fc1 … fcN on the flattened input, with one activation between layers.</summary>
internal sealed class Mlp : nn.Module<Tensor, Tensor>, IDescribedNetwork
{
    private readonly Linear[] _layers;
    private readonly Func<Tensor, Tensor> _activation;

    private readonly double _dropout;

    public Mlp(long inputs, IReadOnlyList<int> hidden, int classes, string activation, double dropout = 0) : base("mlp")
    {
        _dropout = dropout;
        Hidden = hidden.ToArray();
        Activation = activation;
        _activation = activation switch
        {
            "relu" => t => t.relu(),
            "tanh" => t => t.tanh(),
            "sigmoid" => t => t.sigmoid(),
            "linear" => t => t.alias(),
            _ => throw new InputException($"mlp activation '{activation}' is not one of relu, tanh, sigmoid, linear"),
        };
        var widths = new List<long> { inputs };
        widths.AddRange(hidden.Select(h => (long)h));
        widths.Add(classes);
        _layers = new Linear[widths.Count - 1];
        for (int i = 0; i < _layers.Length; i++)
        {
            _layers[i] = nn.Linear(widths[i], widths[i + 1]);
            register_module($"fc{i + 1}", _layers[i]);
        }
    }

    public int[] Hidden { get; }
    public string Activation { get; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = x.flatten(1);
        for (int i = 0; i < _layers.Length; i++)
        {
            h = _layers[i].call(h);
            if (i < _layers.Length - 1) h = Head.Dropout(_activation(h), _dropout, training);
        }
        return h.MoveToOuterDisposeScope();
    }

    public NetworkGraph Describe()
    {
        var g = new NetworkGraphBuilder();
        g.Then("flatten", FlattenOp.Instance);
        for (int i = 0; i < _layers.Length; i++)
        {
            g.Then($"fc{i + 1}", Layers.Linear(_layers[i]));
            if (i == _layers.Length - 1) break;
            GraphOp? activation = Activation switch
            {
                "relu" => ReluOp.Instance,
                "tanh" => TanhOp.Instance,
                "sigmoid" => SigmoidOp.Instance,
                _ => null, // linear: identity
            };
            if (activation is not null) g.Then($"{Activation}{i + 1}", activation);
        }
        return g.Build();
    }
}

/// <summary>
/// Pre-activation basic block (He et al. 2016): BN → ReLU → conv3×3(stride) → BN → ReLU → conv3×3, added to the
/// input, or to a 1×1 strided conv of the pre-activated input when the shape changes.
/// </summary>
internal sealed class PreActBlock : nn.Module<Tensor, Tensor>
{
    private readonly BatchNorm2d bn1;
    private readonly Conv2d conv1;
    private readonly BatchNorm2d bn2;
    private readonly Conv2d conv2;
    private readonly Sequential? shortcut;

    public PreActBlock(int inPlanes, int planes, int stride) : base("PreActBlock")
    {
        bn1 = nn.BatchNorm2d(inPlanes);
        conv1 = nn.Conv2d(inPlanes, planes, 3, stride: stride, padding: 1, bias: false);
        bn2 = nn.BatchNorm2d(planes);
        conv2 = nn.Conv2d(planes, planes, 3, stride: 1, padding: 1, bias: false);
        if (stride != 1 || inPlanes != planes)
            shortcut = nn.Sequential(nn.Conv2d(inPlanes, planes, 1, stride: stride, bias: false));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var pre = F.relu(bn1.call(x));
        var identity = shortcut is null ? x : shortcut.call(pre);
        var h = conv1.call(pre);
        h = conv2.call(F.relu(bn2.call(h)));
        return (h + identity).MoveToOuterDisposeScope();
    }

    /// <summary>Appends the block to <paramref name="g"/>, reading node <paramref name="input"/>; returns the block's output node.</summary>
    public int DescribeInto(NetworkGraphBuilder g, string prefix, int input)
    {
        int bnNode = g.Add(prefix + "bn1", Layers.BatchNorm(bn1), input);
        int pre = g.Add(prefix + "relu1", ReluOp.Instance, bnNode);
        int identity = shortcut is null ? input : g.Add(prefix + "shortcut.0", Layers.Conv((Conv2d)shortcut[0]), pre);
        g.Add(prefix + "conv1", Layers.Conv(conv1), pre);
        g.Then(prefix + "bn2", Layers.BatchNorm(bn2));
        g.Then(prefix + "relu2", ReluOp.Instance);
        int h = g.Then(prefix + "conv2", Layers.Conv(conv2));
        return g.Add(prefix + "add", AddOp.Instance, h, identity);
    }
}

/// <summary>The usual CIFAR-10 pre-activation ResNet-18.</summary>
internal sealed class PreActResNet18 : nn.Module<Tensor, Tensor>, IDescribedNetwork
{
    private readonly Conv2d conv1;
    private readonly Sequential layer1;
    private readonly Sequential layer2;
    private readonly Sequential layer3;
    private readonly Sequential layer4;
    private readonly BatchNorm2d bn;
    private readonly Linear linear;

    private readonly double _dropout;

    public PreActResNet18(int channels, int classes, double dropout = 0) : base("preact-resnet18")
    {
        _dropout = dropout;
        conv1 = nn.Conv2d(channels, 64, 3, stride: 1, padding: 1, bias: false);
        layer1 = nn.Sequential(new PreActBlock(64, 64, 1), new PreActBlock(64, 64, 1));
        layer2 = nn.Sequential(new PreActBlock(64, 128, 2), new PreActBlock(128, 128, 1));
        layer3 = nn.Sequential(new PreActBlock(128, 256, 2), new PreActBlock(256, 256, 1));
        layer4 = nn.Sequential(new PreActBlock(256, 512, 2), new PreActBlock(512, 512, 1));
        bn = nn.BatchNorm2d(512);
        linear = nn.Linear(512, classes);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = conv1.call(x);
        h = layer4.call(layer3.call(layer2.call(layer1.call(h))));
        h = F.relu(bn.call(h));
        h = F.adaptive_avg_pool2d(h, 1).flatten(1);
        return linear.call(Head.Dropout(h, _dropout, training)).MoveToOuterDisposeScope();
    }

    public NetworkGraph Describe()
    {
        var g = new NetworkGraphBuilder();
        int h = g.Then("conv1", Layers.Conv(conv1));
        foreach (var (layer, name) in new[] { (layer1, "layer1"), (layer2, "layer2"), (layer3, "layer3"), (layer4, "layer4") })
            for (int b = 0; b < 2; b++)
                h = ((PreActBlock)layer[b]).DescribeInto(g, $"{name}.{b}.", h);
        g.Then("bn", Layers.BatchNorm(bn));
        g.Then("relu", ReluOp.Instance);
        g.Then("pool", GlobalAvgPoolOp.Instance);
        g.Then("flatten", FlattenOp.Instance);
        g.Then("linear", Layers.Linear(linear));
        return g.Build();
    }
}

/// <summary>
/// ibp-small, the small network of Gowal et al. (2018): conv 16 4×4 stride 2 and conv 32 4×4 stride 1 (no padding),
/// each with ReLU, then FC 100 → ReLU → FC classes. For 28×28 inputs: 13×13×16, 10×10×32 = 3200 features.
/// </summary>
internal sealed class IbpSmall : nn.Module<Tensor, Tensor>, IDescribedNetwork
{
    private readonly Conv2d conv1;
    private readonly Conv2d conv2;
    private readonly Linear fc1;
    private readonly Linear fc2;

    public IbpSmall(int channels, int height, int width, int classes) : base("ibp-small")
    {
        conv1 = nn.Conv2d(channels, 16, 4, stride: 2);
        conv2 = nn.Conv2d(16, 32, 4, stride: 1);
        fc1 = nn.Linear(32L * FeatureSide(height) * FeatureSide(width), 100);
        fc2 = nn.Linear(100, classes);
        RegisterComponents();
    }

    /// <summary>Side of conv2's output: (s − 4)/2 + 1 after conv1, minus 3 after conv2.</summary>
    public static long FeatureSide(long side) => (side - 4) / 2 + 1 - 3;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = F.relu(conv1.call(x));
        h = F.relu(conv2.call(h));
        h = F.relu(fc1.call(h.flatten(1)));
        return fc2.call(h).MoveToOuterDisposeScope();
    }

    public NetworkGraph Describe()
    {
        var g = new NetworkGraphBuilder();
        g.Then("conv1", Layers.Conv(conv1)); g.Then("relu1", ReluOp.Instance);
        g.Then("conv2", Layers.Conv(conv2)); g.Then("relu2", ReluOp.Instance);
        g.Then("flatten", FlattenOp.Instance);
        g.Then("fc1", Layers.Linear(fc1)); g.Then("relu3", ReluOp.Instance);
        g.Then("fc2", Layers.Linear(fc2));
        return g.Build();
    }
}
