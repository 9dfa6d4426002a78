using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks.Tests;

/// <summary>Determinism, memory, modes, capabilities, the registry and the ensemble's bookkeeping.</summary>
public class EngineTests
{
    private static readonly ThreatModel Linf = ThreatModel.Linf(0.1);

    public static IEnumerable<object[]> RandomisedAttacks() =>
        [["pgd"], ["apgd-ce"], ["square"], ["pgd-targeted"]];

    [Theory]
    [MemberData(nameof(RandomisedAttacks))]
    public void SameSeedGivesIdenticalAdversarials(string name)
    {
        using var scope = NewDisposeScope();
        var model = Fixtures.RandomMlp(3);
        var (x, y) = Fixtures.RandomData(model, 32, 4);
        var attack = name == "pgd-targeted"
            ? AttackRegistry.Create("pgd", Linf, new AttackOptions { Steps = 5, Targeted = true, TargetMode = "random" })
            : AttackRegistry.Create(name, Linf, new AttackOptions { Steps = 5, Queries = 40 });
        using var a = attack.Run(model, x, new AttackTargets(y), AttackContext.Seeded(17));
        using var b = attack.Run(model, x, new AttackTargets(y), AttackContext.Seeded(17));
        using var c = attack.Run(model, x, new AttackTargets(y), AttackContext.Seeded(18));
        Assert.True(a.Adversarial.eq(b.Adversarial).all().ToBoolean(), "same seed, different adversarials");
        Assert.False(a.Adversarial.eq(c.Adversarial).all().ToBoolean(), "the seed has no effect");
    }

    [Fact]
    public void ModelRunsInEvalModeAndItsModeIsRestored()
    {
        using var scope = NewDisposeScope();
        var probe = new ModeProbe();
        var net = nn.Sequential(("flatten", nn.Flatten()), ("fc", nn.Linear(64, 10)), ("probe", probe));
        var model = new TorchClassifier(net, Fixtures.Spec([1, 8, 8], 10));
        var (x, y) = Fixtures.RandomData(model, 8, 1);
        net.train();
        probe.Seen.Clear();
        AttackRegistry.Create("pgd", Linf, new AttackOptions { Steps = 3 }).Run(model, x, new AttackTargets(y)).Dispose();
        Assert.True(net.training, "train mode not restored");
        Assert.NotEmpty(probe.Seen);
        Assert.All(probe.Seen, training => Assert.False(training));

        net.eval();
        new SquareAttack(Linf) { Queries = 5 }.Run(model, x, new AttackTargets(y)).Dispose();
        Assert.False(net.training);

        // KeepModelMode: adversarial training may ask for the attack in train mode.
        net.train();
        probe.Seen.Clear();
        Presets.Fgsm(Linf).Run(model, x, new AttackTargets(y), new AttackContext(KeepModelMode: true)).Dispose();
        Assert.True(net.training);
        Assert.Contains(true, probe.Seen);
    }

    [Fact]
    public void CraftGivesRunsPointsWithoutTheFinalForwardPass()
    {
        using var scope = NewDisposeScope();
        var probe = new ModeProbe();
        var net = nn.Sequential(("flatten", nn.Flatten()), ("fc", nn.Linear(64, 10)), ("probe", probe));
        var model = new TorchClassifier(net, Fixtures.Spec([1, 8, 8], 10));
        var (x, y) = Fixtures.RandomData(model, 16, 3);
        var attack = new ProjectedGradientAttack(Linf) { Steps = 3, Start = Starts.Uniform, EarlyStop = false };
        net.train();

        probe.Seen.Clear();
        using var run = attack.Run(model, x, new AttackTargets(y), AttackContext.Seeded(5));
        var runPasses = probe.Seen.Count;
        probe.Seen.Clear();
        var crafted = attack.Craft(model, x, new AttackTargets(y), AttackContext.Seeded(5));

        Assert.Equal(3, probe.Seen.Count);            // the three steps, no final forward pass
        Assert.Equal(runPasses - 1, probe.Seen.Count);
        Assert.All(probe.Seen, training => Assert.False(training));
        Assert.True(net.training, "train mode not restored");
        Assert.False(crafted.requires_grad);
        // Same points as Run up to its float rounding fix (one ulp), inside the ball and the bounds.
        Assert.True(crafted.sub(run.Adversarial).abs().max().ToSingle() <= 1e-6f);
        Assert.True(crafted.sub(x).abs().max().ToDouble() <= 0.1 + 1e-6);
        Assert.True(crafted.min().ToSingle() >= 0f && crafted.max().ToSingle() <= 1f);
        Assert.True(crafted.ne(x).any().ToBoolean(), "nothing moved");
    }

