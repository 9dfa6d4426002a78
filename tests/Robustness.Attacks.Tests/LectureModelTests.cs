using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Models;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks.Tests;

/// <summary>
/// Attacks on the lecture's zoo networks with dropout and batch norm: the attack's eval-mode scope covers both (no
/// random masks, no BN statistics updates, verdicts equal eval-mode predictions) and the caller's mode comes back.
/// </summary>
public class LectureModelTests
{
    private static readonly ThreatModel Linf = ThreatModel.Linf(0.1);

    [Theory]
    [InlineData("mlp")]
    [InlineData("tiny-cnn")]
    [InlineData("resnet-small")]
    [InlineData("lstm")]
    [InlineData("gru")]
    public void Attacks_run_dropout_and_batch_norm_in_eval_mode_and_restore_train_mode(string arch)
    {
        using var scope = NewDisposeScope();
        random.manual_seed(11);
        var spec = ModelZoo.DefaultSpec(arch, new ZooOptions { Dropout = 0.5 });
        using var model = ModelZoo.CreateClassifier(arch, CPU, spec);
        var x = rand(6, 1, 28, 28);
        var y = arange(Keep(6), ScalarType.Int64) % Keep(10);
        model.Module.train();
        using (no_grad())
        {
            var first = model.Logits(x);
            var second = model.Logits(x);
            Assert.True((first - second).abs().max().ToSingle() > 1e-4f, "with dropout in train mode two calls should differ");
        }
        var buffers = Buffers(model);

        var attack = AttackRegistry.Create("pgd", Linf, new AttackOptions { Steps = 5 });
        using var a = attack.Run(model, x, new AttackTargets(y), AttackContext.Seeded(3));
        Assert.True(model.Module.training, "train mode not restored");
        using var b = attack.Run(model, x, new AttackTargets(y), AttackContext.Seeded(3));
        Assert.True(model.Module.training, "train mode not restored");

        // Deterministic inside the attack: the same seed gives the same points and the same verdicts.
        Assert.True(a.Adversarial.eq(b.Adversarial).all().ToBoolean(), "two seeded attacks differ: dropout was active inside the attack");
        Assert.True(a.Success.eq(b.Success).all().ToBoolean());
        // Batch norm statistics untouched by every forward pass of the attack.
        foreach (var (name, before) in buffers)
            Assert.True(before.eq(model.Network.state_dict()[name].cpu()).all().ToBoolean(), $"{arch}: attack changed {name}");
        // The verdicts are the eval-mode network's.
        using (((IGradientClassifier)model).EvalMode())
        using (no_grad())
        {
            var eval = model.Logits(a.Adversarial);
            Assert.True((eval - a.Logits).abs().max().ToSingle() < 1e-5f);
            Assert.True(a.Success.eq(eval.argmax(1).ne(y)).all().ToBoolean());
        }
        Assert.True(a.Distance.max().ToDouble() <= 0.1 + 1e-6);

        // The worst-case ensemble (APGD-CE + APGD-T) keeps the same contract.
        var ensemble = AttackRegistry.Ensemble("fast", Linf, new AttackOptions { Steps = 5, TargetCount = 2 });
        using var worst = ensemble.Run(model, x, new AttackTargets(y), AttackContext.Seeded(4));
        Assert.True(model.Module.training, "train mode not restored after the ensemble");
        foreach (var (name, before) in buffers)
            Assert.True(before.eq(model.Network.state_dict()[name].cpu()).all().ToBoolean(), $"{arch}: ensemble changed {name}");
        Assert.True(worst.Distance.max().ToDouble() <= 0.1 + 1e-6);
    }

    private static Dictionary<string, Tensor> Buffers(TorchClassifier model) =>
        model.Network.named_buffers().ToDictionary(b => b.name, b => b.buffer.detach().cpu().clone());
}
