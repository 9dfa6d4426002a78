using Robustness.Core;
using Robustness.Data.Toy;
using Robustness.Playground;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Playground.Tests;

public class ToyDatasetTests
{
    [Theory]
    [InlineData("circle"), InlineData("xor"), InlineData("gauss"), InlineData("spiral"), InlineData("plane"), InlineData("multigauss")]
    public void Every_set_has_its_count_lies_in_the_view_and_is_reproducible(string name)
    {
        foreach (var noise in new[] { 0.0, 0.25, 0.5 })
        {
            var a = ToyDatasets.Generate(name, ToyDatasets.DefaultCount(name), noise, seed: 3);
            var b = ToyDatasets.Generate(name, ToyDatasets.DefaultCount(name), noise, seed: 3);
            Assert.Equal(ToyDatasets.ProblemOf(name) == ToyProblem.Regression ? 1200 : 500, a.Length);
            Assert.Equal(a, b);
            Assert.All(a, p => { Assert.InRange(p.X1, -6, 6); Assert.InRange(p.X2, -6, 6); });
            if (ToyDatasets.ProblemOf(name) == ToyProblem.Classification)
            {
                Assert.All(a, p => Assert.True(p.Label is 1 or -1));
                Assert.InRange(a.Count(p => p.Label > 0), 150, 350);
            }
            else Assert.All(a, p => Assert.InRange(p.Label, -1.7, 1.7));
        }
        Assert.NotEqual(ToyDatasets.Generate(name, 100, 0.1, 1), ToyDatasets.Generate(name, 100, 0.1, 2));
    }

    [Fact]
    public void Without_noise_the_labels_follow_the_TF_Playground_rules()
    {
        Assert.All(ToyDatasets.Generate("circle", 500, 0, 1), p => Assert.Equal(Math.Sqrt(p.X1 * p.X1 + p.X2 * p.X2) < 2.5 ? 1 : -1, p.Label));
        Assert.All(ToyDatasets.Generate("xor", 500, 0, 1), p => { Assert.Equal(p.X1 * p.X2 >= 0 ? 1 : -1, p.Label); Assert.True(Math.Abs(p.X1) >= 0.3 && Math.Abs(p.X2) >= 0.3); });
        Assert.All(ToyDatasets.Generate("plane", 500, 0, 1), p => Assert.Equal((p.X1 + p.X2) / 10, p.Label, 12));
        var spiral = ToyDatasets.Generate("spiral", 500, 0, 1);
        Assert.All(spiral, p => Assert.InRange(Math.Sqrt(p.X1 * p.X1 + p.X2 * p.X2), 0, 5 + 1e-9));
        // Noise flips circle labels near the boundary only through the displaced point: some labels differ at 0.5.
        var noisy = ToyDatasets.Generate("circle", 500, 0.5, 1);
        Assert.Contains(noisy, p => (Math.Sqrt(p.X1 * p.X1 + p.X2 * p.X2) < 2.5 ? 1 : -1) != p.Label);
    }

    [Fact]
    public void Split_keeps_the_ratio_and_bad_parameters_are_named()
    {
        var points = ToyDatasets.Generate("gauss", 500, 0, 1);
        var (train, test) = ToyDatasets.Split(points, 30, 1);
        Assert.Equal(150, train.Length);
        Assert.Equal(350, test.Length);
        Assert.Equal("Noise", Assert.Throws<ParameterException>(() => ToyDatasets.Generate("gauss", 10, 0.6, 1)).Parameter);
        Assert.Equal("Dataset", Assert.Throws<ParameterException>(() => ToyDatasets.Generate("moons", 10, 0, 1)).Parameter);
    }
}

public class StateTests
{
    [Fact]
    public void The_URL_form_round_trips_every_setting()
    {
        var s = new PlaygroundState().With(new Dictionary<string, string>
        {
            ["dataset"] = "spiral", ["features"] = "sinx2,x1", ["networkShape"] = "8,8,3", ["learningRate"] = "0.003", ["objective"] = "trades",
            ["epsilon"] = "0.45", ["norm"] = "l2", ["beta"] = "3.5", ["optimizer"] = "momentum", ["momentum"] = "0.5", ["showBalls"] = "true",
        });
        var back = new PlaygroundState().With(PlaygroundState.ParseQuery("#" + s.ToQuery()));
        Assert.Equal(s.ToDictionary(), back.ToDictionary());
        Assert.Equal(["x1", "sinx2"], back.Features);  // canonical order
        Assert.Equal(PlaygroundState.Keys.Count, s.ToDictionary().Count);
    }