    [Fact]
    public void ScoreOnlyModelIsRejectedByGradientAttacksAndAcceptedBySquare()
    {
        using var scope = NewDisposeScope();
        var inner = Fixtures.RandomMlp(8);
        var model = new ScoreOnlyClassifier(inner);
        var (x, y) = Fixtures.RandomData(inner, 16, 2);
        foreach (var name in new[] { "pgd", "apgd-ce", "deepfool" })
        {
            var error = Assert.ThrowsAny<InputException>(() => AttackRegistry.Create(name, Linf).Run(model, x, new AttackTargets(y)));
            Assert.Contains("gradients", error.Message);
        }
        Assert.ThrowsAny<InputException>(() => AttackRegistry.Ensemble("standard", Linf).Run(model, x, new AttackTargets(y)));
        var square = AttackRegistry.Create("square", Linf, new AttackOptions { Queries = 50 });
        Assert.Equal(ModelAccess.Scores, square.Needs);
        using var r = square.Run(model, x, new AttackTargets(y), AttackContext.Seeded(1));
        Assert.True(r.Success.any().ToBoolean(), "Square broke nothing on a random MLP");
    }

    [Fact]
    public void RegistryCreatesEveryAttackAndRejectsUnknownNames()
    {
        foreach (var name in AttackRegistry.Names)
        {
            var threat = name == "cw" ? new ThreatModel(Norm.L2, 0.5, Bounds.Unit) : Linf;
            var attack = AttackRegistry.Create(name, threat);
            Assert.Equal(name, attack.Name);
            Assert.Equal(threat, attack.Threat);
            Assert.True(attack.Parameters.ContainsKey("eps"));
            Assert.NotEmpty(AttackRegistry.Describe(name));
        }
        var unknown = Assert.ThrowsAny<InputException>(() => AttackRegistry.Create("pgdd", Linf));
        Assert.Contains("apgd-ce", unknown.Message);
        Assert.ThrowsAny<InputException>(() => AttackRegistry.Preset("quick", Linf));
        Assert.ThrowsAny<InputException>(() => AttackRegistry.Create("fgsm", Linf, new AttackOptions { Steps = 5 }));
        Assert.ThrowsAny<InputException>(() => AttackRegistry.Create("pgd", Linf, new AttackOptions { Loss = "focal" }));
        Assert.ThrowsAny<InputException>(() => AttackRegistry.Create("pgd", Linf, new AttackOptions { Targeted = true, TargetMode = "nearest" }));
        Assert.ThrowsAny<InputException>(() => AttackRegistry.Create("deepfool", Linf, new AttackOptions { Targeted = true }));

        Assert.Equal(["apgd-ce", "apgd-t"], AttackRegistry.Preset("fast", Linf).Select(a => a.Name));
        Assert.Equal(["apgd-ce", "apgd-t", "square"], AttackRegistry.Preset("standard", Linf).Select(a => a.Name));
        Assert.Equal(["apgd-ce", "apgd-t", "fab-t", "square"], AttackRegistry.Preset("autoattack", Linf).Select(a => a.Name));
        Assert.Equal(["apgd-ce", "apgd-dlr"], AttackRegistry.Preset("rand", Linf).Select(a => a.Name));
        Assert.Equal(["fgsm", "pgd"], AttackRegistry.Preset("fgsm, pgd", Linf).Select(a => a.Name));

        var pgd = (ProjectedGradientAttack)AttackRegistry.Create("pgd", Linf, new AttackOptions { Steps = 40, Restarts = 2, Loss = "margin", StepSize = 0.01 });
        Assert.Equal(40, pgd.Steps);
        Assert.Equal(2, pgd.Restarts);
        Assert.Equal(0.01, pgd.StepSize);
        Assert.Equal("margin", pgd.Parameters["loss"]);
        Assert.Equal(0.01, (double)pgd.Parameters["step_size"], 12);
        var madry = Presets.Pgd(Linf, steps: 10);
        Assert.Equal(0.025, madry.StepSize, 12);
        Assert.Equal(0.1, Presets.Fgsm(Linf).StepSize, 12);
        Assert.Equal("fgm", Presets.Fgsm(new ThreatModel(Norm.L2, 1, Bounds.Unit)).Name);
    }

