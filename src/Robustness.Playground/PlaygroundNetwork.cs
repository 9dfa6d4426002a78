using Robustness.Core;
using Robustness.Data.Toy;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Playground;

/// <summary>
/// The input features of the TF Playground computed from the raw point (x₁, x₂) inside the model, as normalisation
/// is inside an image model: attacks and certificates act on the point itself, not on the features.
/// </summary>
public sealed class FeatureMap : nn.Module<Tensor, Tensor>
{
    public FeatureMap(IReadOnlyList<string> features) : base("features")
    {
        Names = features.ToArray();
        foreach (var f in Names)
            if (!PlaygroundState.FeatureNames.Contains(f)) throw new ParameterException("features", $"unknown feature '{f}'");
    }

    public IReadOnlyList<string> Names { get; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var x1 = x[.., 0..1];
        var x2 = x[.., 1..2];
        var columns = Names.Select(f => f switch
        {
            "x1" => x1,
            "x2" => x2,
            "x1sq" => x1 * x1,
            "x2sq" => x2 * x2,
            "x1x2" => x1 * x2,
            "sinx1" => x1.sin(),
            "sinx2" => x2.sin(),
            _ => throw new InvalidOperationException(f),
        }).ToArray();
        return cat(columns, 1).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// The playground's MLP: features → hidden layers (0–6 of 1–8 neurons, one activation) → one output neuron s.
/// Layers are fc1 … fcN as in the zoo's mlp. <see cref="Trace"/> gives every neuron's output for the thumbnails.
/// </summary>
public sealed class PlaygroundNetwork : nn.Module<Tensor, Tensor>
{
    private readonly FeatureMap features;
    private readonly Linear[] _layers;
    private readonly Func<Tensor, Tensor> _activation;

    public PlaygroundNetwork(IReadOnlyList<string> featureNames, IReadOnlyList<int> hidden, string activation) : base("playground-mlp")
    {
        if (hidden.Count > PlaygroundState.MaxHiddenLayers || hidden.Any(h => h < 1 || h > PlaygroundState.MaxNeurons))
            throw new ParameterException("networkShape", $"0–{PlaygroundState.MaxHiddenLayers} hidden layers of 1–{PlaygroundState.MaxNeurons} neurons");
        features = new FeatureMap(featureNames);
        Activation = activation;
        _activation = Activate(activation);
        Widths = [featureNames.Count, .. hidden, 1];
        _layers = new Linear[Widths.Length - 1];
        for (int i = 0; i < _layers.Length; i++) _layers[i] = nn.Linear(Widths[i], Widths[i + 1]);
        register_module("features", features);
        for (int i = 0; i < _layers.Length; i++) register_module($"fc{i + 1}", _layers[i]);
    }

    public static Func<Tensor, Tensor> Activate(string activation) => activation switch
    {
        "relu" => t => t.relu(),
        "tanh" => t => t.tanh(),
        "sigmoid" => t => t.sigmoid(),
        "linear" => t => t.alias(),
        _ => throw new ParameterException("activation", $"'{activation}' is not one of relu, tanh, sigmoid, linear"),
    };

    public string Activation { get; }
    /// <summary>Feature count, hidden widths, 1.</summary>
    public int[] Widths { get; }
    public IReadOnlyList<string> FeatureNames => features.Names;
    public IReadOnlyList<Linear> Layers => _layers;

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = features.call(x);
        for (int i = 0; i < _layers.Length; i++)
        {
            h = _layers[i].call(h);
            if (i < _layers.Length - 1) h = _activation(h);
        }
        return h.MoveToOuterDisposeScope();
    }

    /// <summary>Per layer the outputs [N, width]: the features, each hidden layer after its activation, and the output s.</summary>
    public List<Tensor> Trace(Tensor x)
    {
        var outputs = new List<Tensor>();
        var h = features.call(x);
        outputs.Add(h);
        for (int i = 0; i < _layers.Length; i++)
        {
            h = _layers[i].call(h);
            if (i < _layers.Length - 1) h = _activation(h);
            outputs.Add(h);
        }
        return outputs;
    }

    /// <summary>
    /// The layers after the features as a <see cref="Core.Graphs.NetworkGraph"/> for the Certification library (its
    /// live weights). With <paramref name="twoLogits"/> the last layer is composed with the classifier head, so the graph
    /// computes the logits (−s/2, s/2) with one linear last layer, which IBP folds into the margin (the margin of blue
    /// is then exactly s).
    /// </summary>
    public Core.Graphs.NetworkGraph DescribeLayers(bool twoLogits)
    {
        var b = new Core.Graphs.NetworkGraphBuilder();
        for (int i = 0; i < _layers.Length; i++)
        {
            var l = _layers[i];
            bool last = i == _layers.Length - 1;
            if (last && twoLogits)
            {
                var w = l.weight!.detach();
                var bias = l.bias!.detach();
                b.Then($"fc{i + 1}+head", new Core.Graphs.LinearOp(cat([w * Keep(-0.5), w * Keep(0.5)], 0), cat([bias * Keep(-0.5), bias * Keep(0.5)], 0)));
            }
            else b.Then($"fc{i + 1}", Core.Graphs.Layers.Linear(l));
            if (!last)
            {
                Core.Graphs.GraphOp? op = Activation switch
                {
                    "relu" => Core.Graphs.ReluOp.Instance,
                    "tanh" => Core.Graphs.TanhOp.Instance,
                    "sigmoid" => Core.Graphs.SigmoidOp.Instance,
                    _ => null,
                };
                if (op is not null) b.Then($"{Activation}{i + 1}", op);
            }
        }
        return b.Build();
    }

    /// <summary>Random (PyTorch's nn.Linear rule, U(−1/√fan_in, 1/√fan_in) for weights and biases) or all zeros, drawn
    /// from <paramref name="generator"/> so the same seed gives the same network in every session.</summary>
    public void Initialise(string init, Generator generator)
    {
        using var scope = NewDisposeScope();  // in-place ops return fresh handles
        using var _ = no_grad();
        foreach (var layer in _layers)
        {
            if (init == "zeros")
            {
                layer.weight!.zero_();
                layer.bias!.zero_();
                continue;
            }
            var bound = 1.0 / Math.Sqrt(layer.weight!.shape[1]);
            layer.weight.uniform_(-bound, bound, generator);
            layer.bias!.uniform_(-bound, bound, generator);
        }
    }
}

/// <summary>
/// The playground network as a classifier in the toolkit's sense: inputs are points in [−6, 6]², the output neuron s
/// becomes the two logits (−s/2, s/2) (orange = class 0, blue = class 1), so softmax gives p(blue) = σ(s) and the
/// cross-entropy of the toolkit's objectives is the logistic loss; the value the page shows is p(blue) − p(orange) =
/// tanh(s/2) ∈ [−1, 1]. For regression the logits are s itself, [N, 1].
/// </summary>
public sealed class PlaygroundModel : IGradientClassifier, IDisposable
{
    private sealed class Head : nn.Module<Tensor, Tensor>
    {
        private readonly PlaygroundNetwork network;
        private readonly bool _classification;

