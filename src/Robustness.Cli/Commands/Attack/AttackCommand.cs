using Robustness.Core.Formats;
using System.CommandLine;
using System.Diagnostics;
using Robustness.Attacks;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Evaluation;
using Robustness.Models;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Cli.Commands.Attack;

/// <summary>Everything `robust attack` was asked to do.</summary>
public sealed record AttackRunOptions
{
    public required ModelDataSelection Inputs { get; init; }
    public required string Attack { get; init; }
    public Norm Norm { get; init; } = Norm.Linf;
    public required double Epsilon { get; init; }
    public AttackOptions AttackOptions { get; init; } = AttackOptions.Default;
    public GradientPrecision Precision { get; init; } = GradientPrecision.Float32;
    public long Seed { get; init; }
    public int BatchSize { get; init; } = 256;
    public string Device { get; init; } = "auto";
    public int Threads { get; init; }
    public int Images { get; init; } = 8;
    public MultiLabelOptions MultiLabel { get; init; } = new();
    public required string Out { get; init; }
}

/// <summary>`robust attack`: one attack (or preset ensemble) on N samples; result.json, adversarial.safetensors, images.</summary>
public sealed class AttackCommand(AttackRunOptions o)
{
    private static readonly ModelDataOptionSet Inputs = new();
    private static readonly Option<string> AttackOption = new("--attack")
    {
        Description = $"Attack name ({string.Join(", ", AttackRegistry.Names)}) or preset ({string.Join(", ", AttackRegistry.PresetNames)}), or a comma-separated list (worst case over them).",
        Required = true,
    };
    private static readonly Option<string> NormOption = SharedOptions.Norm();
    private static readonly Option<string> EpsOption = new("--eps") { Description = "Radius ε of the threat model, in input units (pixels in [0,1]).", Required = true };
    private static readonly AttackOptionSet AttackOptions = new();
    private static readonly Option<long> SeedOption = SharedOptions.Seed();
    private static readonly Option<int> BatchOption = SharedOptions.BatchSize(256);
    private static readonly Option<string> DeviceOption = SharedOptions.Device();
    private static readonly Option<int> ThreadsOption = SharedOptions.Threads();
    private static readonly Option<int> ImagesOption = new("--images") { Description = "How many perturbation images to write.", DefaultValueFactory = _ => 8 };
    private static readonly Option<string> OutOption = SharedOptions.Out("Output directory (result.json, adversarial.safetensors, images/).");

    public static Command Definition()
    {
        var command = new Command("attack", "Attack a model on a dataset within an L_p ball and record what happened.")
        {
            AttackOption, NormOption, EpsOption,
            SeedOption, BatchOption, DeviceOption, ThreadsOption, ImagesOption, OutOption,
        };
        Inputs.AddTo(command);
        AttackOptions.AddTo(command);
        JsonOutput.AddTo(command, "Print result.json's document (and where the files are) on stdout; the table and progress go to stderr.");
        CommandRunner.SetAction(command, p => new AttackCommand(new AttackRunOptions
        {
            Inputs = Inputs.Read(p),
            Attack = p.GetValue(AttackOption)!,
            Norm = NormNames.Parse(p.GetValue(NormOption)!),
            Epsilon = SharedOptions.ParseDouble(p.GetValue(EpsOption)!, "--eps"),
            AttackOptions = AttackOptions.Read(p),
            Precision = AttackOptions.ReadPrecision(p),
            Seed = p.GetValue(SeedOption),
            BatchSize = p.GetValue(BatchOption),
            Device = p.GetValue(DeviceOption)!,
            Threads = p.GetValue(ThreadsOption),
            Images = p.GetValue(ImagesOption),
            MultiLabel = AttackOptions.ReadMultiLabel(p) is var (labels, target, flip) ? new MultiLabelOptions(labels, target, flip) : new(),
            Out = p.GetValue(OutOption)!,
        }).Execute(), new Dictionary<string, string> { ["LabelAttacks"] = "--label-attacks" });
        return command;
    }