    [Fact]
    public void AutoPgdCheckpointsFollowThePaper()
    {
        // p = 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99 (increments shrink by 0.03 down to 0.06).
        Assert.Equal([22, 41, 57, 70, 80, 87, 93, 99], AutoPgdAttack.Checkpoints(100));
        Assert.Equal(0.8, SquareAttack.PSchedule(0.8, 5, 10000));
        Assert.Equal(0.4, SquareAttack.PSchedule(0.8, 30, 10000));
        Assert.Equal(0.8 / 512, SquareAttack.PSchedule(0.8, 9000, 10000));
        Assert.Equal(0.8 / 4, SquareAttack.PSchedule(0.8, 1, 100)); // rescaled to the budget: query 1 of 100 is query 100 of 10,000
    }

    [Fact]
    public void EnsembleKeepsFirstSuccessAndRecordsStages()
    {
        using var scope = NewDisposeScope();
        var model = Fixtures.TrainedCnn;
        var (x, y) = Fixtures.FashionHeldOut(80);
        var attacks = new IAttack[] { Presets.Fgsm(Linf), Presets.Pgd(Linf, steps: 10), new SquareAttack(Linf) { Queries = 30 } };
        var ensemble = new WorstCaseEnsemble(Linf, attacks);
        using var result = ensemble.RunDetailed(model, x, new AttackTargets(y), AttackContext.Seeded(3));
        Assert.Equal(["clean", "fgsm", "pgd", "square"], result.Stages.Select(s => s.Name));
        var cleanCorrect = (int)(Fixtures.Accuracy(model, x, y) * 80 + 0.5);
        Assert.Equal(cleanCorrect, result.Stages[0].RobustAfter);
        for (int i = 1; i < result.Stages.Count; i++)
            Assert.True(result.Stages[i].RobustAfter <= result.Stages[i - 1].RobustAfter);
        var success = result.Final.Success.data<bool>().ToArray();
        Assert.Equal(80 - result.Stages[^1].RobustAfter, success.Count(s => s));
        Assert.Equal(result.Stages[^1].RobustAfter / 80.0, result.Stages[^1].RobustAccuracyAfter, 12);
        for (int i = 0; i < 80; i++)
        {
            // A point is broken iff it was broken clean or some attack broke it; the attack index counts stages.
            Assert.Equal(success[i], result.CleanBroken[i] || result.FirstSuccess[i] >= 0);
            if (result.CleanBroken[i]) Assert.Equal(-1, result.FirstSuccess[i]);
        }
        for (int a = 0; a < attacks.Length; a++)
            Assert.Equal(result.Stages[a].RobustAfter - result.Stages[a + 1].RobustAfter, result.FirstSuccess.Count(f => f == a));

        Assert.ThrowsAny<InputException>(() => new WorstCaseEnsemble(Linf, [Presets.Fgsm(ThreatModel.Linf(0.2))]));
    }

