using CsCheck;
using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Graphs;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Certification.Tests;

/// <summary>
/// Soundness of interval bound propagation as a property: for random networks and random points, every sampled point
/// of the ε-ball (uniform draws and corners) and every adversarial APGD finds has logits and margins inside the
/// bounds; a verified point is never broken.
/// </summary>
public class IntervalSoundnessTests
{
    private const int Perturbations = 2000;

    private static readonly Gen<NetworkRecipe> Recipes =
        Gen.Select(Gen.Int[0, int.MaxValue], Gen.Bool, Gen.Int[1, 2], Gen.Int[0, 1], Gen.Int[0, RandomNetworks.ImageLayerKinds - 1].Array[1, 6])
            .Select(Gen.Bool, Gen.Int[4, 12], Gen.Int[2, 5], (a, normalize, hidden, classes) =>
            {
                var (seed, image, channels, sideCode, layers) = a;
                int side = image ? (sideCode == 0 ? 6 : 8) : 3 + seed % 10;
                return new NetworkRecipe(seed, image, channels, side, layers, normalize, hidden, classes);
            });

    private static readonly Gen<double> Epsilons = Gen.Double[0.001, 0.3];

    [Fact]
    public void Sampled_perturbations_stay_inside_the_bounds_of_random_networks()
    {
        Gen.Select(Recipes, Epsilons).Sample((recipe, eps) =>
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var graph = RandomNetworks.Build(recipe, []);
            var shape = RandomNetworks.InputShape(recipe);
            var x = rand([1, .. shape]);
            var logits = GraphExecutor.Forward(graph, x);
            var label = logits.argmax(1);

            // Uniform draws and corners of the box, clamped to [0, 1] as the threat model does.
            var u = rand([Perturbations, .. shape]) * Keep(2) - Keep(1);
            var corners = rand([Perturbations / 2, .. shape]).lt(Keep(0.5)).to(float32) * Keep(2) - Keep(1);
            var directions = cat([u, corners], 0);
            var points = (x + directions * Keep(eps)).clamp(Keep(0), Keep(1));
            var labels = label.expand(points.shape[0]);

            // float32 network, bounds in float64 with the rounding slack: sound for what the network computes.
            CheckInside(graph, x, label, eps, points, labels, GraphExecutor.Forward(graph, points), recipe, slack: true);

            // The float64 network against float64 bounds without slack: the exact-arithmetic statement.
            var graph64 = RandomNetworks.Cast(graph, float64, []);
            // Points drawn in float64 too: float32 points can sit an ulp outside the float64 ball.
            var points64 = (x.to(float64) + directions.to(float64) * Keep(eps)).clamp(Keep(0), Keep(1));
            CheckInside(graph64, x.to(float64), label, eps, points64, labels, GraphExecutor.Forward(graph64, points64), recipe, slack: false);
        }, iter: 120, threads: 1);
    }

    [Fact]
    public void Apgd_adversarials_stay_inside_the_bounds_and_never_break_a_verified_point()
    {
        int verifiedSeen = 0;
        Gen.Select(Recipes, Epsilons).Sample((recipe, eps) =>
        {
            using var scope = NewDisposeScope();
            var graph = RandomNetworks.Build(recipe, []);
            var shape = RandomNetworks.InputShape(recipe);
            var x = rand([6, .. shape]);
            using var model = GraphModule.Classifier(graph, shape, recipe.Classes);
            Tensor label;
            using (no_grad()) label = GraphExecutor.Forward(graph, x).argmax(1);
            var threat = new ThreatModel(Norm.Linf, eps, Bounds.Unit);
            foreach (var objective in new[] { Objectives.CrossEntropy, Objectives.Margin })
            {
                var attack = new AutoPgdAttack(threat) { Steps = 30, Objective = objective };
                using var result = attack.Run(model, x, new AttackTargets(label), AttackContext.Seeded(recipe.Seed));
                using var _ = no_grad();
                var verification = new IntervalVerifier(eps).Verify(graph, Bounds.Unit, x, label);
                var verified = verification.Verified.data<bool>().ToArray();
                var success = result.Success.data<bool>().ToArray();
                for (int i = 0; i < verified.Length; i++)
                    Assert.False(verified[i] && success[i], $"APGD-{objective.Name} broke verified point {i}: {recipe}, ε = {eps}");
                verifiedSeen += verified.Count(v => v);
                CheckInside(graph, x, label, eps, result.Adversarial, label, result.Logits, recipe, slack: true);
            }
        }, iter: 40, threads: 1);
        Assert.True(verifiedSeen > 0, "no point was verified in any run: the property above was vacuous");
    }

    /// <summary>Every row of <paramref name="forwardLogits"/> (a point of the ε-ball around x) respects the bounds.</summary>
    private static void CheckInside(NetworkGraph graph, Tensor x, Tensor label, double eps, Tensor points, Tensor labels, Tensor forwardLogits,
        NetworkRecipe recipe, bool slack)
    {
        var ibp = new IntervalBoundPropagation { Slack = slack ? FloatingPointSlack.Float32Network : FloatingPointSlack.None };
        var tolerance = slack ? 0.0 : 1e-9;
        var box = Interval.LinfBall(x.to(float64), eps, Bounds.Unit);
        var z = ibp.Logits(graph, box);
        var margin = ibp.MarginLowerBounds(graph, box, label);                         // [1, K]
        var logits = forwardLogits.to(float64);
        var y = labels.unsqueeze(1);
        var actualMargin = logits.gather(1, y) - logits;                                // [P, K]

        var below = (z.Lower - logits).max().ToDouble();
        var above = (logits - z.Upper).max().ToDouble();
        var marginGap = (margin - actualMargin).max().ToDouble();
        Assert.True(below <= tolerance, $"a logit fell below its lower bound by {below:G6}: {recipe}, ε = {eps}, slack {slack}");
        Assert.True(above <= tolerance, $"a logit rose above its upper bound by {above:G6}: {recipe}, ε = {eps}, slack {slack}");
        Assert.True(marginGap <= tolerance, $"a margin z_y − z_j fell below its lower bound by {marginGap:G6}: {recipe}, ε = {eps}, slack {slack}");

        // CROWN-IBP (linear relaxation backwards from the margins, IBP for the layers before) must hold as well.
        var crown = new CrownIbp { Slack = ibp.Slack }.MarginLowerBounds(graph, box, label);
        bool relaxable = CrownIbp.Unsupported(graph) is null;
        Assert.Equal(relaxable, crown is not null);
        if (crown is not null)
        {
            var crownGap = (crown - actualMargin).max().ToDouble();
            Assert.True(crownGap <= tolerance, $"a margin fell below its CROWN-IBP lower bound by {crownGap:G6}: {recipe}, ε = {eps}, slack {slack}");
        }

        // The points really are in the ball (the check above means nothing otherwise).
        var dist = (points.to(float64) - x.to(float64)).abs().flatten(1).amax([1L]).max().ToDouble();
        Assert.True(dist <= eps + 1e-7, $"test bug: a point at L∞ distance {dist} > ε = {eps}");
    }
}