    public int Execute()
    {
        SharedOptions.RequirePositive(o.BatchSize, "--batch-size");
        if (o.Images < 0) throw new InputException($"--images: must be ≥ 0, got {o.Images}");
        using var run = LoadedRun.Open(o.Inputs, o.Seed, o.Device, o.Threads);
        var threat = new ThreatModel(o.Norm, o.Epsilon, run.Model.Spec.Bounds).Validate();
        var attackOptions = run.WithSurrogate(o.AttackOptions);
        var attacks = AttackLists.Build(o.Attack, threat, attackOptions);
        AttackRegistry.RequireRunnable(attacks, run.Access);
        run.CheckSurrogateUsed(attacks);
        var name = attacks.Count == 1 ? attacks[0].Name : "ensemble(" + string.Join("+", attacks.Select(a => a.Name)) + ")";
        // The one definition of robust accuracy: the evaluator's per-sample worst case over the attacks, at one ε.
        var options = new EvaluationOptions
        {
            Norm = o.Norm,
            Epsilon = o.Epsilon,
            Attacks = new CliAttackSuite(o.Attack, attackOptions),
            BatchSize = o.BatchSize,
            Seed = o.Seed,
            SampleIndices = run.Indices,
            ImageCount = o.Images,
            SanityChecks = false,
            ModelPath = Path.GetFullPath(o.Inputs.Model),
            ModelSha256 = run.ModelSha256,
            AttackPrecision = o.Precision.Name(),
            KeepAdversarials = true,
        };
        options = o.MultiLabel.ApplyTo(options, run.Model.Spec, run.ClassNames, attackOptions);
        options.Validate(run.Model.Spec.Bounds);
        // Multi-label: the per-label stages must be runnable on the model too (checked before any output is written).
        if (options.LabelAttacks?.Build(threat) is { } labelAttacks) AttackRegistry.RequireRunnable(labelAttacks, run.Access);
        // bf16 only for the gradient passes; the clean pass and every verdict come from the float32 model.
        var (attackModel, bf16) = run.AttackModel(o.Precision);
        using var view = bf16;
        var wrapping = ModelWrapping.Apply(o.Inputs, attackModel, o.Precision);
        options = options with { ModelNotes = wrapping.Notes };
        using var outLock = OutputLock.Acquire(o.Out);
        var watch = Stopwatch.StartNew();
        EvaluationResult result = null!;
        ProgressReporter.Run($"{name} {threat}", progress => result = new Evaluator().Evaluate(wrapping.Model, run.Data, options, progress));
        watch.Stop();

        var report = result.Report;
        var kept = result.Kept!;
        int n = run.Indices.Length;
        var samples = report.Samples;
        var broken = samples.Select(s => s.CleanCorrect && s.PerEpsilon[0].Broken).ToArray();
        int nClean = samples.Count(s => s.CleanCorrect), nRobust = samples.Count(s => s.RobustAt(0));
        var distance = kept.Distance;
        var changed = distance.Where(d => d > 0).ToArray();
        var perturbation = report.Perturbation;
        var resultJson = new Dictionary<string, object?>
        {
            ["schema_version"] = 1,
            ["attack"] = name,
            ["attacks"] = attacks.Select(a => a.Name).ToArray(),
            ["norm"] = o.Norm.Name(),
            ["eps"] = o.Epsilon,
            ["bounds"] = threat.Bounds.ToString(),
            ["samples"] = n,
            ["clean_accuracy"] = report.CleanAccuracy,
            ["robust_accuracy"] = report.RobustAccuracy,
            ["attack_success_rate"] = nClean == 0 ? 0.0 : (double)(nClean - nRobust) / nClean,
            ["max_perturbation"] = distance.Length == 0 ? 0 : distance.Max(),
            ["mean_perturbation"] = distance.Length == 0 ? 0 : distance.Average(),
            ["mean_perturbation_nonzero"] = changed.Length == 0 ? 0 : changed.Average(),
            ["median_minimum_norm"] = perturbation.MinimumNormCount > 0 ? perturbation.MedianMinimumNorm : null,
            ["minimum_norm_found"] = attacks.Any(a => a is CarliniWagnerL2Attack or DeepFoolAttack or FabAttack or HopSkipJumpAttack or BoundaryAttack) ? perturbation.MinimumNormCount : null,
            ["per_attack"] = report.PerAttack.Select(s => new Dictionary<string, object?> { ["name"] = s.Name, ["robust_accuracy_after"] = s.RobustAccuracyAfter, ["seconds"] = s.Seconds }).ToArray(),
            ["model_access"] = run.Access.Name(),
            ["queries"] = QueriesJson(report, samples),
            ["precision"] = o.Precision.Name(),
            ["parameters"] = attacks.Select(a => new Dictionary<string, object?> { ["name"] = a.Name, ["parameters"] = a.Parameters }).ToArray(),
            ["seed"] = o.Seed,
            ["model_notes"] = wrapping.Notes,
            ["data"] = new Dictionary<string, object?> { ["name"] = run.Data.Name, ["source"] = run.Data.Source, ["split"] = o.Inputs.Split, ["sample_mode"] = o.Inputs.SampleMode, ["indices"] = run.Indices },
            ["timing"] = new Dictionary<string, object?> { ["seconds"] = watch.Elapsed.TotalSeconds, ["samples_per_s"] = n / Math.Max(1e-9, watch.Elapsed.TotalSeconds) },
            ["provenance"] = RunProvenance.Describe(run.Device, o.Seed, o.Inputs.Model, run.ModelSha256),
        };

        bool multi = report.MultiLabel is not null;
        if (report.MultiLabel is { } ml)
        {
            // Multi-label: the headline numbers beside robust_accuracy (which is the robust subset accuracy).
            resultJson["multi_label"] = true;
            resultJson["subset_accuracy"] = report.SubsetAccuracy;
            resultJson["hamming_accuracy"] = report.HammingAccuracy;
            resultJson["robust_subset_accuracy"] = report.RobustSubsetAccuracy;
            resultJson["robust_hamming_accuracy"] = report.RobustHammingAccuracy;
            resultJson["mean_labels_flipped"] = ml.MeanLabelsFlipped;
            resultJson["labels_flipped_histogram"] = ml.EpsSweep[0].FlippedHistogram;
            resultJson["label_attacks"] = ml.LabelStages;
            resultJson["decision_threshold"] = ml.DecisionThreshold;
            if (ml.Goal is { } goal && options.TargetGoal is { } target)
            {
                // Targeted (Song et al.): success = the whole target set reached, over the exact matches whose target
                // differs from their true set (given sets can coincide with it; k random flips never do).
                bool Differs(SampleOutcome s) => target.FlipCount is not null
                    || target.TurnOn.Any(c => !(s.LabelSet ?? []).Contains(c)) || target.TurnOff.Any(c => (s.LabelSet ?? []).Contains(c));
                var attacked = samples.Where(s => s.CleanCorrect && Differs(s)).ToArray();
                resultJson["target_labels"] = goal;
                resultJson["targeted_samples"] = attacked.Length;
                resultJson["targeted_success_rate"] = attacked.Length == 0 ? 0.0 : (double)attacked.Count(s => s.PerEpsilon[0].Broken) / attacked.Length;
            }
        }

        var advPath = Path.Combine(o.Out, "adversarial.safetensors");
        using (var scope = NewDisposeScope())
        {
            var shape = new long[] { n }.Concat(run.Model.Spec.InputShape.Select(d => (long)d)).ToArray();
            var tensors = new Dictionary<string, Tensor>
            {
                ["adversarial"] = tensor(kept.Pixels).reshape(shape),
                ["labels"] = tensor(samples.Select(s => (long)s.Label).ToArray()),
                ["indices"] = tensor(run.Indices),
                ["clean_predictions"] = tensor(samples.Select(s => (long)s.CleanPrediction).ToArray()),
                ["adversarial_predictions"] = tensor(kept.Prediction.Select(p => (long)p).ToArray()),
                ["success"] = tensor(broken).to(ScalarType.Byte),
                ["distance"] = tensor(distance),
            };
            if (multi)
            {
                // Multi-label: label sets as multi-hot rows (uint8 [N, K]) and the labels flipped per sample.
                int k = run.Model.Spec.NumClasses;
                Tensor Rows(Func<SampleOutcome, IEnumerable<int>> set)
                {
                    var flags = new byte[n * k];
                    for (int i = 0; i < n; i++) foreach (var c in set(samples[i])) flags[i * k + c] = 1;
                    return tensor(flags).reshape(n, k);
                }
                tensors["labels"] = Rows(s => s.LabelSet ?? []);
                tensors["clean_predictions"] = Rows(s => s.PredictedSet ?? []);
                tensors["adversarial_predictions"] = tensor(kept.PredictedSets!.Select(b => b ? (byte)1 : (byte)0).ToArray()).reshape(n, k);
                tensors["labels_flipped"] = Rows(s => s.PerEpsilon[0].FlippedLabels ?? []);
            }
            SafeTensors.Write(advPath, tensors, new Dictionary<string, string>
            {
                ["format"] = "robustness-adversarial/1",
                ["attack"] = name,
                ["norm"] = o.Norm.Name(),
                ["eps"] = o.Epsilon.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["seed"] = o.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["model_sha256"] = run.ModelSha256,
            });
        }

        resultJson["images"] = WriteImages(result.Examples);
        // What each picture shows (the pictures hold no text): index, classes, confidences, attack, ‖δ‖.
        resultJson["examples"] = (o.Images == 0 ? [] : result.Examples).Select(e => new Dictionary<string, object?>
        {
            ["index"] = e.Index,
            ["image"] = Path.Combine("images", $"sample-{e.Index}.png"),
            ["caption"] = PerturbationImages.Caption(e, run.ClassNames).ToDictionary(l => l.Key, l => l.Value),
            ["broken"] = e.Broken,
        }).ToArray();
        AtomicFile.WriteAllText(Path.Combine(o.Out, "result.json"), Json.Serialize(resultJson));

        var table = new Table().AddColumn("").AddColumn("value");
        table.AddRow("attack", Markup.Escape($"{name} ({threat})"));
        table.AddRow("samples", n.ToString(System.Globalization.CultureInfo.InvariantCulture));
        table.AddRow(multi ? "clean subset accuracy" : "clean accuracy", Pct(report.CleanAccuracy));
        table.AddRow(multi ? "robust subset accuracy" : "robust accuracy", Pct(report.RobustAccuracy));
        if (report.MultiLabel is { } m)
        {
            table.AddRow("Hamming accuracy", $"{Pct(report.HammingAccuracy ?? 0)} clean, {Pct(report.RobustHammingAccuracy ?? 0)} robust");
            table.AddRow("labels flipped", m.MeanLabelsFlipped.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture) + " per sample");
            if (resultJson.TryGetValue("targeted_success_rate", out var rate) && rate is double r)
                table.AddRow("targeted success", $"{Pct(r)} of {resultJson["targeted_samples"]} ({Markup.Escape(m.Goal ?? "")})");
        }
        table.AddRow("max ‖δ‖", (distance.Length == 0 ? 0 : distance.Max()).ToString("G4", System.Globalization.CultureInfo.InvariantCulture));
        if (perturbation.MedianMinimumNorm is { } median) table.AddRow("median minimum norm", median.ToString("G4", System.Globalization.CultureInfo.InvariantCulture));
        foreach (var a in report.Queries?.PerAttack ?? [])
            table.AddRow(Markup.Escape($"queries {a.Name}"), Markup.Escape($"mean {a.Mean:F0} / budget {a.Budget}" + (a.QueriesToSuccess is { } t ? $"; to success median {t.Median:F0}" : "")));
        table.AddRow("time", $"{watch.Elapsed.TotalSeconds:F1} s");
        table.AddRow("output", Markup.Escape(Path.GetFullPath(o.Out)));
        CommandRunner.Out.Write(table);
        resultJson["output"] = Path.GetFullPath(o.Out);
        JsonOutput.Write(resultJson);
        return ExitCodes.Ok;
    }

    /// <summary>result.json's queries: per query-based attack its budget, spend and queries to success, robust
    /// accuracy by budget, the model's total, and per sample the queries of each attack (null when none counts).</summary>
    private static Dictionary<string, object?>? QueriesJson(RobustnessReport report, IReadOnlyList<SampleOutcome> samples)
    {
        if (report.Queries is not { } q) return null;
        return new Dictionary<string, object?>
        {
            ["per_attack"] = q.PerAttack.Select(a => new Dictionary<string, object?>
            {
                ["name"] = a.Name, ["budget"] = a.Budget, ["samples"] = a.Samples, ["total"] = a.Total, ["mean"] = a.Mean, ["max"] = a.Max,
                ["successes"] = a.Successes,
                ["queries_to_success"] = a.QueriesToSuccess is { } t
                    ? new Dictionary<string, object?> { ["median"] = t.Median, ["q25"] = t.Q25, ["q75"] = t.Q75, ["q90"] = t.Q90, ["max"] = t.Max }
                    : null,
            }).ToArray(),
            ["robust_accuracy_by_budget"] = q.RobustAccuracyByBudget.Select(p => new Dictionary<string, object?> { ["queries"] = p.Queries, ["robust_accuracy"] = p.RobustAccuracy }).ToArray(),
            ["model_queries"] = q.ModelQueries,
            ["per_sample"] = samples.Select(s => s.PerEpsilon[0].Queries).ToArray(),
            ["per_sample_to_success"] = samples.Select(s => s.PerEpsilon[0].QueriesToSuccess).ToArray(),
        };
    }

    private static string Pct(double v) => (100 * v).ToString("F2", System.Globalization.CultureInfo.InvariantCulture) + " %";

    private List<string> WriteImages(IReadOnlyList<AdversarialExample> examples)
    {
        var files = new List<string>();
        if (o.Images == 0 || examples.Count == 0) return files;
        var dir = Path.Combine(o.Out, "images");
        foreach (var e in examples)
        {
            var path = Path.Combine(dir, $"sample-{e.Index}.png");
            AtomicFile.WriteAllBytes(path, PerturbationImages.StripPng(e));
            files.Add(Path.GetRelativePath(o.Out, path));
        }
        var grid = Path.Combine(dir, "grid.png");
        AtomicFile.WriteAllBytes(grid, PerturbationImages.GridPng(examples));
        files.Add(Path.GetRelativePath(o.Out, grid));
        return files;
    }
}
