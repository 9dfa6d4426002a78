using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Data;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Defenses.Tests;

/// <summary>Multi-label training: BCE with logits, PGD-AT with a BCE inner attack, TRADES with the per-label KL,
/// validation in subset and Hamming accuracy, threshold tuning; one-vs-rest for single labels.</summary>
public class MultiLabelTrainingTests
{
    private static readonly Lazy<ImageDataset> Mosaics = new(() => Fixtures.Shared(DatasetCatalog.Load(FashionMnistMulti.Name, "test")));
    private static ImageDataset Train => Mosaics.Value.Take(1500);
    private static ImageDataset HeldOut => Mosaics.Value.Subset(Enumerable.Range(9000, 400).Select(i => (long)i).ToArray(), "held-out");

    private static TorchClassifier Mlp(long seed)
    {
        random.manual_seed(seed);
        var net = nn.Sequential(("flatten", nn.Flatten()), ("fc1", nn.Linear(56 * 56, 64)), ("relu", nn.ReLU()), ("fc2", nn.Linear(64, 10)));
        return new TorchClassifier(net, new ModelSpec
        {
            Arch = "test-mlp", InputShape = [1, 56, 56], NumClasses = 10, Labels = DatasetCatalog.FashionMnistClassNames, MultiLabel = true,
        });
    }

    private static TrainingOptions Options(int epochs = 4) => new()
    {
        Epochs = epochs, BatchSize = 64, LearningRate = 0.05, Schedule = LearningRateScheduleKind.Cosine, Seed = 3, ValidationSize = 0, Threads = 1,
    };

    private static ValidationMetrics Measure(IGradientClassifier model, double eps = 0.05) =>
        new RobustValidator(ThreatModel.Linf(eps), pgdSteps: 10, batchSize: 200, seed: 5).Validate(model, HeldOut, 0);

    [Fact]
    public void StandardAndPgdTrainingLearnLabelSetsAndPgdIsMoreRobust()
    {
        using var standard = Mlp(1);
        using var train = Train;
        new Trainer(standard, new StandardObjective(), Options(8)).Fit(train);
        var s = Measure(standard);
        // Far above the label prior (predicting every label absent gives Hamming 0.77, subset 0).
        Assert.True(s.HammingAccuracy > 0.82, $"standard Hamming {s.HammingAccuracy}");
        Assert.True(s.CleanAccuracy > 0.1, $"standard subset {s.CleanAccuracy}");
        // Robust ≤ clean in both measures.
        Assert.True(s.RobustHammingAccuracy <= s.HammingAccuracy && s.RobustAccuracy <= s.CleanAccuracy);

        using var robust = Mlp(1);
        new Trainer(robust, TrainingObjectives.Create("pgd", new DefenseSettings { Epsilon = 0.05, Steps = 5 }), Options(8)).Fit(train);
        var r = Measure(robust);
        Assert.True(r.RobustHammingAccuracy > s.RobustHammingAccuracy + 0.02, $"PGD-AT robust Hamming {r.RobustHammingAccuracy} vs standard {s.RobustHammingAccuracy}");
    }

    [Fact]
    public void FreeAdversarialTrainingUsesTheBceAndIbpRefusesMultiLabelModels()
    {
        using var train = Train.Take(640);
        using var free = Mlp(4);
        var before = Measure(free);
        var report = new Trainer(free, TrainingObjectives.Create("free", new DefenseSettings { Epsilon = 0.05, Replays = 2 }), Options(2)).Fit(train);
        Assert.All(report.History, h => Assert.True(double.IsFinite(h.TrainLoss)));
        // The BCE (summed over 10 labels) starts near 10·ln 2; after training it is well below, and the labels are learnt.
        Assert.True(report.History[^1].TrainLoss < 0.8 * 10 * Math.Log(2), $"free AT loss {report.History[^1].TrainLoss}");
        Assert.True(Measure(free).HammingAccuracy > before.HammingAccuracy, "free AT did not learn the label sets");

        using var ibp = Mlp(5);
        foreach (var name in new[] { "ibp", "crown-ibp" })
        {
            var e = Assert.ThrowsAny<InputException>(() => new Trainer(ibp, TrainingObjectives.Create(name, new DefenseSettings { Epsilon = 0.05 }), Options(1)).Fit(train));
            Assert.Contains("multi-label", e.Message);
        }
    }

