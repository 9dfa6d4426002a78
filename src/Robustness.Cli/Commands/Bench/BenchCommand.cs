using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using Robustness.Cli.Common;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Data;
using Robustness.Models;
using Spectre.Console;
using static TorchSharp.torch;

namespace Robustness.Cli.Commands.Bench;

/// <summary>Everything `robust bench` was asked to do.</summary>
public sealed record BenchOptions
{
    public bool Json { get; init; }
    public bool Quick { get; init; }
    /// <summary>0 = one per physical core.</summary>
    public int Threads { get; init; }
    public string? Compare { get; init; }
    public int Rounds { get; init; } = 1;
    public bool Bf16 { get; init; }
    public string? Bf16Model { get; init; }
    public IReadOnlyList<string> Only { get; init; } = [];
    public bool Scaling { get; init; }
    public string? Plot { get; init; }
}

/// <summary>
/// `robust bench`: throughput of the real attack, training and evaluation code paths on this machine, the achieved
/// GFLOP/s against a measured matmul peak, peak memory and the live-tensor balance; optionally side by side with a
/// reference implementation (plain PyTorch) run interleaved per workload group.
/// </summary>
public sealed class BenchCommand(BenchOptions o)
{
    public static readonly string[] Groups = ["matmul", "attack", "train", "eval", "certify"];
    public static readonly int[] ScalingBatches = [8, 32, 128, 256, 512];
    public static readonly string[] ScalingModels = ["tiny-cnn", "lenet5", "fmnist-cnn"];

    private static readonly Option<bool> QuickOption = new("--quick") { Description = "One repetition and small workloads: a smoke test, not numbers to quote." };
    private static readonly Option<int> ThreadsOption = new("--threads") { Description = "libtorch intra-op threads (0 = one per physical core).", DefaultValueFactory = _ => 0 };
    private static readonly Option<string?> CompareOption = new("--compare")
    {
        Description = "Reference command to run interleaved per workload group, e.g. \"/usr/bin/python3 tests/bench/pytorch_reference.py\" (gets --threads T --only GROUP appended); prints ours/reference.",
    };
    private static readonly Option<int> RoundsOption = new("--rounds") { Description = "Run every group (ours, then the reference) this many times and report the median of the rounds.", DefaultValueFactory = _ => 1 };
    private static readonly Option<bool> Bf16Option = new("--bf16") { Description = "Also time the attacks and the adversarial-training workloads with bfloat16 gradient passes, and compare robust accuracy with float32." };
    private static readonly Option<string?> Bf16ModelOption = new("--bf16-model") { Description = "Trained model for the bf16 accuracy check (default: the shipped data/models/tiny-cnn-standard.safetensors)." };
    private static readonly Option<string?> OnlyOption = new("--only") { Description = $"Comma-separated workload groups to run ({string.Join(", ", Groups)}, scaling, onnx: ONNX-executed vs zoo networks, needs python3-torch; presets: eval-fast, eval-standard and eval-autoattack on the PGD-trained tiny-cnn, minutes)." };
    private static readonly Option<bool> ScalingOption = new("--scaling") { Description = $"Attack throughput over batch sizes {string.Join(", ", ScalingBatches)} and models {string.Join(", ", ScalingModels)}." };
    private static readonly Option<string?> PlotOption = new("--plot") { Description = "Write the scaling plot (PNG) here (with --scaling)." };