        public Head(PlaygroundNetwork net, bool classification) : base("head")
        {
            network = net;
            _classification = classification;
            register_module("network", network);
        }

        public override Tensor forward(Tensor x)
        {
            var s = network.call(x);
            if (!_classification) return s;
            using var scope = NewDisposeScope();
            var half = s * Keep(0.5);
            return cat([-half, half], 1).MoveToOuterDisposeScope();
        }
    }

    public PlaygroundModel(PlaygroundNetwork network, bool classification)
    {
        Network = network;
        Classification = classification;
        Module = new Head(network, classification);
        Spec = new ModelSpec
        {
            Arch = "playground-mlp",
            InputShape = [2],
            NumClasses = classification ? 2 : 1,
            Labels = classification ? ["orange", "blue"] : ["value"],
            Bounds = ToyDatasets.Bounds,
        };
    }

    public PlaygroundNetwork Network { get; }
    public bool Classification { get; }
    public nn.Module<Tensor, Tensor> Module { get; }
    public ModelSpec Spec { get; }
    public Device Device => CPU;

    public Tensor Logits(Tensor inputs) => Module.call(inputs);

    /// <summary>What the page colours: tanh(s/2) for classification, s for regression.</summary>
    public Tensor DisplayValue(Tensor s) => Classification ? (s * Keep(0.5)).tanh() : s.alias();

    public void Dispose() => Module.Dispose();
}