    [Fact]
    public void Combinations_are_checked()
    {
        var s = new PlaygroundState();
        Assert.Equal("epsilon", Assert.Throws<ParameterException>(() => s.With(new Dictionary<string, string> { ["objective"] = "pgd", ["epsilon"] = "0" })).Parameter);
        Assert.Equal("objective", Assert.Throws<ParameterException>(() => s.With(new Dictionary<string, string> { ["problem"] = "regression", ["objective"] = "trades" })).Parameter);
        Assert.Equal("networkShape", Assert.Throws<ParameterException>(() => s.With(new Dictionary<string, string> { ["networkShape"] = "0" })).Parameter);
        Assert.Empty(s.With(new Dictionary<string, string> { ["networkShape"] = "" }).NetworkShape);
    }
}

/// <summary>Training, attacks and certificates of the engine on the toolkit's real code.</summary>
[Collection("tensor counts")]
public class EngineTests
{
    private static PlaygroundState State(string query) => new PlaygroundState().With(PlaygroundState.ParseQuery(query));

    [Fact]
    public void Interval_bounds_contain_the_output_at_sampled_points_of_every_ball()
    {
        foreach (var activation in new[] { "relu", "tanh", "sigmoid", "linear" })
            foreach (var norm in new[] { "linf", "l2" })
            {
                using var e = new PlaygroundEngine(State($"dataset=xor&features=x1,x2,x1sq,x2sq,x1x2,sinx1,sinx2&networkShape=8,5,3&activation={activation}&norm={norm}&epsilon=0.8"));
                for (int i = 0; i < 5; i++) e.RunEpoch();
                using var scope = NewDisposeScope();
                var threat = e.State.Threat;
                var x = tensor(e.TestPoints.SelectMany(p => new[] { (float)p.X1, (float)p.X2 }).ToArray(), [e.TestPoints.Length, 2]);
                var (lo, hi) = IntervalBoundCertifier.OutputBounds(e.Model.Network, x, threat);
                var gen = new Generator(5);
                var geometry = Core.Geometry.Geometries.For(threat.Norm);
                using var _ = no_grad();
                for (int k = 0; k < 30; k++)
                {
                    // random points of the ball (and its boundary), clamped to the box as attacks are
                    var delta = geometry.Project(geometry.RandomStart(x, threat.Epsilon, gen) * Keep(k % 3 == 0 ? 100 : 1), threat.Epsilon);
                    var s = e.Model.Network.call((x + delta).clamp(Keep(-6), Keep(6))).to(ScalarType.Float64);
                    Assert.True(s.ge(lo - Keep(1e-4)).all().ToBoolean() && s.le(hi + Keep(1e-4)).all().ToBoolean(), $"{activation}/{norm}: a sampled output left its interval");
                }
            }
    }

    [Fact]
    public void For_a_linear_model_the_certificate_is_exact_and_pgd_breaks_every_uncertified_point()
    {
        // No hidden layer, features x1, x2: s = w·x + b. Under L∞ the worst case is s ∓ ε‖w‖₁ (IBP is exact), and PGD
        // reaches it; under L2 the IBP box is looser than the ball, so only certified ⇒ robust holds.
        using var e = new PlaygroundEngine(State("dataset=gauss&noise=40&features=x1,x2&networkShape=&epsilon=0.6&attackSteps=20&attackStepSize=0.2"));
        for (int i = 0; i < 20; i++) e.RunEpoch();
        e.Evaluate();
        e.Attack();
        var a = e.Snapshots()[0].Attack!;
        var w = e.Snapshots()[0].Weights[0][0];
        double b = e.Snapshots()[0].Biases[0][0], eps = 0.6, l1 = Math.Abs(w[0]) + Math.Abs(w[1]);
        int compared = 0;
        for (int i = 0; i < e.TestPoints.Length; i++)
        {
            var p = e.TestPoints[i];
            if (Math.Abs(p.X1) > 6 - eps || Math.Abs(p.X2) > 6 - eps) continue;  // the box clips the ball there
            double s = w[0] * p.X1 + w[1] * p.X2 + b, margin = (p.Label > 0 ? s : -s) - eps * l1;
            if (Math.Abs(margin) < 1e-3) continue;  // float ties
            Assert.Equal(margin > 0, a.Certified![i]);
            Assert.Equal(margin > 0, !a.Broken[i]);
            compared++;
        }
        Assert.True(compared > 200, $"only {compared} points compared");
        Assert.InRange(a.RobustAccuracy!.Value, 0.05, 0.95);
    }