    public static Command Definition()
    {
        var command = new Command("bench", "Measure attack, training and evaluation throughput on this machine (optionally against a PyTorch reference).")
        {
            QuickOption, ThreadsOption, CompareOption, RoundsOption, Bf16Option, Bf16ModelOption, OnlyOption, ScalingOption, PlotOption,
        };
        JsonOutput.AddTo(command, "Print the figures as one JSON document on stdout ({\"figures\": [...], \"memory\": {...}}); the table goes to stderr.");
        CommandRunner.SetAction(command, p => new BenchCommand(new BenchOptions
        {
            Json = JsonOutput.Requested(p),
            Quick = p.GetValue(QuickOption),
            Threads = p.GetValue(ThreadsOption),
            Compare = p.GetValue(CompareOption),
            Rounds = p.GetValue(RoundsOption),
            Bf16 = p.GetValue(Bf16Option),
            Bf16Model = p.GetValue(Bf16ModelOption),
            Only = (p.GetValue(OnlyOption) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            Scaling = p.GetValue(ScalingOption),
            Plot = p.GetValue(PlotOption),
        }).Execute());
        return command;
    }

    public int Execute()
    {
        if (o.Threads < 0) throw new InputException($"--threads: must be ≥ 0, got {o.Threads}");
        if (o.Rounds < 1) throw new InputException($"--rounds: must be ≥ 1, got {o.Rounds}");
        foreach (var g in o.Only)
            if (!Groups.Contains(g) && g is not ("scaling" or "onnx" or "presets"))
                throw new InputException($"--only: unknown workload group '{g}' (valid: {string.Join(", ", Groups)}, scaling, onnx, presets)");
        if (o.Plot is not null && !o.Scaling && !o.Only.Contains("scaling"))
            throw new InputException("--plot: draws the scaling study; add --scaling");
        if (o.Compare is not null && string.IsNullOrWhiteSpace(o.Compare))
            throw new InputException("--compare: the reference command is empty");

        TensorLedger.Reset();
        // Settle first: tensors other code left to the GC (e.g. earlier work in the same process) must not be
        // finalized inside our window and show up as a change.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var liveBefore = LiveTensors.Count;
        var machine = MachineInfo.Detect();
        int threads = o.Threads > 0 ? o.Threads : machine.PhysicalCores;
        set_num_threads(threads);
        var budget = o.Quick ? BenchBudget.Quick : BenchBudget.Full;
        // With --json, CommandRunner.Out is stderr (JsonOutput).
        IAnsiConsole table = CommandRunner.Out;

        var groups = o.Only.Count > 0 ? o.Only.ToList() : Groups.ToList();
        if (o.Scaling && !groups.Contains("scaling")) groups.Add("scaling");
        var reference = o.Compare is null ? null : new ReferenceRunner(o.Compare, threads, o.Quick);
        var loadBefore = MachineInfo.LoadAverage();

        var ours = new List<BenchMeasurement>();
        var theirs = new List<BenchMeasurement>();
        using (var data = DatasetCatalog.Load("fashion-mnist"))
        {
            var workloads = new BenchWorkloads(data, budget, threads);
            var scalingWorkloads = new BenchWorkloads(data, o.Quick ? budget : BenchBudget.Scaling, threads);
            for (int round = 0; round < o.Rounds; round++)
            {
                foreach (var group in groups)
                {
                    Progress($"bench: {group} (ours{(o.Rounds > 1 ? $", round {round + 1}/{o.Rounds}" : "")})");
                    ours.AddRange(RunGroup(group, group == "scaling" ? scalingWorkloads : workloads));
                    if (reference is not null && group is not ("eval" or "presets"))
                    {
                        Progress($"bench: {group} (reference)");
                        theirs.AddRange(reference.Run(group));
                    }
                }
            }
            if (o.Bf16) ours.AddRange(Bf16Accuracy(data, threads));
        }

        var ourFigures = MedianOverRounds(ours);
        var refFigures = MedianOverRounds(theirs);
        ourFigures = AddPeakFraction(ourFigures);
        refFigures = AddPeakFraction(refFigures);

        var peak = MachineInfo.PeakResidentBytes();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var liveRaw = LiveTensors.Count - liveBefore;
        var liveDelta = liveRaw - TensorLedger.ParametersConstructed;
        var drift = TensorLedger.WorkloadDrift;
        var loadAfter = MachineInfo.LoadAverage();

        if (o.Json)
        {
            // One document: every figure (ours, with the reference's beside it; then the reference's own) and the memory line.
            var figures = new JsonArray();
            foreach (var m in ourFigures)
            {
                var line = m.ToJson(machine);
                if (Find(refFigures, m) is { } r)
                {
                    line["reference_impl"] = r.Impl;
                    line["reference_" + r.Figure] = Math.Round(r.Value, 6);
                    line["speedup_vs_reference"] = Math.Round(Speedup(m, r), 4);
                }
                figures.Add(line);
            }
            foreach (var r in refFigures)
                figures.Add(r.ToJson(machine));
            var memory = new JsonObject
            {
                ["workload"] = "memory",
                ["model"] = "all",
                ["batch"] = 0,
                ["threads"] = threads,
                ["impl"] = BenchMeasurement.Ours,
                ["peak_rss_bytes"] = peak,
                ["live_tensor_delta"] = liveDelta,
                ["live_tensor_delta_raw"] = liveRaw,
                ["parameters_constructed"] = TensorLedger.ParametersConstructed,
                ["live_tensor_drift_in_workloads"] = drift,
                ["load_before"] = loadBefore,
                ["load_after"] = loadAfter,
                ["cores"] = machine.PhysicalCores,
                ["cpu"] = machine.CpuModel,
                ["libtorch"] = machine.Libtorch,
            };
            JsonOutput.WriteSerialized(new JsonObject { ["figures"] = figures, ["memory"] = memory }.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        }

        WriteTable(table, machine, threads, ourFigures, refFigures, peak, liveDelta, drift, loadBefore, loadAfter);
        if (o.Plot is not null)
        {
            var png = ScalingPlot.Png(ourFigures.Concat(refFigures).Where(m => m.Workload == "attack-pgd-linf" && m.Dtype == "float32").ToList(), machine, threads);
            AtomicFile.WriteAllBytes(o.Plot, png);
            table.MarkupLine($"scaling plot: {Markup.Escape(Path.GetFullPath(o.Plot))}");
        }
        // A leak is growth; a drop can only be other code's garbage finalized in the window, not ours.
        if (liveDelta > 0 || drift > 0)
        {
            CommandRunner.Error($"failure: the live tensor count changed by {liveDelta} over the run and by {drift} over the timed repetitions (a leak)");
            return ExitCodes.Failure;
        }
        return ExitCodes.Ok;
    }

    private IEnumerable<BenchMeasurement> RunGroup(string group, BenchWorkloads w)
    {
        switch (group)
        {
            case "matmul":
                yield return w.MatmulPeak();
                break;
            case "attack":
                foreach (var arch in new[] { "tiny-cnn", "fmnist-cnn" })
                    foreach (var batch in new[] { 256, 32 })
                    {
                        yield return w.Attack(arch, batch);
                        if (o.Bf16) yield return w.Attack(arch, batch, bf16: true);
                    }
                break;
            case "train":
                foreach (var workload in new[] { "train-standard", "train-fgsm-rs", "train-pgd7" })
                {
                    yield return w.Train(workload);
                    // bf16 training attacks are offered for PGD-AT only (the trainer refuses the others, docs/performance.md).
                    if (o.Bf16 && workload == "train-pgd7") yield return w.Train(workload, bf16: true);
                }
                break;
            case "eval":
            {
                var (model, name) = EvaluationModel();
                using (model) yield return w.Eval(model, name);
                break;
            }
            case "certify":
                yield return w.Smoothing();
                yield return w.IbpVerify();
                yield return w.Train("train-ibp");
                break;
            case "presets":
            {
                var (model, name) = PresetModel();
                using (model)
                    foreach (var m in new PresetWorkloads(w.Data, w.Budget, w.Threads, o.Quick).Run(model, name)) yield return m;
                break;
            }
            case "onnx":
                foreach (var m in new OnnxWorkloads(w.Budget, w.Threads, w.Data).Run()) yield return m;
                break;
            case "scaling":
                foreach (var arch in ScalingModels)
                    foreach (var batch in ScalingBatches)
                        yield return w.Attack(arch, batch);
                break;
        }
    }

    /// <summary>The shipped trained tiny-cnn (evaluation only attacks correctly classified points, so weights matter here).</summary>
    private static (TorchClassifier Model, string Name) EvaluationModel()
    {
        var shipped = ShippedModel();
        if (shipped is not null) return (Tracked(ModelFile.Load(shipped, CPU)), "tiny-cnn");
        random.manual_seed(0);
        return (Tracked(ModelZoo.CreateClassifier("tiny-cnn", CPU)), "tiny-cnn-untrained");
    }

    /// <summary>The shipped PGD-trained tiny-cnn, the model the issue's time comparison names.</summary>
    private static (TorchClassifier Model, string Name) PresetModel()
    {
        var dataDir = DatasetCatalog.FindRepoData();
        var path = dataDir is null ? null : Path.Combine(dataDir, "models", "tiny-cnn-pgd.safetensors");
        if (path is null || !File.Exists(path)) throw new InputException("--only presets: data/models/tiny-cnn-pgd.safetensors (the shipped PGD-trained model) was not found");
        return (Tracked(ModelFile.Load(path, CPU)), "tiny-cnn-pgd");
    }

    private static TorchClassifier Tracked(TorchClassifier model)
    {
        TensorLedger.Constructed(model.Module);
        return model;
    }

    private static string? ShippedModel()
    {
        var dataDir = DatasetCatalog.FindShippedData();
        var path = dataDir is null ? null : Path.Combine(dataDir, "models", "tiny-cnn-standard.safetensors");
        return path is not null && File.Exists(path) ? path : null;
    }

    /// <summary>
    /// Robust accuracy under the benchmark's PGD with the network in float32 and in bfloat16, on the first 1,000 test
    /// images (256 in --quick), same seed. bf16 is worth offering only where the two agree within 0.5 points.
    /// </summary>
    private IEnumerable<BenchMeasurement> Bf16Accuracy(ImageDataset data, int threads)
    {
        var path = o.Bf16Model ?? ShippedModel() ?? throw new InputException("--bf16-model: no trained model given and data/models/tiny-cnn-standard.safetensors was not found");
        using var model = Tracked(ModelFile.Load(path, CPU));
        using var half = new Bf16GradientClassifier(model);
        TensorLedger.Constructed(half.ParametersConstructed);
        var attack = BenchWorkloads.Pgd(model.Spec.Bounds);
        int n = Math.Min(o.Quick ? 256 : 1000, data.Count);
        double Accuracy(IGradientClassifier classifier)
        {
            long robust = 0;
            using var generator = new Generator(0);
            foreach (var batch in data.Take(n).Batches(256, CPU))
            {
                using var b = batch;
                using var scope = NewDisposeScope();
                using var r = attack.Run(classifier, b.Inputs, new AttackTargets(b.Labels), new AttackContext(generator));
                // Judge both adversarial sets with the float32 model: the question is whether the bf16 attack is as strong.
                using (no_grad())
                    robust += model.Logits(r.Adversarial).argmax(1).eq(b.Labels).sum().item<long>();
            }
            return 100.0 * robust / n;
        }
        var f32 = Accuracy(model);
        var bf16 = Accuracy(half);
        Progress(FormattableString.Invariant($"bench: bf16 accuracy check on {Path.GetFileName(path)}: robust accuracy {f32:F2}% (float32 attack) vs {bf16:F2}% (bf16 attack)"));
        yield return new BenchMeasurement("bf16-robust-accuracy", Path.GetFileNameWithoutExtension(path), 256, "accuracy_delta_points", bf16 - f32)
        {
            Threads = threads,
            Dtype = "bfloat16",
            Extra = new Dictionary<string, double> { ["robust_acc_float32"] = f32, ["robust_acc_bfloat16"] = bf16, ["images"] = n },
        };
    }

    /// <summary>One figure per (workload, model, batch, dtype, impl): the median over rounds, samples pooled.</summary>
    private static List<BenchMeasurement> MedianOverRounds(List<BenchMeasurement> all) =>
        all.GroupBy(m => (m.Key, m.Impl)).Select(g =>
        {
            var first = g.First();
            if (g.Count() == 1) return first;
            var extra = first.Extra.Keys.ToDictionary(k => k, k => BenchWorkloads.Median(g.Where(m => m.Extra.ContainsKey(k)).Select(m => m.Extra[k]).ToList()));
            return first with { Value = BenchWorkloads.Median(g.Select(m => m.Value).ToList()), Extra = extra, Samples = g.SelectMany(m => m.Samples).ToList() };
        }).ToList();

    /// <summary>Adds peak_fraction (achieved GFLOP/s over the matmul peak) to attack lines that carry gflop_per_s.</summary>
    private static List<BenchMeasurement> AddPeakFraction(List<BenchMeasurement> figures)
    {
        var peak = figures.FirstOrDefault(m => m.Workload == "matmul-peak")?.Value;
        if (peak is not > 0) return figures;
        return figures.Select(m => m.Extra.TryGetValue("gflop_per_s", out var g) && m.Workload != "matmul-peak"
            ? m with { Extra = new Dictionary<string, double>(m.Extra) { ["peak_fraction"] = g / peak.Value } }
            : m).ToList();
    }

    private static BenchMeasurement? Find(List<BenchMeasurement> figures, BenchMeasurement like) =>
        figures.FirstOrDefault(r => r.Key == like.Key && r.Figure == like.Figure);

    /// <summary>How many times faster ours is: a throughput ratio, or the inverse ratio of times.</summary>
    public static double Speedup(BenchMeasurement ours, BenchMeasurement reference) =>
        ours.HigherIsBetter ? ours.Value / reference.Value : reference.Value / ours.Value;

    private void WriteTable(IAnsiConsole console, MachineInfo machine, int threads, List<BenchMeasurement> ours, List<BenchMeasurement> theirs,
        long? peak, long liveDelta, long drift, double? loadBefore, double? loadAfter)
    {
        var inv = CultureInfo.InvariantCulture;
        console.MarkupLine(Markup.Escape(string.Create(inv,
            $"machine: {machine.CpuModel}, {machine.PhysicalCores} cores ({machine.LogicalCores} logical), {machine.Flags}; threads {threads}; libtorch {machine.Libtorch} (TorchSharp {machine.TorchSharp}); load {loadBefore:F2} → {loadAfter:F2}{(o.Quick ? "; --quick: smoke-test numbers" : "")}")));
        var refName = theirs.FirstOrDefault()?.Note ?? theirs.FirstOrDefault()?.Impl;
        var t = new Table().AddColumn("workload").AddColumn("model").AddColumn(new TableColumn("batch").RightAligned()).AddColumn("dtype")
            .AddColumn(new TableColumn("ours").RightAligned()).AddColumn("figure");
        if (theirs.Count > 0) t.AddColumn(new TableColumn(Markup.Escape(refName ?? "reference")).RightAligned()).AddColumn(new TableColumn("speed-up").RightAligned());
        t.AddColumn("detail");
        foreach (var m in ours)
        {
            var detail = new List<string>();
            if (m.Extra.TryGetValue("gflop_per_s", out var g) && m.Workload != "matmul-peak") detail.Add(string.Create(inv, $"{g:F1} GFLOP/s"));
            if (m.Extra.TryGetValue("peak_fraction", out var f)) detail.Add(string.Create(inv, $"{100 * f:F0}% of matmul peak"));
            if (m.Extra.TryGetValue("robust_acc_float32", out var a32) && m.Extra.TryGetValue("robust_acc_bfloat16", out var a16))
                detail.Add(string.Create(inv, $"robust acc {a32:F2}% f32, {a16:F2}% bf16"));
            if (m.Note is not null) detail.Add(m.Note);
            var row = new List<string> { m.Workload, m.Model, m.Batch.ToString(inv), m.Dtype, m.FormatValue(), m.Figure };
            if (theirs.Count > 0)
            {
                var r = Find(theirs, m);
                row.Add(r?.FormatValue() ?? "—");
                row.Add(r is null ? "—" : string.Create(inv, $"{Speedup(m, r):F2}×"));
            }
            row.Add(string.Join("; ", detail));
            t.AddRow(row.Select(Markup.Escape).ToArray());
        }
        // Redirected output defaults to 80 columns, which wraps every row of this table.
        var width = console.Profile.Width;
        console.Profile.Width = Math.Max(width, 160);
        try { console.Write(t); }
        finally { console.Profile.Width = width; }
        var refPeak = theirs.FirstOrDefault(m => m.Extra.ContainsKey("peak_fraction"));
        if (refPeak is not null)
            console.MarkupLine(Markup.Escape(string.Create(inv, $"reference fmnist-cnn attack: {refPeak.Extra["gflop_per_s"]:F1} GFLOP/s, {100 * refPeak.Extra["peak_fraction"]:F0}% of its matmul peak")));
        console.MarkupLine(Markup.Escape(string.Create(inv,
            $"peak resident memory {(peak is { } p ? $"{p / 1048576.0:F0} MiB" : "unknown")}; live tensors {(liveDelta >= 0 ? "+" : "")}{liveDelta} across the run, {(drift >= 0 ? "+" : "")}{drift} across the timed repetitions")));
    }

    private static void Progress(string message) => Console.Error.WriteLine(message);
}
