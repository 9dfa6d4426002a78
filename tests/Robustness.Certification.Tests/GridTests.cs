using Robustness.Core;
using Robustness.Core.Graphs;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Certification.Tests;

/// <summary>A 2-D toy network, where exact robustness is (nearly) computable: a dense grid over each ε-box.</summary>
public class GridTests
{
    [Fact]
    public void Ibp_verified_implies_robust_on_a_dense_grid()
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var graph = TrainedToyNetwork();
        // Centres on a 12×12 grid in [0.1, 0.9]², ε = 0.04; a 61×61 grid of perturbations per box.
        var axis = linspace(0.1, 0.9, 12);
        var centres = stack([axis.repeat_interleave(12), axis.repeat(12)], 1);      // [144, 2]
        const double eps = 0.04;
        var labels = GraphExecutor.Forward(graph, centres).argmax(1);
        var verified = new IntervalVerifier(eps).Verify(graph, Bounds.Unit, centres, labels).Verified.data<bool>().ToArray();
        var crownVerified = new IntervalVerifier(eps) { Method = BoundMethod.CrownIbp }.Verify(graph, Bounds.Unit, centres, labels).Verified.data<bool>().ToArray();

        var offsets = linspace(-eps, eps, 61);
        var grid = stack([offsets.repeat_interleave(61), offsets.repeat(61)], 1);   // [3721, 2]
        int verifiedCount = 0, gridRobust = 0;
        for (int i = 0; i < centres.shape[0]; i++)
        {
            var points = (centres[i].unsqueeze(0) + grid).clamp(Keep(0), Keep(1));
            var robust = GraphExecutor.Forward(graph, points).argmax(1).eq(labels[i]).all().ToBoolean();
            if (robust) gridRobust++;
            if (verified[i]) verifiedCount++;
            Assert.False(verified[i] && !robust, $"centre {i} is IBP-verified at ε = {eps} but a grid point changes its class");
            Assert.False(crownVerified[i] && !robust, $"centre {i} is CROWN-IBP-verified at ε = {eps} but a grid point changes its class");
            Assert.True(crownVerified[i] || !verified[i], "the CROWN-IBP verifier keeps the better of both bounds, so it verifies everything IBP does");
        }
        // Not vacuous: IBP verifies a good part of the points, and never more than the grid finds robust.
        Assert.True(verifiedCount >= 20, $"only {verifiedCount} of 144 centres verified");
        Assert.True(gridRobust >= verifiedCount);
    }

    /// <summary>mlp 2 → 16 → ReLU → 16 → ReLU → 3, trained briefly on three angular sectors around (0.5, 0.5).</summary>
    private static NetworkGraph TrainedToyNetwork()
    {
        manual_seed(21);
        var model = ModelZoo.CreateClassifier("mlp", CPU, ModelZoo.DefaultSpec("mlp", new ZooOptions { InputShape = [2], Hidden = [16, 16], NumClasses = 3 }));
        var optimizer = optim.Adam(model.Module.parameters(), lr: 0.02);
        using (enable_grad())
            for (int step = 0; step < 400; step++)
            {
                using var scope = NewDisposeScope();
                var x = rand(256, 2);
                var angle = atan2(x[.., 1] - Keep(0.5), x[.., 0] - Keep(0.5)) + Keep(Math.PI);      // [0, 2π]
                var y = (angle / Keep(2 * Math.PI / 3)).floor().clamp(Keep(0), Keep(2)).to(int64);
                optimizer.zero_grad();
                nn.functional.cross_entropy(model.Logits(x), y).backward();
                optimizer.step();
            }
        return NetworkDescriptions.Of(model);
    }
}