    [Theory]
    [InlineData("linf"), InlineData("l2")]
    public void Adversarial_points_stay_in_their_ball_and_robust_never_exceeds_clean(string norm)
    {
        using var e = new PlaygroundEngine(State($"dataset=circle&features=x1,x2,x1sq,x2sq&networkShape=6,4&objective=pgd&norm={norm}&epsilon=0.5&learningRate=0.1"));
        for (int i = 0; i < 15; i++) e.RunEpoch();
        e.Evaluate();
        e.Attack();
        foreach (var n in e.Snapshots())
        {
            var a = n.Attack!;
            for (int i = 0; i < e.TestPoints.Length; i++)
            {
                double dx = a.Adversarial[2 * i] - e.TestPoints[i].X1, dy = a.Adversarial[2 * i + 1] - e.TestPoints[i].X2;
                double d = norm == "linf" ? Math.Max(Math.Abs(dx), Math.Abs(dy)) : Math.Sqrt(dx * dx + dy * dy);
                Assert.True(d <= 0.5 * (1 + 1e-5) + 1e-6, $"‖δ‖ = {d} > ε");
            }
            Assert.True(a.RobustAccuracy <= n.TestAccuracy + 1e-9);
            Assert.True(a.CertifiedAccuracy <= a.RobustAccuracy + 1e-9);
            Assert.True(n.TestAccuracy > 0.8, $"{n.Role}: clean accuracy {n.TestAccuracy} on the circle");
        }
    }

    [Fact]
    public void Zero_initialisation_never_breaks_the_symmetry_and_random_does()
    {
        using var zeros = new PlaygroundEngine(State("dataset=xor&features=x1,x2,x1x2&networkShape=4,3&activation=tanh&init=zeros&learningRate=0.3"));
        using var random = new PlaygroundEngine(State("dataset=xor&features=x1,x2,x1x2&networkShape=4,3&activation=tanh&init=random&learningRate=0.3"));
        for (int i = 0; i < 10; i++) { zeros.RunEpoch(); random.RunEpoch(); }
        bool Symmetric(PlaygroundEngine e) => e.Snapshots()[0].Weights.Take(2).All(layer => layer.All(row => row.SequenceEqual(layer[0])));
        Assert.True(Symmetric(zeros), "with zero weights every neuron of a layer gets the same update");
        Assert.False(Symmetric(random));
    }

    [Fact]
    public void Deep_sigmoid_networks_have_vanishing_gradients_at_the_input_side_relu_much_less()
    {
        double Ratio(string activation)
        {
            using var e = new PlaygroundEngine(State($"dataset=circle&features=x1,x2&networkShape=8,8,8,8,8,8&activation={activation}&learningRate=0.03"));
            e.RunEpoch();
            var g = e.Snapshots()[0].GradientNorms;
            Assert.Equal(7, g.Length);
            return g[0] / g[^1];
        }
        double sigmoid = Ratio("sigmoid"), relu = Ratio("relu");
        Assert.True(sigmoid < 1e-2, $"sigmoid first/last gradient ratio {sigmoid}");
        Assert.True(relu > 30 * sigmoid, $"relu ratio {relu} vs sigmoid {sigmoid}");
    }

    [Fact]
    public void The_twin_starts_from_the_same_weights_and_sees_the_same_batches()
    {
        using var e = new PlaygroundEngine(State("dataset=spiral&features=x1,x2,sinx1&objective=gaussian&sigma=0&compare=true"));
        var s0 = e.Snapshots();
        Assert.Equal(2, s0.Count);
        Assert.Equal(s0[0].Weights.SelectMany(l => l.SelectMany(r => r)), s0[1].Weights.SelectMany(l => l.SelectMany(r => r)));
        // Gaussian noise with σ = 0 is standard training: both networks must stay identical batch for batch.
        for (int i = 0; i < 3; i++) e.RunEpoch();
        var s1 = e.Snapshots();
        Assert.Equal(s1[0].Weights.SelectMany(l => l.SelectMany(r => r)), s1[1].Weights.SelectMany(l => l.SelectMany(r => r)));
        Assert.NotEqual(s0[0].Weights[0][0], s1[0].Weights[0][0]);
    }

    [Fact]
    public void Regression_trains_and_pgd_raises_the_squared_error()
    {
        using var e = new PlaygroundEngine(State("problem=regression&regDataset=multigauss&features=x1,x2&networkShape=8,8&activation=tanh&learningRate=0.03&epsilon=0.5"));
        e.Evaluate();
        double before = e.Snapshots()[0].TestLoss;
        for (int i = 0; i < 10; i++) e.RunEpoch();
        e.Evaluate();
        e.Attack();
        var n = e.Snapshots()[0];
        Assert.True(n.TestLoss < before * 0.8, $"test loss {n.TestLoss} vs {before} before training");
        Assert.True(n.Attack!.RobustLoss >= n.TestLoss, "the attack maximises the error: it cannot lower it");
        Assert.Null(n.Attack.Certified);
    }