    /// <summary>
    /// On a linear multi-label model the BCE gradient of one decision has a constant sign, so PGD-3 (2.5·ε of travel)
    /// from any start in the ball ends at the corner x − ε·sign(s_ℓ·W_ℓ): the weakest decision's margin drops by
    /// exactly ε·‖W_ℓ‖₁ (inputs at 0.5 ± 0.1, so the bounds never clip). Mixed attacks the first half as "all" does.
    /// </summary>
    [Fact]
    public void WeakestLabelFocusFlipsTheClosestDecisionByTheClosedFormAndMixedSplitsTheBatch()
    {
        using var scope = NewDisposeScope();
        random.manual_seed(11);
        var net = nn.Sequential(("flatten", nn.Flatten()), ("fc", nn.Linear(16, 5)));
        using var model = new TorchClassifier(net, new ModelSpec
        {
            Arch = "test-linear", InputShape = [1, 4, 4], NumClasses = 5, Labels = ["a", "b", "c", "d", "e"], MultiLabel = true,
        });
        var x = rand(new long[] { 12, 1, 4, 4 }) * Keep(0.2) + Keep(0.4);
        var y = rand(12, 5).gt(Keep(0.5)).to(ScalarType.Float32);
        const double eps = 0.05;
        TrainingStepResult Step(LabelFocus focus) =>
            new PgdAdversarialObjective(eps) { Steps = 3, LabelFocus = focus, CleanAccuracySample = 0 }
                .Compute(model, x, y, new TrainingStepContext(eps, new Generator(7), 0, 0));

        Tensor clean, weight;
        using (no_grad()) { clean = model.Logits(x); weight = net.named_parameters().First(p => p.name == "fc.weight").parameter.detach(); }
        var (cleanMargins, _) = Objectives.LabelMargins(clean, new AttackTargets(y));
        var weakest = cleanMargins.argmin(1);
        var drop = weight.abs().sum(1).index_select(0, weakest) * Keep(eps);
        Tensor MarginOfWeakest(Tensor logits) => Objectives.LabelMargins(logits, new AttackTargets(y)).Margins.gather(1, weakest.unsqueeze(1)).squeeze(1);

        var focused = Step(LabelFocus.Weakest).AdversarialLogits!;
        Assert.True(MarginOfWeakest(focused).allclose(MarginOfWeakest(clean) - drop, 1e-4, 1e-4),
            $"margins {MarginOfWeakest(focused).str()} expected {(MarginOfWeakest(clean) - drop).str()}");
        var all = Step(LabelFocus.All).AdversarialLogits!;
        // The whole-set attack spends the budget on every decision, so the weakest one drops at most as far.
        Assert.True(MarginOfWeakest(all).ge(MarginOfWeakest(focused) - Keep(1e-4)).all().item<bool>());
        Assert.False(all.allclose(focused, 1e-4, 1e-4));
        var mixed = Step(LabelFocus.Mixed).AdversarialLogits!;
        Assert.True(mixed.narrow(0, 0, 6).allclose(all.narrow(0, 0, 6), 1e-4, 1e-4));
        Assert.True(mixed.narrow(0, 6, 6).allclose(focused.narrow(0, 6, 6), 1e-4, 1e-4));
        // Recorded for provenance, and refused by name when unknown.
        Assert.Equal("weakest", new PgdAdversarialObjective(eps) { LabelFocus = LabelFocus.Weakest }.Parameters["label_focus"]);
        Assert.Equal("LabelFocus", Assert.Throws<ParameterException>(() => LabelFocusNames.Parse("strongest")).Parameter);
    }

    [Fact]
    public void TradesTrainsMultiLabelModelsWithTheBernoulliKl()
    {
        using var model = Mlp(2);
        using var train = Train.Take(600);
        var report = new Trainer(model, TrainingObjectives.Create("trades", new DefenseSettings { Epsilon = 0.05, Steps = 3, Beta = 3 }), Options(2)).Fit(train);
        Assert.All(report.History, h => Assert.True(double.IsFinite(h.TrainLoss)));
        Assert.True(report.History[^1].TrainLoss < report.History[0].TrainLoss);
    }

