// Adversarially train (Madry PGD-AT, L∞ ε = 0.1, 7 steps) a tiny-cnn on a slice of Fashion-MNIST, then check it.
using TorchSharp;
using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Data;
using Robustness.Defenses;
using Robustness.Models;
using Robustness.Models.Zoo;

int n = args.Length > 0 ? int.Parse(args[0]) : 3000;
using var train = DatasetCatalog.Load("fashion-mnist", "train").Take(n);
using var test = DatasetCatalog.Load("fashion-mnist", "test").Take(500);
TorchSharp.torch.random.manual_seed(1);
using var model = ModelZoo.CreateClassifier("tiny-cnn");
var objective = TrainingObjectives.Create("pgd", new DefenseSettings { Epsilon = 0.1, Steps = 7 });
var options = new TrainingOptions { Epochs = args.Length > 1 ? int.Parse(args[1]) : 2, ValidationSize = 200, Seed = 1, OutputDirectory = "pgd-run" };
var report = new Trainer(model, objective, options) { ModelWriter = ModelFileWriter.Instance }.Fit(train);
var pgd = AttackRegistry.Create("pgd", new ThreatModel(Norm.Linf, 0.1, model.Spec.Bounds), new AttackOptions { Steps = 20 });
using var result = pgd.Run(model, test.Images, new AttackTargets(test.Labels), AttackContext.Seeded(0));
Console.WriteLine($"{report.EpochsRun} epochs in {report.WallSeconds:F0} s; test clean {Accuracy.Clean(model, test):P1}, " +
    $"accuracy under PGD-20 {1 - result.Success.to(TorchSharp.torch.ScalarType.Float64).mean().ToDouble():P1}; model in {report.BestModelPath}");