    [Fact]
    public void Training_frames_and_attacks_keep_the_live_tensor_count_flat_and_dispose_frees_everything()
    {
        // Earlier tests' unreferenced handles are finalised first, so the counts below are this engine's alone.
        for (int i = 0; i < 3; i++) { GC.Collect(); GC.WaitForPendingFinalizers(); }
        var baseline = LiveTensors.Count;
        var e = new PlaygroundEngine(State("dataset=spiral&features=x1,x2,x1x2&networkShape=8,8&objective=trades&epsilon=0.3&compare=true"));
        void Round() { e.RunEpoch(); e.Evaluate(); e.Attack(); e.Snapshots(); e.OutputGrids(); e.Thumbnails(); }
        Round();
        var warm = LiveTensors.Count;
        for (int i = 0; i < 5; i++) Round();
        Assert.Equal(warm, LiveTensors.Count);
        e.Apply(e.State.With(new Dictionary<string, string> { ["networkShape"] = "3" }));
        Round();
        e.Dispose();
        for (int i = 0; i < 3; i++) { GC.Collect(); GC.WaitForPendingFinalizers(); }
        // TorchSharp counts the tensor handed to each Parameter constructor and never takes it off (its handle moves
        // into the parameter; see Robustness.Cli.Tests.MemoryTests), so each network built leaves one count per
        // weight and bias although nothing stays alive: 2 networks of 3 layers, then 2 of 2 layers after the rebuild.
        Assert.Equal(baseline + 2 * 6 + 2 * 4, LiveTensors.Count);
    }

    [Fact]
    public void The_renderer_draws_the_view()
    {
        using var e = new PlaygroundEngine(State("dataset=spiral&features=x1,x2,sinx1,sinx2&objective=pgd&showTestData=true&showBalls=true&showAttack=true&showCertified=true"), gridSize: 40);
        for (int i = 0; i < 3; i++) e.RunEpoch();
        e.Evaluate();
        e.Attack();
        var png = PlaygroundRenderer.Render(e, 1000);
        using var image = SixLabors.ImageSharp.Image.Load<SixLabors.ImageSharp.PixelFormats.Rgba32>(png);
        Assert.Equal(1000, image.Width);
        Assert.Equal(514, image.Height);
        var colours = new HashSet<uint>();
        for (int y = 0; y < image.Height; y += 3) for (int x = 0; x < image.Width; x += 3) colours.Add(image[x, y].PackedValue);
        Assert.True(colours.Count > 200, $"only {colours.Count} colours: the picture looks empty");
    }
}

[CollectionDefinition("tensor counts", DisableParallelization = true)]
public sealed class TensorCountCollection;

[Collection("tensor counts")]
public class SmoothingTests
{
    [Fact]
    public void Gaussian_noise_training_shows_randomized_smoothing_radii_within_what_its_samples_can_certify()
    {
        using var e = new PlaygroundEngine(new PlaygroundState().With(PlaygroundState.ParseQuery(
            "dataset=circle&features=x1,x2,x1sq,x2sq&networkShape=6&objective=gaussian&sigma=0.4&norm=l2&epsilon=0.3&showCertified=true&learningRate=0.1")), gridSize: 16);
        for (int i = 0; i < 10; i++) e.RunEpoch();
        e.Evaluate();
        e.Attack();
        var main = e.Snapshots()[0].Attack!;
        Assert.NotNull(main.SmoothedRadius);
        double max = PlaygroundEngineSmoothing.MaxRadius(0.4);
        Assert.All(main.SmoothedRadius!, r => Assert.InRange(r, 0, max + 1e-4));
        Assert.True(main.SmoothedRadius!.Count(r => r >= 0.3) / (double)e.TestPoints.Length == main.SmoothedCertifiedAccuracy);
        Assert.InRange(main.SmoothedCertifiedAccuracy!.Value, 0.5, 1);
        Assert.Null(e.Snapshots()[1].Attack!.SmoothedRadius);  // the standard twin is not a smoothing base classifier
    }
}

internal static class PlaygroundEngineSmoothing
{
    public static double MaxRadius(double sigma) => (new Robustness.Certification.RandomizedSmoothing(sigma) { N = 1000, Alpha = 0.001 }).MaxCertifiableRadius(1000);
}