    [Fact]
    public void BernoulliKlIsZeroWhenEqualAndIsBceMinusEntropy()
    {
        using var scope = NewDisposeScope();
        var p = randn(8, 5);
        Assert.True(TradesObjective.BernoulliKl(p, p).abs().max().item<float>() < 1e-6);
        var q = randn(8, 5);
        var probs = p.sigmoid();
        var bce = nn.functional.binary_cross_entropy_with_logits(q, probs, reduction: nn.Reduction.None).sum(1);
        var entropy = -(probs.xlogy(probs) + (Keep(1) - probs).xlogy(Keep(1) - probs)).sum(1);
        Assert.True(TradesObjective.BernoulliKl(p, q).allclose(bce - entropy, 1e-5, 1e-5));
        Assert.True(BernoulliKlObjective.Instance.Loss(q, new AttackTargets(probs)).allclose(bce - entropy, 1e-5, 1e-5));
        Assert.True(TradesObjective.BernoulliKl(p, q).ge(Keep(-1e-6)).all().item<bool>());
    }

    [Fact]
    public void ThresholdTuningNeverLowersTheMetricAndFindsAShiftedOptimum()
    {
        using var model = Mlp(4);
        using var train = Train;
        new Trainer(model, new StandardObjective(), Options(3)).Fit(train);
        // Shift every logit down by 2: at τ = 0.5 too few labels are predicted; σ(z − 2) > τ ⇔ σ(z) > τ' with τ' lower.
        using (no_grad())
        {
            var fc2 = model.Network.named_parameters().First(p => p.name == "fc2.bias").parameter;
            fc2.sub_(Keep(2.0));
        }
        using var held = HeldOut;
        var tuned = ThresholdTuning.Tune(model, held, ThresholdMetric.SubsetAccuracy);
        Assert.True(tuned.Score >= tuned.ScoreAtHalf);
        Assert.True(tuned.Threshold < 0.5, $"threshold {tuned.Threshold}");
        Assert.True(tuned.Score > tuned.ScoreAtHalf, $"{tuned.Describe()}");
        // The tuned threshold reproduces its score through the decision logits.
        var shifted = new TorchClassifier(model.Network, model.Spec with { DecisionThreshold = tuned.Threshold },
            pipeline: nn.Sequential(("m", model.Module), ("shift", new Shift(Math.Log(tuned.Threshold / (1 - tuned.Threshold))))));
        Assert.Equal(tuned.Score, MultiLabelAccuracy.Counts(shifted, held).SubsetAccuracy, 9);
        // Tuning a model that already carries the threshold starts from its raw outputs: same answer.
        Assert.Equal(tuned.Threshold, ThresholdTuning.Tune(shifted, held).Threshold);
    }

    /// <summary>
    /// The worst decision logits behind robust threshold tuning, on a linear model: PGD-10 on one decision ends at the
    /// corner, so every logit moves by exactly ε·‖W_ℓ‖₁ against its true side (inputs at 0.5 ± 0.1, no clipping).
    /// </summary>
    [Fact]
    public void WorstCaseLogitsOfALinearModelMoveByTheClosedForm()
    {
        using var scope = NewDisposeScope();
        random.manual_seed(12);
        var net = nn.Sequential(("flatten", nn.Flatten()), ("fc", nn.Linear(16, 5)));
        using var model = new TorchClassifier(net, new ModelSpec
        {
            Arch = "test-linear", InputShape = [1, 4, 4], NumClasses = 5, Labels = ["a", "b", "c", "d", "e"], MultiLabel = true,
        });
        var x = rand(new long[] { 9, 1, 4, 4 }) * Keep(0.2) + Keep(0.4);
        var y = rand(9, 5).gt(Keep(0.5)).to(ScalarType.Float32);
        const double eps = 0.05;
        var worst = ThresholdTuning.WorstCaseLogits(model, x, y, new ThresholdAttack(eps) { Seed = 1 }, new Generator(3));
        Tensor clean, weight;
        using (no_grad()) { clean = model.Logits(x); weight = net.named_parameters().First(p => p.name == "fc.weight").parameter.detach(); }
        var expected = clean - MultiLabelTargets.Signs(y) * weight.abs().sum(1).unsqueeze(0) * Keep(eps);
        Assert.True(worst.allclose(expected, 1e-4, 1e-4), $"worst {worst.str()} expected {expected.str()}");
    }

