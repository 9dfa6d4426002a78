// Evaluate with the `standard` preset (APGD-CE, APGD-T, Square: per-sample worst case), an ε sweep and the sanity
// checks, and write report.json / report.md / report.html.
using TorchSharp;
using Robustness.Core;
using Robustness.Data;
using Robustness.Evaluation;
using Robustness.Models;

var shipped = DatasetCatalog.FindShippedData() ?? throw new InvalidOperationException("run from the repository or the installed tool");
using var model = ModelFile.Load(Path.Combine(shipped, "models", "tiny-cnn-pgd.safetensors"));
using var data = DatasetCatalog.Load("fashion-mnist", "test");
var options = new EvaluationOptions
{
    Norm = Norm.Linf,
    Epsilon = 0.1,
    SweepEpsilons = [0.05, 0.15],
    Attacks = new RegistryAttackSuite("standard"),
    SampleIndices = Enumerable.Range(0, args.Length > 0 ? int.Parse(args[0]) : 100).Select(i => (long)i).ToArray(),
    Seed = 0,
};
var result = new Evaluator().Evaluate(model, data, options);
var files = ReportBundle.WriteAll(result.Report, args.Length > 1 ? args[1] : "standard-report", result.Examples);
Console.WriteLine($"clean {result.Report.CleanAccuracy:P1}, robust {result.Report.RobustAccuracy:P1}, warnings {result.Report.Warnings.Count}; {files.Html}");
