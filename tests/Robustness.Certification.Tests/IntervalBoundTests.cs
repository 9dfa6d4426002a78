using Robustness.Core;
using Robustness.Core.Graphs;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Certification.Tests;

public class IntervalBoundTests
{
    [Fact]
    public void Linear_model_margins_equal_the_closed_form()
    {
        // One linear layer: the folded bound is exact, min over the box of (w_y − w_j)·x' + b_y − b_j
        // = (w_y − w_j)·x − ε‖w_y − w_j‖₁ + b_y − b_j when the box is not clipped by [0, 1].
        using var scope = NewDisposeScope();
        manual_seed(3);
        var w = randn(4, 12, dtype: float64);
        var b = randn(4, dtype: float64);
        var graph = new NetworkGraph([new GraphNode("fc", new LinearOp(w, b), [NetworkGraph.Input])]);
        var x = rand(5, 12, dtype: float64) * Keep(0.6) + Keep(0.2);
        var labels = tensor(new long[] { 0, 1, 2, 3, 1 });
        const double eps = 0.15;
        var margin = new IntervalBoundPropagation().MarginLowerBounds(graph, Interval.LinfBall(x, eps, Bounds.Unit), labels);
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 4; j++)
            {
                int y = (int)labels[i].ToInt64();
                var d = w[y] - w[j];
                double expected = j == y ? 0 : (d * x[i]).sum().ToDouble() - eps * d.abs().sum().ToDouble() + (b[y] - b[j]).ToDouble();
                Assert.Equal(expected, margin[i, j].ToDouble(), 10);
            }

        // CROWN-IBP is exact on a linear model too.
        var crown = new CrownIbp().MarginLowerBounds(graph, Interval.LinfBall(x, eps, Bounds.Unit), labels)!;
        Assert.True((crown - margin).abs().max().ToDouble() < 1e-10);

        // The naive difference of logit intervals subtracts ε(‖w_y‖₁ + ‖w_j‖₁) instead: never tighter.
        var z = new IntervalBoundPropagation().Logits(graph, Interval.LinfBall(x, eps, Bounds.Unit));
        var naive = z.Lower.gather(1, labels.unsqueeze(1)) - z.Upper;
        var offLabel = ones(5, 4, dtype: ScalarType.Bool).scatter(1, labels.unsqueeze(1), zeros(5, 1, dtype: ScalarType.Bool));
        Assert.True((margin - naive).masked_select(offLabel).min().ToDouble() >= -1e-12);
        Assert.True((margin - naive).masked_select(offLabel).max().ToDouble() > 1e-3, "folding the last layer should be strictly tighter here");
    }

    [Fact]
    public void At_epsilon_zero_the_bounds_collapse_to_the_forward_pass()
    {
        using var scope = NewDisposeScope();
        manual_seed(4);
        using var model = ModelZoo.CreateClassifier("ibp-small", CPU);
        using var noGrad = no_grad();
        var x = rand(4, 1, 28, 28);
        var graph = NetworkDescriptions.Of(model);
        var z = new IntervalBoundPropagation().Logits(graph, Interval.LinfBall(x, 0, Bounds.Unit));
        var logits = model.Logits(x);
        Assert.True((z.Lower - logits).abs().max().ToSingle() < 1e-5f);
        Assert.True((z.Upper - logits).abs().max().ToSingle() < 1e-5f);
    }

    [Fact]
    public void Rounding_slack_is_conservative_and_small()
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        using var model = ModelZoo.CreateClassifier("tiny-cnn", CPU);
        using var noGrad = no_grad();
        var x = rand(8, 1, 28, 28, dtype: float64);
        var labels = randint(0, 10, [8]);
        var graph = NetworkDescriptions.Of(model);
        var box = Interval.LinfBall(x, 0.01, Bounds.Unit);
        var exact = new IntervalBoundPropagation().MarginLowerBounds(graph, box, labels);
        var slack = new IntervalBoundPropagation { Slack = FloatingPointSlack.Float32Network }.MarginLowerBounds(graph, box, labels);
        var gap = exact - slack;
        Assert.True(gap.min().ToDouble() >= 0, "the slack must only lower the margin bounds");
        Assert.True(gap.max().ToDouble() < 1e-2 * (1 + exact.abs().max().ToDouble()), $"slack {gap.max().ToDouble()} is not small");
    }

    [Fact]
    public void Training_bounds_differentiate_into_the_weights()
    {
        using var scope = NewDisposeScope();
        manual_seed(6);
        using var model = ModelZoo.CreateClassifier("ibp-small", CPU);
        var x = rand(4, 1, 28, 28);
        var labels = tensor(new long[] { 1, 2, 3, 4 });
        var worst = new IntervalBoundPropagation().WorstCaseLogits(NetworkDescriptions.Of(model), Interval.LinfBall(x, 0.1, Bounds.Unit), labels);
        Assert.Equal(0f, worst.gather(1, labels.unsqueeze(1)).abs().max().ToSingle());
        nn.functional.cross_entropy(worst, labels).backward();
        foreach (var (name, p) in model.Network.named_parameters())
        {
            Assert.NotNull(p.grad);
            Assert.True(p.grad!.abs().sum().ToSingle() > 0, $"no gradient reached {name}");
        }
    }

    [Fact]
    public void Verifier_rejects_a_bad_epsilon_by_parameter_name()
    {
        using var model = ModelZoo.CreateClassifier("ibp-small", CPU);
        using var x = rand(1, 1, 28, 28);
        using var y = tensor(new long[] { 0 });
        var e = Assert.Throws<ParameterException>(() => new IntervalVerifier(-0.1).Verify(model, x, y));
        Assert.Equal("Epsilon", e.Parameter);
    }
}