    [Fact]
    public void RobustThresholdTuningScoresUnderTheAttackAndNeedsOne()
    {
        using var model = Mlp(6);
        using var train = Train.Take(640);
        new Trainer(model, TrainingObjectives.Create("pgd", new DefenseSettings { Epsilon = 0.05, Steps = 3 }), Options(2)).Fit(train);
        using var held = HeldOut;
        var attack = new ThresholdAttack(0.05) { Seed = 2 };
        var robust = ThresholdTuning.Tune(model, held, ThresholdMetric.RobustHammingAccuracy, 200, attack);
        Assert.True(robust.Score >= robust.ScoreAtHalf);
        Assert.Contains("robust Hamming accuracy (PGD-10 per label, linf ε = 0.05)", robust.Describe());
        // At the tuned τ, the robust score cannot exceed the clean Hamming accuracy, which needs no attack.
        var shifted = new TorchClassifier(model.Network, model.Spec with { DecisionThreshold = robust.Threshold },
            pipeline: nn.Sequential(("m", model.Module), ("shift", new Shift(Math.Log(robust.Threshold / (1 - robust.Threshold))))));
        var cleanHamming = MultiLabelAccuracy.Counts(shifted, held).HammingAccuracy;
        Assert.True(robust.Score <= cleanHamming, $"robust {robust.Score} > clean {cleanHamming} at τ = {robust.Threshold}");
        // So at τ = 0.5.
        var validated = new RobustValidator(ThreatModel.Linf(0.05), pgdSteps: 10, batchSize: 200, seed: 5).Validate(model, held, 0);
        Assert.True(robust.ScoreAtHalf <= validated.HammingAccuracy, $"robust {robust.ScoreAtHalf} > clean {validated.HammingAccuracy} at τ = 0.5");
        // Tuning a model that carries the threshold starts from its raw outputs.
        Assert.Equal(robust.Threshold, ThresholdTuning.Tune(shifted, held, ThresholdMetric.RobustHammingAccuracy, 200, attack).Threshold);
        Assert.Equal("Attack", Assert.Throws<ParameterException>(() => ThresholdTuning.Tune(model, held, ThresholdMetric.RobustHammingAccuracy)).Parameter);
        Assert.Equal(ThresholdMetric.RobustHammingAccuracy, ThresholdTuning.Parse("robust-hamming"));
    }

    private sealed class Shift(double offset) : nn.Module<Tensor, Tensor>("shift")
    {
        public override Tensor forward(Tensor x) => x - Keep(offset);
    }

    [Fact]
    public void LossesFollowTheOutputs()
    {
        using var scope = NewDisposeScope();
        var logits = randn(6, 4);
        var labels = tensor(new long[] { 0, 1, 2, 3, 0, 1 });
        var spec = new ModelSpec { Arch = "x", InputShape = [4], NumClasses = 4 };
        Assert.Equal("cross-entropy", ClassificationLosses.For(spec).Name);
        var ovr = ClassificationLosses.For(spec with { Extra = new Dictionary<string, string> { ["output"] = "sigmoid" } });
        Assert.Equal("one-vs-rest-bce", ovr.Name);
        var oneHot = nn.functional.one_hot(labels, 4).to(ScalarType.Float32);
        var expected = nn.functional.binary_cross_entropy_with_logits(logits, oneHot, reduction: nn.Reduction.None).sum(1).mean();
        Assert.True(ovr.Mean(logits, labels).allclose(expected));
        var multi = ClassificationLosses.For(spec with { MultiLabel = true });
        Assert.Equal("bce", multi.Name);
        Assert.True(multi.Mean(logits, oneHot).allclose(expected));
        Assert.Throws<InputException>(() => multi.Mean(logits, labels));
        Assert.Throws<InputException>(() => ClassificationLosses.CrossEntropy.Mean(logits, oneHot));
    }
}
