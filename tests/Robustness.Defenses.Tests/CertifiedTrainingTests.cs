using Robustness.Certification;
using Robustness.Core;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Defenses.Tests;

public class CertifiedTrainingTests
{
    private const double Eps = 0.05;

    private static TorchClassifier Mlp(long seed)
    {
        random.manual_seed(seed);
        return ModelZoo.CreateClassifier("mlp", CPU, ModelZoo.DefaultSpec("mlp", new ZooOptions { Hidden = [64] }));
    }

    private static TrainingOptions Options => TrainedModels.MlpOptions with { Epochs = 4 };

    private static double VerifiedAccuracy(IClassifier model, ImageDataset data, double eps)
    {
        using var scope = NewDisposeScope();
        using var v = new IntervalVerifier(eps).Verify(model, data.Images, data.Labels);
        return v.Verified.to(ScalarType.Float64).mean().ToDouble();
    }

    [Fact]
    public void Ibp_training_verifies_far_more_than_standard_training()
    {
        using var standard = Mlp(1);
        new Trainer(standard, new StandardObjective(), Options).Fit(Fixtures.Train.Value, Fixtures.Validation.Value);
        using var ibp = Mlp(1);
        var report = new Trainer(ibp, new IbpObjective(Eps), Options with { EpsWarmupEpochs = 0.5, EpsRampEpochs = 2 })
            .Fit(Fixtures.Train.Value, Fixtures.Validation.Value);

        var heldOut = Fixtures.HeldOut.Value;
        double verifiedStandard = VerifiedAccuracy(standard, heldOut, Eps), verifiedIbp = VerifiedAccuracy(ibp, heldOut, Eps);
        Assert.True(verifiedIbp >= 0.4, $"IBP-trained MLP verifies only {verifiedIbp:P1} at ε = {Eps}");
        Assert.True(verifiedIbp > verifiedStandard + 0.2, $"IBP {verifiedIbp:P1} vs standard {verifiedStandard:P1}");
        // Validation reports verified accuracy (what IBP optimises), and verified ≤ clean.
        var last = report.History[^1];
        Assert.NotNull(last.ValidationRobustAccuracy);
        Assert.True(last.ValidationRobustAccuracy <= last.ValidationCleanAccuracy);
        Assert.Equal(Eps, last.Epsilon, 12);
    }

    [Fact]
    public void Warm_up_holds_epsilon_at_zero_then_ramps_with_kappa()
    {
        var schedule = EpsilonSchedule.Create(0.1, rampEpochs: 2, iterationsPerEpoch: 10, warmupEpochs: 1);
        Assert.Equal(0, schedule.At(0));
        Assert.Equal(0, schedule.At(9));
        Assert.Equal(0.005, schedule.At(10), 12);
        Assert.Equal(0.05, schedule.At(19), 12);
        Assert.Equal(0.1, schedule.At(29), 12);
        Assert.Equal(0.1, schedule.At(1000), 12);

        var objective = new IbpObjective(0.1);
        Assert.Equal(1.0, objective.Kappa(0), 12);
        Assert.Equal(0.75, objective.Kappa(0.05), 12);
        Assert.Equal(0.5, objective.Kappa(0.1), 12);
        Assert.Equal("EpsWarmupEpochs", Assert.Throws<ParameterException>(() => new TrainingOptions { Epochs = 3, EpsRampEpochs = 2, EpsWarmupEpochs = 1.5 }.Validate()).Parameter);
    }

    [Fact]
    public void Worst_case_loss_bounds_the_clean_loss_from_above()
    {
        // For x in the ball, ẑ_j − ẑ_y ≥ z_j(x) − z_y(x), so CE(ẑ) ≥ CE(z(x)); with κ = 0 the loss is CE(ẑ) alone.
        using var model = Mlp(2);
        var train = Fixtures.Train.Value; // shared: created outside the scope below
        using var scope = NewDisposeScope();
        var batch = train.Take(64);
        var objective = new IbpObjective(0.1) { KappaStart = 0, KappaEnd = 0 };
        var step = objective.Compute(model, batch.Images, batch.Labels, new TrainingStepContext(0.1, new Generator(1), 1, 0));
        var clean = nn.functional.cross_entropy(model.Logits(batch.Images), batch.Labels);
        Assert.True(step.Loss.ToDouble() >= clean.ToDouble(), $"worst-case CE {step.Loss.ToDouble()} < clean CE {clean.ToDouble()}");
        // The "adversarial" accuracy shown during training is the verified fraction of the batch.
        var verified = step.AdversarialLogits!.argmax(1).eq(batch.Labels);
        using var v = new IntervalVerifier(0.1) { Propagation = new IntervalBoundPropagation(), Arithmetic = ScalarType.Float32 }.Verify(model, batch.Images, batch.Labels);
        Assert.True(verified.logical_xor(v.Verified).sum().ToInt64() <= 1);
    }

    [Fact]
    public void Crown_ibp_training_verifies_more_than_standard_training_and_mixes_its_bounds()
    {
        using var ibp = Mlp(3);
        new Trainer(ibp, new CrownIbpObjective(Eps), Options with { EpsWarmupEpochs = 0.5, EpsRampEpochs = 2 }).Fit(Fixtures.Train.Value, Fixtures.Validation.Value);
        using var standard = Mlp(3);
        new Trainer(standard, new StandardObjective(), Options).Fit(Fixtures.Train.Value, Fixtures.Validation.Value);
        var heldOut = Fixtures.HeldOut.Value;
        double trained = VerifiedAccuracy(ibp, heldOut, Eps), baseline = VerifiedAccuracy(standard, heldOut, Eps);
        Assert.True(trained >= 0.4 && trained > baseline + 0.2, $"CROWN-IBP-trained {trained:P1} vs standard {baseline:P1}");
        var o = new CrownIbpObjective(0.1);
        Assert.Equal(1.0, o.Beta(0), 12);
        Assert.Equal(0.5, o.Beta(0.05), 12);
        Assert.Equal(0.0, o.Beta(0.1), 12);
    }

    [Fact]
    public void Crown_ibp_refuses_max_pooling_models_by_name()
    {
        random.manual_seed(1);
        using var model = ModelZoo.CreateClassifier("tiny-cnn", CPU);
        var train = Fixtures.Train.Value;
        using var scope = NewDisposeScope();
        var batch = train.Take(4);
        var e = Assert.Throws<InputException>(() => new CrownIbpObjective(0.1).Compute(model, batch.Images, batch.Labels, new TrainingStepContext(0.1, new Generator(1), 1, 0)));
        Assert.Contains("maxpool2d", e.Message);
        Assert.StartsWith("crown-ibp: model tiny-cnn", e.Message);
    }

    [Fact]
    public void A_model_without_a_description_is_refused()
    {
        using var model = Fixtures.TinyMlp(1);
        var train = Fixtures.Train.Value;
        using var scope = NewDisposeScope();
        var batch = train.Take(8);
        var e = Assert.Throws<InputException>(() => new IbpObjective(0.1).Compute(model, batch.Images, batch.Labels, new TrainingStepContext(0.1, new Generator(1), 1, 0)));
        Assert.StartsWith("ibp: model test-cnn does not describe its layers", e.Message);
    }
}
