// Bring your own model: an ONNX (or TorchScript) classifier exported from PyTorch, executed with TorchSharp ops so
// attacks get exact input gradients; its input contract says how pixels map to the model.
using TorchSharp;
using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Data;
using Robustness.Models;

var path = args.Length > 0 ? args[0] : Path.Combine(FindRepo(), "tests", "fixtures", "byom", "cnn-bn.onnx");
using var loaded = ModelLoader.Load(path, contract: new InputContract { InputShape = [1, 28, 28] });
var model = loaded.Classifier;
Console.WriteLine($"{loaded.Format}: {model.Spec.Arch}, input [{string.Join(",", model.Spec.InputShape)}], {model.Spec.NumClasses} classes");
using var data = DatasetCatalog.Load("fashion-mnist", "test").Take(200);
var attack = AttackRegistry.Create("apgd-ce", new ThreatModel(Norm.Linf, 0.05, model.Spec.Bounds), new AttackOptions { Steps = 50 });
using var result = attack.Run(model, data.Images, new AttackTargets(data.Labels), AttackContext.Seeded(0));
Console.WriteLine($"clean {Accuracy.Clean(model, data):P1}; APGD-CE broke {result.Success.sum().ToInt64()} of {data.Count} at ε = 0.05");

static string FindRepo()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "Robustness.sln"))) return dir.FullName;
    throw new InvalidOperationException("pass the path of an .onnx or TorchScript .pt model");
}