    [Fact]
    public void ProgressIsReportedAndCancellationHonoured()
    {
        using var scope = NewDisposeScope();
        var model = Fixtures.RandomMlp(2);
        var (x, y) = Fixtures.RandomData(model, 8, 2);
        var steps = 0;
        var progress = new SyncProgress(n => steps += n);
        Presets.Pgd(Linf, steps: 7).Run(model, x, new AttackTargets(y), new AttackContext(StepProgress: progress)).Dispose();
        Assert.Equal(7, steps);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() =>
            Presets.Pgd(Linf).Run(model, x, new AttackTargets(y), new AttackContext(Cancel: cancelled.Token)));
    }

    [Fact]
    public void EarlyStopFreezesAdversarialSamples()
    {
        using var scope = NewDisposeScope();
        var model = Fixtures.RandomMlp(12);
        var (x, y) = Fixtures.RandomData(model, 64, 12);
        var threat = ThreatModel.Linf(0.3);
        using var stopped = (Presets.Bim(threat, 20) with { EarlyStop = true }).Run(model, x, new AttackTargets(y));
        using var full = Presets.Bim(threat, 20).Run(model, x, new AttackTargets(y));
        // Early-stopped points stop at the first adversarial iterate, so they move less than the full run.
        Assert.True(stopped.Success.any().ToBoolean(), "BIM at ε = 0.3 broke nothing");
        var lessMovement = stopped.Distance.mean().ToDouble() < full.Distance.mean().ToDouble();
        Assert.True(lessMovement, "early stop did not reduce the perturbation");
        Assert.True(stopped.Success.sum().ToInt64() >= full.Success.sum().ToInt64() - 2);
    }

    internal static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    /// <summary>Records the module's training flag on every forward pass.</summary>
    private sealed class ModeProbe() : nn.Module<Tensor, Tensor>("probe")
    {
        public List<bool> Seen { get; } = [];
        public override Tensor forward(Tensor input)
        {
            Seen.Add(training);
            return input.alias(); // Sequential disposes intermediates: never hand back the input itself

        }
    }

    private sealed class SyncProgress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }
}

/// <summary>The autoattack and rand presets carry AutoAttack's version settings; the caller's options win.</summary>
public class AutoAttackPresetTests
{
    [Theory]
    [InlineData("linf")]
    [InlineData("l2")]
    [InlineData("l1")]
    public void AutoAttackPresetHasTheStandardVersionsSettings(string normName)
    {
        var threat = new ThreatModel(NormNames.Parse(normName), 0.5, Bounds.Unit);
        var attacks = AttackRegistry.Preset("autoattack", threat);
        bool l1 = threat.Norm == Norm.L1;
        Assert.Equal(l1 ? ["apgd-ce", "apgd-t", "fab-t"] : ["apgd-ce", "apgd-t", "fab-t", "square"], attacks.Select(a => a.Name));
        var ce = (AutoPgdAttack)attacks[0];
        Assert.Equal((100, l1 ? 5 : 1, 0, "ce"), (ce.Steps, ce.Restarts, ce.TargetCount, ce.Objective.Name));
        var t = (AutoPgdAttack)attacks[1];
        Assert.Equal((100, 1, l1 ? 5 : 9), (t.Steps, t.Restarts, t.TargetCount));
        var fab = (FabAttack)attacks[2];
        Assert.Equal((100, 1, 9, 0.1, 1.05, 0.9), (fab.Steps, fab.Restarts, fab.TargetCount, fab.AlphaMax, fab.Eta, fab.Beta));
        if (!l1)
        {
            var square = (SquareAttack)attacks[3];
            Assert.Equal((5000, 0.8), (square.Queries, square.PInit));
        }
        // The caller's options override the preset's settings.
        var custom = AttackRegistry.Preset("autoattack", threat, new AttackOptions { Steps = 10, TargetCount = 3 });
        Assert.Equal(10, ((FabAttack)custom[2]).Steps);
        Assert.Equal(3, ((AutoPgdAttack)custom[1]).TargetCount);
    }

