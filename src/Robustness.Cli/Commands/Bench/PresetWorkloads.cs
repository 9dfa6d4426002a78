using Robustness.Attacks;
using Robustness.Core;
using Robustness.Evaluation;

namespace Robustness.Cli.Commands.Bench;

/// <summary>
/// The time to an honest number (issue #16): `robust eval`'s presets fast, standard and autoattack on the same model
/// and images in one run, L∞ ε = 0.1, seed 0, sanity checks off, batch 256 — seconds per 1,000 images and the robust
/// accuracy each reached, and fast's and standard's time and robust accuracy relative to autoattack's. One repetition
/// each (autoattack takes minutes); the machine must be idle for the times to mean anything. --quick shrinks the
/// attacks (5 steps, 50 queries) to prove the path runs.
/// </summary>
public sealed class PresetWorkloads(ImageDataset data, BenchBudget budget, int threads, bool quick)
{
    public static readonly string[] Presets = ["fast", "standard", "autoattack"];

    public IReadOnlyList<BenchMeasurement> Run(IClassifier model, string modelName, int batch = 256)
    {
        var n = Math.Min(budget.EvalImages, data.Count);
        var attackOptions = quick ? new AttackOptions { Steps = 5, Queries = 50 } : AttackOptions.Default;
        var evaluator = new Evaluator();
        var results = new List<(string Preset, double Seconds, RobustnessReport Report)>();
        foreach (var preset in Presets)
        {
            var options = new EvaluationOptions
            {
                Norm = Norm.Linf,
                Epsilon = BenchWorkloads.Epsilon,
                Attacks = new RegistryAttackSuite(preset, attackOptions),
                BatchSize = batch,
                Seed = 0,
                SampleIndices = Enumerable.Range(0, n).Select(i => (long)i).ToArray(),
                ImageCount = 0,
                SanityChecks = false,
            };
            RobustnessReport report = null!;
            var (t, _) = BenchWorkloads.Time(() => report = evaluator.Evaluate(model, data, options).Report, 0, 1);
            results.Add((preset, t, report));
        }
        var (_, reference, referenceReport) = results[^1];
        return results.Select(r => new BenchMeasurement("eval-" + r.Preset, modelName, batch, "seconds_per_1000_s", r.Seconds * 1000.0 / n)
        {
            Threads = threads,
            Samples = [r.Seconds],
            Note = $"{n} images, {string.Join(" → ", r.Report.PerAttack.Select(s => $"{s.Name} {100 * s.RobustAccuracyAfter:0.0}%"))}",
            Extra = new Dictionary<string, double>
            {
                ["clean_accuracy"] = r.Report.CleanAccuracy,
                ["robust_accuracy"] = r.Report.RobustAccuracy,
                ["time_vs_autoattack"] = r.Seconds / reference,
                ["robust_points_above_autoattack"] = 100 * (r.Report.RobustAccuracy - referenceReport.RobustAccuracy),
            },
        }).ToArray();
    }
}
