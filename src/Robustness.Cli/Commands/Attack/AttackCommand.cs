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
            Out = p.GetValue(OutOption)!,
        }).Execute());
        return command;
    }

    public int Execute()
    {
        SharedOptions.RequirePositive(o.BatchSize, "--batch-size");
        if (o.Images < 0) throw new InputException($"--images: must be ≥ 0, got {o.Images}");
        using var run = LoadedRun.Open(o.Inputs, o.Seed, o.Device, o.Threads);
        var threat = new ThreatModel(o.Norm, o.Epsilon, run.Model.Spec.Bounds).Validate();
        var attacks = AttackLists.Build(o.Attack, threat, o.AttackOptions);
        IAttack attack = attacks.Count == 1 ? attacks[0] : new WorstCaseEnsemble(threat, attacks);
        using var outLock = OutputLock.Acquire(o.Out);
        // bf16 only for the gradient passes; the clean pass and every verdict below come from the float32 model.
        using var bf16 = Bf16Views.ViewOf(run.Model, o.Precision);
        IGradientClassifier attackModel = (IGradientClassifier?)bf16 ?? run.Model;

        var n = run.Indices.Length;
        var advAll = new float[n * run.Model.Spec.InputSize];
        var cleanPred = new long[n];
        var cleanConf = new double[n];
        var advPred = new long[n];
        var advConf = new double[n];
        var success = new bool[n];
        var distance = new double[n];
        var minNorm = new double[n];
        Array.Fill(minNorm, double.PositiveInfinity);
        bool hasMinNorm = false;
        var labels = new long[n];
        var generator = Seeding.Seed(o.Seed);
        var watch = Stopwatch.StartNew();

        using var subset = run.Data.Subset(run.Indices);
        var batches = (n + o.BatchSize - 1) / o.BatchSize;
        ProgressBar.Run($"{attack.Name} {threat}", batches, tick =>
        {
            foreach (var batch in subset.Batches(o.BatchSize, run.Device))
            {
                using var b = batch;
                using var scope = NewDisposeScope();
                Tensor cleanLogits;
                using (no_grad()) cleanLogits = run.Model.Logits(b.Inputs);
                using var result = attack.Run(attackModel, b.Inputs, new AttackTargets(b.Labels), new AttackContext(generator));
                var cp = cleanLogits.softmax(1).max(1);
                var ap = result.Logits.softmax(1).max(1);
                int off = b.Offset, len = b.Count;
                result.Adversarial.cpu().contiguous().data<float>().CopyTo(advAll.AsSpan(off * run.Model.Spec.InputSize, len * run.Model.Spec.InputSize));
                cp.indexes.cpu().data<long>().CopyTo(cleanPred.AsSpan(off, len));
                Copy(cp.values, cleanConf, off);
                ap.indexes.cpu().data<long>().CopyTo(advPred.AsSpan(off, len));
                Copy(ap.values, advConf, off);
                result.Success.cpu().data<bool>().CopyTo(success.AsSpan(off, len));
                result.Distance.cpu().data<double>().CopyTo(distance.AsSpan(off, len));
                b.Labels.cpu().data<long>().CopyTo(labels.AsSpan(off, len));
                if (result.MinimumNorm is { } mn)
                {
                    hasMinNorm = true;
                    mn.cpu().to(ScalarType.Float64).data<double>().CopyTo(minNorm.AsSpan(off, len));
                }
                tick();
            }
        });
        watch.Stop();

        var cleanCorrect = Enumerable.Range(0, n).Select(i => cleanPred[i] == labels[i]).ToArray();
        var robust = Enumerable.Range(0, n).Select(i => cleanCorrect[i] && advPred[i] == labels[i] && !success[i]).ToArray();
        int nClean = cleanCorrect.Count(c => c), nRobust = robust.Count(r => r);
        var changed = Enumerable.Range(0, n).Where(i => distance[i] > 0).Select(i => distance[i]).ToArray();
        var finiteMin = minNorm.Where(double.IsFinite).Order().ToArray();
        var resultJson = new Dictionary<string, object?>
        {
            ["schema_version"] = 1,
            ["attack"] = attack.Name,
            ["attacks"] = attacks.Select(a => a.Name).ToArray(),
            ["norm"] = o.Norm.Name(),
            ["eps"] = o.Epsilon,
            ["bounds"] = threat.Bounds.ToString(),
            ["samples"] = n,
            ["clean_accuracy"] = (double)nClean / n,
            ["robust_accuracy"] = (double)nRobust / n,
            ["attack_success_rate"] = nClean == 0 ? 0.0 : (double)Enumerable.Range(0, n).Count(i => cleanCorrect[i] && !robust[i]) / nClean,
            ["max_perturbation"] = distance.Length == 0 ? 0 : distance.Max(),
            ["mean_perturbation"] = distance.Length == 0 ? 0 : distance.Average(),
            ["mean_perturbation_nonzero"] = changed.Length == 0 ? 0 : changed.Average(),
            ["median_minimum_norm"] = hasMinNorm && finiteMin.Length > 0 ? finiteMin[finiteMin.Length / 2] : null,
            ["minimum_norm_found"] = hasMinNorm ? finiteMin.Length : null,
            ["precision"] = o.Precision.Name(),
            ["parameters"] = attacks.Select(a => new Dictionary<string, object?> { ["name"] = a.Name, ["parameters"] = a.Parameters }).ToArray(),
            ["seed"] = o.Seed,
            ["data"] = new Dictionary<string, object?> { ["name"] = run.Data.Name, ["source"] = run.Data.Source, ["split"] = o.Inputs.Split, ["sample_mode"] = o.Inputs.SampleMode, ["indices"] = run.Indices },
            ["timing"] = new Dictionary<string, object?> { ["seconds"] = watch.Elapsed.TotalSeconds, ["samples_per_s"] = n / Math.Max(1e-9, watch.Elapsed.TotalSeconds) },
            ["provenance"] = RunProvenance.Describe(run.Device, o.Seed, o.Inputs.Model, run.ModelSha256),
        };

        var advPath = Path.Combine(o.Out, "adversarial.safetensors");
        using (var scope = NewDisposeScope())
        {
            var shape = new long[] { n }.Concat(run.Model.Spec.InputShape.Select(d => (long)d)).ToArray();
            var tensors = new Dictionary<string, Tensor>
            {
                ["adversarial"] = tensor(advAll).reshape(shape),
                ["labels"] = tensor(labels),
                ["indices"] = tensor(run.Indices),
                ["clean_predictions"] = tensor(cleanPred),
                ["adversarial_predictions"] = tensor(advPred),
                ["success"] = tensor(success).to(ScalarType.Byte),
                ["distance"] = tensor(distance),
            };
            SafeTensors.Write(advPath, tensors, new Dictionary<string, string>
            {
                ["format"] = "robustness-adversarial/1",
                ["attack"] = attack.Name,
                ["norm"] = o.Norm.Name(),
                ["eps"] = o.Epsilon.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["seed"] = o.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["model_sha256"] = run.ModelSha256,
            });
        }

        var imageFiles = WriteImages(run, advAll, labels, cleanPred, cleanConf, advPred, advConf, success, distance, attack.Name, threat.Bounds);
        resultJson["images"] = imageFiles;
        AtomicFile.WriteAllText(Path.Combine(o.Out, "result.json"), Json.Serialize(resultJson));

        var table = new Table().AddColumn("").AddColumn("value");
        table.AddRow("attack", Markup.Escape($"{attack.Name} ({threat})"));
        table.AddRow("samples", n.ToString(System.Globalization.CultureInfo.InvariantCulture));
        table.AddRow("clean accuracy", Pct((double)nClean / n));
        table.AddRow("robust accuracy", Pct((double)nRobust / n));
        table.AddRow("max ‖δ‖", distance.Max().ToString("G4", System.Globalization.CultureInfo.InvariantCulture));
        if (hasMinNorm && finiteMin.Length > 0) table.AddRow("median minimum norm", finiteMin[finiteMin.Length / 2].ToString("G4", System.Globalization.CultureInfo.InvariantCulture));
        table.AddRow("time", $"{watch.Elapsed.TotalSeconds:F1} s");
        table.AddRow("output", Markup.Escape(Path.GetFullPath(o.Out)));
        CommandRunner.Out.Write(table);
        return ExitCodes.Ok;
    }

    private static string Pct(double v) => (100 * v).ToString("F2", System.Globalization.CultureInfo.InvariantCulture) + " %";

    private static void Copy(Tensor t, double[] dest, int offset)
    {
        var values = t.cpu().to(ScalarType.Float64).data<double>();
        values.CopyTo(dest.AsSpan(offset, (int)values.Count));
    }

    private List<string> WriteImages(LoadedRun run, float[] adv, long[] labels, long[] cleanPred, double[] cleanConf, long[] advPred, double[] advConf, bool[] success, double[] distance, string attackName, Bounds bounds)
    {
        var files = new List<string>();
        if (o.Images == 0) return files;
        var size = run.Model.Spec.InputSize;
        var shape = run.Model.Spec.InputShape;
        var cleanAll = run.Data.Images;
        // Prefer points the attack broke; fall back to any.
        var chosen = Enumerable.Range(0, labels.Length).OrderBy(i => success[i] && cleanPred[i] == labels[i] ? 0 : 1).ThenBy(i => i).Take(o.Images).ToArray();
        var examples = new List<AdversarialExample>();
        foreach (var i in chosen)
        {
            using var row = cleanAll[run.Indices[i]].contiguous();
            var clean = row.data<float>().ToArray();
            var a = adv.AsSpan(i * size, size).ToArray();
            examples.Add(new AdversarialExample(run.Indices[i], (int)labels[i], clean, a, shape, (int)cleanPred[i], cleanConf[i], (int)advPred[i], advConf[i],
                success[i] && cleanPred[i] == labels[i], attackName, distance[i], bounds));
        }
        var dir = Path.Combine(o.Out, "images");
        foreach (var e in examples)
        {
            var path = Path.Combine(dir, $"sample-{e.Index}.png");
            AtomicFile.WriteAllBytes(path, PerturbationImages.StripPng(e, run.ClassNames));
            files.Add(Path.GetRelativePath(o.Out, path));
        }
        var grid = Path.Combine(dir, "grid.png");
        AtomicFile.WriteAllBytes(grid, PerturbationImages.GridPng(examples));
        files.Add(Path.GetRelativePath(o.Out, grid));
        return files;
    }
}
