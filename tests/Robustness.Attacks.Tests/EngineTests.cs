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
        Assert.False(square.NeedsGradients);
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

    private static void Settle()
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