    [Theory]
    [InlineData("linf")]
    [InlineData("l2")]
    [InlineData("l1")]
    public void StandardPresetIsAutoAttackWithoutFabAndWithSquareHalving(string normName)
    {
        var threat = new ThreatModel(NormNames.Parse(normName), 0.5, Bounds.Unit);
        var attacks = AttackRegistry.Preset("standard", threat);
        bool l1 = threat.Norm == Norm.L1;
        Assert.Equal(l1 ? ["apgd-ce", "apgd-t"] : ["apgd-ce", "apgd-t", "square"], attacks.Select(a => a.Name));
        var ce = (AutoPgdAttack)attacks[0];
        Assert.Equal((100, 1, 0, "ce"), (ce.Steps, ce.Restarts, ce.TargetCount, ce.Objective.Name));
        var t = (AutoPgdAttack)attacks[1];
        Assert.Equal((100, 1, 9), (t.Steps, t.Restarts, t.TargetCount));
        if (!l1)
        {
            var square = (SquareAttack)attacks[2];
            Assert.Equal((5000, 0.8, (int?)AutoAttackVersions.StandardPresetSquareHalvingFrom), (square.Queries, square.PInit, square.HalvingFrom));
            // --queries still sets the budget, and halving can be turned off.
            var custom = (SquareAttack)AttackRegistry.Preset("standard", threat, new AttackOptions { Queries = 800, SquareHalvingFrom = 0 })[2];
            Assert.Equal((800, (int?)null), (custom.Queries, custom.HalvingFrom));
        }
    }

