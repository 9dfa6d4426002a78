// Attack a model in 15 lines: PGD at L∞ ε = 0.1 on the shipped standard tiny-cnn and 256 Fashion-MNIST test images.
using TorchSharp;
using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Data;
using Robustness.Models;

var shipped = DatasetCatalog.FindShippedData() ?? throw new InvalidOperationException("run from the repository or the installed tool");
using var model = ModelFile.Load(Path.Combine(shipped, "models", "tiny-cnn-standard.safetensors"));
using var data = DatasetCatalog.Load("fashion-mnist", "test").Take(args.Length > 0 ? int.Parse(args[0]) : 256);
var attack = AttackRegistry.Create("pgd", new ThreatModel(Norm.Linf, 0.1, model.Spec.Bounds), new AttackOptions { Steps = 20 });
using var result = attack.Run(model, data.Images, new AttackTargets(data.Labels), AttackContext.Seeded(0));
var clean = Accuracy.Clean(model, data);
var underAttack = 1 - result.Success.to(TorchSharp.torch.ScalarType.Float64).mean().ToDouble();
Console.WriteLine($"clean {clean:P1}, accuracy under {attack.Name}-20 {underAttack:P1}, max ‖δ‖∞ {result.Distance.max().ToDouble():G3}");
