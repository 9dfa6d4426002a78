using Robustness.Core;
using Robustness.Core.Graphs;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Certification.Tests;

/// <summary>What a random test network is made of: drawn by CsCheck, built deterministically from the seed.</summary>
public sealed record NetworkRecipe(int Seed, bool Image, int Channels, int Side, int[] Layers, bool Normalize, int Hidden, int Classes)
{
    public override string ToString() =>
        $"seed {Seed}, {(Image ? $"image {Channels}×{Side}×{Side}" : $"vector {Side}")}, layers [{string.Join(",", Layers)}], normalize {Normalize}, hidden {Hidden}, classes {Classes}";
}

/// <summary>
/// Random small networks over every op IBP supports: conv (3×3 padded, 2×2 stride 2), ReLU, max-pool, average-pool,
/// batch norm (random running statistics), residual blocks (conv → ReLU → conv + identity), normalisation, linear.
/// Weights are N(0, 1/fan-in) so activations stay of order one.
/// </summary>
public static class RandomNetworks
{
    /// <summary>Layer codes for image networks: 0 conv3×3, 1 relu, 2 maxpool2, 3 avgpool2, 4 batchnorm, 5 residual block, 6 conv2×2/2.</summary>
    public const int ImageLayerKinds = 7;

    public static NetworkGraph Build(NetworkRecipe r, List<Tensor> owned)
    {
        manual_seed(r.Seed);
        var g = new NetworkGraphBuilder();
        Tensor Own(Tensor t) { owned.Add(t); return t; }
        Tensor Weight(params long[] shape)
        {
            long fanIn = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            return Own(randn(shape) / Keep(Math.Sqrt(fanIn)));
        }
        if (r.Normalize)
        {
            int c = r.Image ? r.Channels : 1;
            g.Then("normalize", new ChannelAffineOp(Own(rand(c) * Keep(2) + Keep(0.5)), Own(randn(c) * Keep(0.5))));
        }
        long features;
        if (r.Image)
        {
            long channels = r.Channels, side = r.Side;
            foreach (var code in r.Layers)
            {
                switch (code)
                {
                    case 0:
                        {
                            long outC = 2 + (long)(rand(1).ToSingle() * 3);
                            g.Then("conv", new Conv2dOp(Weight(outC, channels, 3, 3), Own(randn(outC) * Keep(0.1)), [1, 1], [1, 1], [1, 1]));
                            channels = outC;
                            break;
                        }
                    case 1: g.Then("relu", ReluOp.Instance); break;
                    case 2 when side >= 4: g.Then("maxpool", new MaxPool2dOp([2, 2], [2, 2], [0, 0])); side /= 2; break;
                    case 3 when side >= 4: g.Then("avgpool", new AvgPool2dOp([2, 2], [2, 2], [0, 0])); side /= 2; break;
                    case 4:
                        g.Then("bn", new BatchNormOp(Own(rand(channels) + Keep(0.5)), Own(randn(channels) * Keep(0.1)), Own(randn(channels) * Keep(0.2)), Own(rand(channels) + Keep(0.3)), 1e-5));
                        break;
                    case 5:
                        {
                            int input = g.Last;
                            g.Then("res.conv1", new Conv2dOp(Weight(channels, channels, 3, 3), Own(randn(channels) * Keep(0.1)), [1, 1], [1, 1], [1, 1]));
                            g.Then("res.relu", ReluOp.Instance);
                            int h = g.Then("res.conv2", new Conv2dOp(Weight(channels, channels, 3, 3), null, [1, 1], [1, 1], [1, 1]));
                            g.Add("res.add", AddOp.Instance, h, input);
                            break;
                        }
                    case 6 when side >= 4:
                        {
                            long outC = 2 + (long)(rand(1).ToSingle() * 3);
                            g.Then("conv-s2", new Conv2dOp(Weight(outC, channels, 2, 2), Own(randn(outC) * Keep(0.1)), [2, 2], [0, 0], [1, 1]));
                            channels = outC;
                            side /= 2;
                            break;
                        }
                    default: g.Then("relu", ReluOp.Instance); break;
                }
            }
            g.Then("flatten", FlattenOp.Instance);
            features = channels * side * side;
        }
        else
        {
            features = r.Side;
            foreach (var code in r.Layers)
            {
                if (code % 2 == 0)
                {
                    g.Then("fc", new LinearOp(Weight(r.Hidden, features), Own(randn(r.Hidden) * Keep(0.1))));
                    features = r.Hidden;
                }
                else g.Then("relu", ReluOp.Instance);
            }
        }
        g.Then("head", new LinearOp(Weight(r.Hidden, features), Own(randn(r.Hidden) * Keep(0.1))));
        g.Then("head.relu", ReluOp.Instance);
        g.Then("logits", new LinearOp(Weight(r.Classes, r.Hidden), Own(randn(r.Classes) * Keep(0.1))));
        return g.Build();
    }

    public static long[] InputShape(NetworkRecipe r) => r.Image ? [r.Channels, r.Side, r.Side] : [r.Side];

    /// <summary>The same graph with every tensor converted to <paramref name="dtype"/> (copies kept in <paramref name="owned"/>).</summary>
    public static NetworkGraph Cast(NetworkGraph graph, ScalarType dtype, List<Tensor> owned)
    {
        Tensor C(Tensor t) { var c = t.to(dtype).detach(); owned.Add(c); return c; }
        Tensor? CN(Tensor? t) => t is null ? null : C(t);
        return new NetworkGraph(graph.Nodes.Select(n => n with
        {
            Op = n.Op switch
            {
                LinearOp l => new LinearOp(C(l.Weight), CN(l.Bias)),
                Conv2dOp c => c with { Weight = C(c.Weight), Bias = CN(c.Bias) },
                BatchNormOp b => new BatchNormOp(CN(b.Weight), CN(b.Bias), C(b.RunningMean), C(b.RunningVar), b.Eps),
                ChannelAffineOp a => new ChannelAffineOp(C(a.Scale), C(a.Shift)),
                var op => op,
            },
        }).ToArray());
    }
}

/// <summary>A graph as a classifier (its forward is <see cref="GraphExecutor.Forward"/>), so attacks can run on it.</summary>
public sealed class GraphModule(NetworkGraph graph) : nn.Module<Tensor, Tensor>("graph"), IDescribedNetwork
{
    public override Tensor forward(Tensor input) => GraphExecutor.Forward(graph, input);
    public NetworkGraph Describe() => graph;

    public static TorchClassifier Classifier(NetworkGraph graph, long[] inputShape, int classes) =>
        new(new GraphModule(graph), new ModelSpec { Arch = "random-graph", InputShape = inputShape.Select(d => (int)d).ToArray(), NumClasses = classes });
}