    [Fact]
    public void RandPresetAveragesTwentyGradientsAndEotReachesEveryGradientAttack()
    {
        var threat = ThreatModel.Linf(0.1);
        var rand = AttackRegistry.Preset("rand", threat);
        Assert.All(rand, a => Assert.Equal(20, ((AutoPgdAttack)a).EotSamples));
        Assert.Equal(["ce", "dlr"], rand.Select(a => ((AutoPgdAttack)a).Objective.Name));
        Assert.All(rand, a => Assert.Equal((100, 1), (((AutoPgdAttack)a).Steps, ((AutoPgdAttack)a).Restarts)));
        var options = new AttackOptions { EotSamples = 4 };
        foreach (var name in new[] { "fgsm", "bim", "pgd", "mi-fgsm", "apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "cw", "deepfool" })
        {
            var attack = AttackRegistry.Create(name, name == "cw" ? new ThreatModel(Norm.L2, 1, Bounds.Unit) : threat, options);
            Assert.Equal(4, attack.Parameters["eot_samples"]);
        }
        Assert.ThrowsAny<InputException>(() => AttackRegistry.Create("pgd", threat, new AttackOptions { EotSamples = 0 }));
    }
}

/// <summary>Expectation over Transformation: averaging gradients over passes of a randomised model.</summary>
public class EotTests
{
    /// <summary>x ↦ f(x + σ·N(0, I)) in every pass, as a randomised defense does.</summary>
    private static IGradientClassifier Noisy(TorchClassifier inner, double sigma) => new Models.NoisyInputClassifier(inner, sigma);

    private static double Cosine(Tensor a, Tensor b) =>
        (Geometry(a) * Geometry(b)).sum(1).div(Geometry(a).norm(1, false, 2) * Geometry(b).norm(1, false, 2)).mean().ToDouble();

    private static Tensor Geometry(Tensor t) => t.reshape(t.shape[0], -1).to(ScalarType.Float64);

    [Fact]
    public void AveragedGradientsOfARandomisedModelAgreeMoreThanSingleSamples()
    {
        using var scope = NewDisposeScope();
        var model = Fixtures.RandomMlp(8);
        var (x, y) = Fixtures.RandomData(model, 64, 9);
        var noisy = Noisy(model, 0.3);
        var t = new AttackTargets(y);
        random.manual_seed(1);
        var one = Enumerable.Range(0, 2).Select(_ => AttackMath.LossGradient(noisy, x, Objectives.CrossEntropy, t).Grad).ToArray();
        var many = Enumerable.Range(0, 2).Select(_ => AttackMath.LossGradient(noisy, x, Objectives.CrossEntropy, t, eotSamples: 20).Grad).ToArray();
        double single = Cosine(one[0], one[1]), averaged = Cosine(many[0], many[1]);
        Assert.True(averaged > single + 0.1, $"EOT-20 estimates agree {averaged:F3}, single passes {single:F3}");

        // A deterministic model: K passes average to its one gradient.
        var exact = AttackMath.LossGradient(model, x, Objectives.CrossEntropy, t).Grad;
        var mean = AttackMath.LossGradient(model, x, Objectives.CrossEntropy, t, eotSamples: 5).Grad;
        Assert.True((exact - mean).abs().max().ToDouble() <= 1e-6 * (1 + exact.abs().max().ToDouble()));
    }

    [Fact]
    public void NoisyModelIsRandomInEvalModeAndAttacksReportItsParameters()
    {
        using var scope = NewDisposeScope();
        var model = Fixtures.RandomMlp(8);
        var (x, _) = Fixtures.RandomData(model, 16, 9);
        var noisy = Noisy(model, 0.2);
        using var eval = noisy.EvalMode();
        using var _ = no_grad();
        Assert.False(noisy.Logits(x).eq(noisy.Logits(x)).all().ToBoolean(), "two eval-mode passes agree: no noise");
        Assert.Equal("0.2", noisy.Spec.Extra["input_noise_std"]);
    }
}

/// <summary>Counts the process's live tensors, so it runs alone (other test classes allocate in parallel).</summary>
[Collection("tensor counts")]
public class EngineMemoryTests
{
    private static readonly ThreatModel Linf = ThreatModel.Linf(0.1);

    private static void Settle() => EngineTests.Settle();

    [Fact]
    public void LiveTensorCountIsFlatAcrossHundredsOfSteps()
    {
        var model = Fixtures.RandomMlp(5);
        Tensor x, y;
        using (var setup = NewDisposeScope())
        {
            (x, y) = Fixtures.RandomData(model, 16, 6);
            x.DetachFromDisposeScope();
            y.DetachFromDisposeScope();
        }
        var targets = new AttackTargets(y);
        IAttack[] attacks =
        [
            Presets.Pgd(Linf, steps: 100, restarts: 2) with { EarlyStop = true },
            Presets.MiFgsm(new ThreatModel(Norm.L1, 2, Bounds.Unit), steps: 50),
            new AutoPgdAttack(new ThreatModel(Norm.L2, 0.5, Bounds.Unit)) { Steps = 100, TargetCount = 2 },
            new CarliniWagnerL2Attack(new ThreatModel(Norm.L2, 0.5, Bounds.Unit)) { Steps = 20, BinarySearchSteps = 3 },
            new DeepFoolAttack(Linf) { Steps = 20 },
            new FabAttack(new ThreatModel(Norm.L1, 1, Bounds.Unit)) { Steps = 20, TargetCount = 2, Restarts = 2 },
            new AutoPgdAttack(Linf) { Steps = 10, EotSamples = 3 },
            new SquareAttack(new ThreatModel(Norm.L2, 0.5, Bounds.Unit)) { Queries = 100 },
            AttackRegistry.Ensemble("standard", Linf, new AttackOptions { Steps = 20, Queries = 50, TargetCount = 2 }),
        ];
        // Warm up lazily created state (generators, caches) before counting.
        foreach (var attack in attacks) attack.Run(model, x, targets, AttackContext.Seeded(1)).Dispose();
        // Tensors leaked by earlier tests may be finalised at any time; settle the GC before each count.
        Settle();
        var before = Core.LiveTensors.Count;
        foreach (var attack in attacks) attack.Run(model, x, targets, AttackContext.Seeded(2)).Dispose();
        var ensemble = AttackRegistry.Ensemble("fast", Linf, new AttackOptions { Steps = 10, TargetCount = 2 });
        ensemble.RunDetailed(model, x, targets, AttackContext.Seeded(3)).Dispose();
        Settle();
        Assert.Equal(before, Core.LiveTensors.Count);
        x.Dispose(); y.Dispose();
    }
}

[CollectionDefinition("tensor counts", DisableParallelization = true)]
public sealed class TensorCountCollection;
