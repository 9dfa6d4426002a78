using System.Diagnostics;
using Robustness.Attacks;
using Robustness.Certification;
using Robustness.Core;
using Robustness.Core.Graphs;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Evaluation;

/// <summary>A kept adversarial example for the perturbation gallery (CPU arrays, [C,H,W] row-major).</summary>
public sealed record AdversarialExample(
    long Index, int Label, float[] Clean, float[] Adversarial, int[] Shape,
    int CleanPrediction, double CleanConfidence, int AdversarialPrediction, double AdversarialConfidence,
    bool Broken, string AttackName, double Distance, Bounds Bounds)
{
    /// <summary>Multi-label: true, clean-predicted and adversarial-predicted label sets, and the probabilities of every
    /// label on the clean and the adversarial input (<see cref="Label"/> and the predictions are then −1).</summary>
    public MultiLabelSets? Sets { get; init; }
}

/// <summary>Label sets of a multi-label example (ascending class indices) and per-label probabilities.</summary>
public sealed record MultiLabelSets(int[] True, int[] Clean, int[] Adversarial, double[] CleanProbabilities, double[] AdversarialProbabilities);

/// <param name="Kept">With <see cref="EvaluationOptions.KeepAdversarials"/>: the point kept per sample at the main ε,
/// in evaluation order (this shard's samples only).</param>
public sealed record EvaluationResult(RobustnessReport Report, IReadOnlyList<AdversarialExample> Examples, KeptPoints? Kept = null);

/// <summary>
/// Clean accuracy plus the per-sample worst case over an attack ensemble (AutoAttack semantics): per batch and ε,
/// keep a robust mask (clean-correct points), run each attack only on still-robust points, record the first attack
/// that breaks each point. Works on <see cref="IAttack"/> directly. Per-sample outcomes stay on the CPU as small
/// arrays; a dispose scope per batch keeps native memory flat.
/// </summary>
public sealed class Evaluator
{
    public EvaluationResult Evaluate(IClassifier model, ImageDataset data, EvaluationOptions options,
        IProgress<EvaluationProgress>? progress = null, CancellationToken cancel = default)
    {
        var started = Stopwatch.StartNew();
        var date = DateTimeOffset.UtcNow;
        var bounds = model.Spec.Bounds;
        options.Validate(bounds);
        options.Shard?.Validate();
        bool multi = model.Spec.MultiLabel;
        if (multi != data.MultiLabel)
            throw new InputException(multi
                ? $"evaluate: the model is multi-label but {data.Name} has one class per image (it needs label sets)"
                : $"evaluate: {data.Name} has label sets (multi-label) but the model has a single-label head");
        if (multi && data.NumClasses != model.Spec.NumClasses)
            throw new InputException($"evaluate: {data.Name} has {data.NumClasses} labels but the model outputs {model.Spec.NumClasses}");
        if (options.CertifyIbp && multi)
            throw new ParameterException(nameof(EvaluationOptions.CertifyIbp), "IBP certifies the top-1 class of a single-label model; this model is multi-label");
        if (options.TargetGoal is not null && !multi)
            throw new ParameterException(nameof(EvaluationOptions.TargetGoal), "target label sets apply to multi-label models");
        var indices = ResolveIndices(data, options);
        using (var finite = data.Images.isfinite().all())
            if (!finite.item<bool>())
                throw new InputException($"{data.Name}: the dataset contains NaN or Inf pixels");
        var epsilons = options.AllEpsilons();
        int mainEps = epsilons.ToList().IndexOf(options.Epsilon);
        var suites = epsilons.Select(e => options.Attacks.Build(new ThreatModel(options.Norm, e, bounds))).ToArray();
        var attackNames = suites[mainEps].Select(a => a.Name).ToArray();
        if (attackNames.Length == 0) throw new ParameterException("Attacks", "the attack list is empty");
        foreach (var s in suites)
            if (!s.Select(a => a.Name).SequenceEqual(attackNames))
                throw new InvalidOperationException("the attack suite must build the same attacks (by name) for every ε");
        // Multi-label: the label stages (per-label attacks) follow the sample attacks; none for a targeted evaluation.
        var labelSuites = epsilons.Select(e => multi && options.TargetGoal is null
            ? (options.LabelAttacks ?? options.Attacks).Build(new ThreatModel(options.Norm, e, bounds)) : []).ToArray();
        var labelNames = labelSuites[mainEps].Select(a => "label:" + a.Name).ToArray();
        var sampleAttackCount = attackNames.Length;
        attackNames = [.. attackNames, .. labelNames];
        // An attack that needs more than the model gives is refused before any work, naming those that can run.
        var access = ModelAccesses.Of(model);
        AttackRegistry.RequireRunnable(suites.SelectMany(s => s).Concat(labelSuites.SelectMany(s => s)), access);
        bool labelsOnly = access == ModelAccess.Labels;
        long? queriesBefore = (model as IQueryClassifier)?.QueriesAnswered;

        // Certification bounds the float32 network itself (a reduced-precision view only speeds up attack gradients).
        var certifyModel = model is IReducedPrecisionClassifier reduced ? reduced.FullPrecision : model;
        var graph = options.CertifyIbp ? NetworkDescriptions.Of(certifyModel, "--certify") : null;
        int batchSize = options.BatchSize;
        int batchCount = (indices.Count + batchSize - 1) / batchSize;
        var ownedBatches = Enumerable.Range(0, batchCount).Where(b => options.Shard?.OwnsBatch(b) ?? true).ToArray();
        int totalUnits = ownedBatches.Length * (1 + epsilons.Count * attackNames.Length);
        var classNames = ClassNamesOf(model, data);
        int done = 0;
        var seconds = new double[epsilons.Count, attackNames.Length];
        var samples = new List<SampleOutcome>();
        var brokenExamples = new List<AdversarialExample>();
        var robustExamples = new List<AdversarialExample>();
        var sampleShape = data.SampleShape;
        var kept = new List<KeptPoints>();

        foreach (var b in ownedBatches)
        {
            cancel.ThrowIfCancellationRequested();
            int start = b * batchSize;
            int len = Math.Min(batchSize, indices.Count - start);
            var rows = indices.Skip(start).Take(len).ToArray();
            using var scope = NewDisposeScope();
            using var idx = tensor(rows, ScalarType.Int64);
            var x = data.Images.index_select(0, idx).to(model.Device);
            var y = data.Labels.index_select(0, idx).to(model.Device);
            if (multi)
            {
                samples.AddRange(MultiLabelBatch(model, x, y, rows, start, epsilons, mainEps, suites, labelSuites, options, progress, ref done, totalUnits,
                    seconds, brokenExamples, robustExamples, kept, sampleShape, bounds, cancel));
                continue;
            }
            var labels = y.cpu().data<long>().Select(v => (int)v).ToArray();
            int[] cleanPred;
            double[] cleanConf;
            using (no_grad())
            using (EvalScope(model))
            {
                var logits = model.Logits(x);
                (cleanPred, cleanConf) = Predictions.Of(logits, labelsOnly);
            }
            Report(progress, "clean", ++done, totalUnits);

            var perEps = new SampleEpsilonOutcome[len, epsilons.Count];
            var verified = new bool[epsilons.Count][];
            if (graph is not null)
                for (int e = 0; e < epsilons.Count; e++)
                {
                    using var v = new IntervalVerifier(epsilons[e]).Verify(graph, bounds, x, y);
                    verified[e] = v.Verified.cpu().data<bool>().ToArray();
                }
            // Gallery candidates at the main ε: clean-correct points in evaluation order, until enough broken and
            // enough robust examples are kept (broken ones are shown first; robust ones fill up).
            bool galleryFull = brokenExamples.Count >= options.ImageCount && robustExamples.Count >= options.ImageCount;
            var galleryRows = galleryFull ? [] : Enumerable.Range(0, len).Where(i => cleanPred[i] == labels[i]).ToArray();
            var galleryAdv = new Dictionary<int, GalleryAttempt>();

            var correct = Enumerable.Range(0, len).Select(i => cleanPred[i] == labels[i]).ToArray();
            for (int e = 0; e < epsilons.Count; e++)
            {
                var attacks = suites[e];
                int eIndex = e;
                // At ε = 0 the only admissible input is x itself, which the model already classifies correctly:
                // nothing can break, so don't spend the attack budget. (Whether attacks at ε = 0 really leave the
                // predictions alone — randomised models — is the eps-zero sanity check's job, on a subset.)
                bool attack = epsilons[e] > 0 && correct.Any(c => c);
                bool keep = options.KeepAdversarials && e == mainEps;
                var run = attack
                    ? WorstCaseBatch.Run(model, x, y, correct, attacks, StageSeeding.PerStage(a => MixSeed(options.Seed, eIndex, a, start)), cancel,
                        e == mainEps ? galleryRows.ToHashSet() : new HashSet<int>(), keep, (a, secs) =>
                        {
                            seconds[eIndex, a] += secs;
                            Report(progress, "attack", ++done, totalUnits, epsilons[eIndex], attacks[a].Name);
                        })
                    : null;
                if (run is null)
                    foreach (var a in attacks) Report(progress, "attack", ++done, totalUnits, epsilons[e], a.Name);
                if (keep) kept.Add(run?.Kept ?? KeptPoints.Of(model, x, x, new ThreatModel(options.Norm, epsilons[e], bounds)));
                foreach (var (i, g) in run?.Gallery ?? []) galleryAdv[i] = g;
                for (int i = 0; i < len; i++)
                    perEps[i, e] = run is null
                        ? new SampleEpsilonOutcome(epsilons[e], -1, 0, -1, 0, null, graph is null ? null : verified[e][i])
                        : new SampleEpsilonOutcome(epsilons[e], run.BrokenBy[i], run.Distance[i], run.AdversarialPrediction[i], run.AdversarialConfidence[i], run.MinimumNorm[i],
                            graph is null ? null : verified[e][i])
                        {
                            Queries = run.Queries?[i],
                            QueriesToSuccess = run.QueriesToSuccess[i],
                        };
            }

            if (galleryRows.Length > 0)
            {
                var cleanCpu = x.cpu().to(ScalarType.Float32);
                foreach (var i in galleryRows)
                {
                    if (!galleryAdv.TryGetValue(i, out var g)) continue;
                    var list = g.Broken ? brokenExamples : robustExamples;
                    if (list.Count >= options.ImageCount) continue;
                    list.Add(new AdversarialExample(rows[i], labels[i], cleanCpu[i].flatten().data<float>().ToArray(), g.Adversarial, sampleShape,
                        cleanPred[i], cleanConf[i], g.Prediction, g.Confidence, g.Broken, g.Attack, g.Distance, bounds));
                }
            }

            for (int i = 0; i < len; i++)
                samples.Add(new SampleOutcome
                {
                    Position = start + i,
                    Index = rows[i],
                    Label = labels[i],
                    CleanPrediction = cleanPred[i],
                    CleanConfidence = cleanConf[i],
                    PerEpsilon = Enumerable.Range(0, epsilons.Count).Select(e => perEps[i, e]).ToArray(),
                });
        }

        var checks = new List<SanityCheckResult>();
        if (options.SanityChecks && (options.Shard is null || options.Shard.Index == 0))
        {
            Report(progress, "sanity checks", done, totalUnits);
            var subset = indices.Take(options.SanitySubset).ToArray();
            checks.AddRange(SanityChecks.RunModelChecks(model, data, subset, options, suites[mainEps]));
            // Linear models: the exact worst case on every evaluated sample (cheap), against what the attacks achieved.
            if (options.Shard is not { Count: > 1 } && options.TargetGoal is null
                && LinearExactCheck.Run(model, data, indices, new ThreatModel(options.Norm, options.Epsilon, bounds), samples, mainEps) is { } exact)
                checks.Add(exact);
        }

        var attackDescriptions = suites[mainEps].Select(Describe)
            .Concat(labelSuites[mainEps].Select(a => Describe(a) with { Name = "label:" + a.Name })).ToArray();
        var provenance = new Provenance
        {
            ToolVersion = ToolInfo.Version,
            TorchSharpVersion = Devices.TorchSharpVersion,
            Libtorch = Devices.Describe(),
            Device = model.Device.ToString(),
            Seed = options.Seed,
            BatchSize = options.BatchSize,
            AttackPrecision = options.AttackPrecision,
            Certification = options.CertifyIbp ? "ibp" : null,
            Attacks = attackDescriptions,
            DatasetName = data.Name,
            DatasetSource = data.Source,
            DatasetSplit = options.DatasetSplit,
            ClassNames = classNames,
            SampleIndices = indices,
            ModelPath = options.ModelPath,
            ModelSha256 = options.ModelSha256,
            ModelArch = model.Spec.Arch,
            ModelNotes = options.ModelNotes,
            WallSeconds = started.Elapsed.TotalSeconds,
            Date = date,
        };
        var multiInputs = multi
            ? new MultiLabelInputs(model.Spec.DecisionThreshold, labelNames, options.TargetGoal?.Describe(classNames), MultiLabelObjectivesNote)
            : null;
        long? modelQueries = queriesBefore is { } before ? ((IQueryClassifier)model).QueriesAnswered - before : null;
        var report = ReportAggregator.Build(new ReportInputs(
            options.Norm.Name(), options.Epsilon, epsilons, attackNames, seconds, samples, checks, provenance,
            options.Shard is { Count: > 1 } s2 ? new ShardInfo(s2.Index, s2.Count) : null, multiInputs, modelQueries));
        Report(progress, "done", totalUnits, totalUnits);
        var examples = brokenExamples.Concat(robustExamples).Take(options.ImageCount).ToArray();
        return new EvaluationResult(report, examples, options.KeepAdversarials ? KeptPoints.Concat(kept) : null);
    }

    /// <summary>How the attacks' objectives read on a multi-label model (recorded in its report).</summary>
    public const string MultiLabelObjectivesNote =
        "ce = binary cross-entropy against the true set (targeted: against the goal); margin = the smallest per-label margin s·z; " +
        "hinge = per-label C&W hinge (Song et al. 2018); APGD uses the margin where it would use DLR; apgd-t's targets are the labels closest to flipping; " +
        "square, cw and deepfool work on the per-label margins";

    /// <summary>
    /// One multi-label batch: clean label sets, then per ε the sample and label stages (<see cref="MultiLabelWorstCase"/>),
    /// gallery candidates at the main ε, and the per-sample outcomes.
    /// </summary>
    private static IEnumerable<SampleOutcome> MultiLabelBatch(IClassifier model, Tensor x, Tensor y, long[] rows, int start,
        IReadOnlyList<double> epsilons, int mainEps, IReadOnlyList<IAttack>[] suites, IReadOnlyList<IAttack>[] labelSuites,
        EvaluationOptions options, IProgress<EvaluationProgress>? progress, ref int done, int totalUnits, double[,] seconds,
        List<AdversarialExample> brokenExamples, List<AdversarialExample> robustExamples, List<KeptPoints> kept, int[] sampleShape, Bounds bounds,
        CancellationToken cancel)
    {
        int len = rows.Length, k = (int)y.shape[1];
        double offset = model.Spec.DecisionOffset;
        bool[] truth, predicted;
        double[] cleanLogits;
        using (no_grad())
        using (EvalScope(model))
        {
            var logits = model.Logits(x);
            predicted = MultiLabelTargets.Predicted(logits).cpu().data<bool>().ToArray();
            cleanLogits = MultiLabelWorstCase.LogitsOf(logits);
        }
        truth = MultiLabelTargets.On(y).cpu().data<bool>().ToArray();
        int[] Set(bool[] flags, int i) => Enumerable.Range(0, k).Where(c => flags[i * k + c]).ToArray();
        var correctLabels = new bool[len, k];
        var exact = new bool[len];
        for (int i = 0; i < len; i++)
        {
            exact[i] = true;
            for (int c = 0; c < k; c++)
            {
                correctLabels[i, c] = truth[i * k + c] == predicted[i * k + c];
                exact[i] &= correctLabels[i, c];
            }
        }
        Report(progress, "clean", ++done, totalUnits);

        // Targeted: goals seeded per batch; a sample whose clean prediction already is its goal is not attacked.
        Tensor? goal = null;
        var attackable = exact.ToArray();
        if (options.TargetGoal is { } target)
        {
            using var generator = new Generator(MixSeed(options.Seed, -1, -1, start));
            goal = target.Build(y, generator);
            var differs = MultiLabelTargets.On(goal).ne(MultiLabelTargets.On(y)).any(1).cpu().data<bool>().ToArray();
            for (int i = 0; i < len; i++) attackable[i] &= differs[i];
        }

        bool galleryFull = brokenExamples.Count >= options.ImageCount && robustExamples.Count >= options.ImageCount;
        var galleryRows = galleryFull ? [] : Enumerable.Range(0, len).Where(i => attackable[i]).ToArray();
        var perEps = new SampleEpsilonOutcome[len, epsilons.Count];
        MultiLabelWorstCase? mainRun = null;
        for (int e = 0; e < epsilons.Count; e++)
        {
            int eIndex = e;
            bool anyFlippable = Enumerable.Range(0, len).Any(i => Enumerable.Range(0, k).Any(c => correctLabels[i, c]));
            bool attack = epsilons[e] > 0 && anyFlippable;
            bool keep = options.KeepAdversarials && e == mainEps;
            var stageNames = suites[e].Select(a => a.Name).Concat(labelSuites[e].Select(a => "label:" + a.Name)).ToArray();
            int localDone = done;
            MultiLabelWorstCase? run = null;
            if (attack)
                run = MultiLabelWorstCase.Run(model, x, y, attackable, correctLabels, suites[e], labelSuites[e], goal,
                    a => MixSeed(options.Seed, eIndex, a, start), cancel, e == mainEps ? galleryRows.ToHashSet() : new HashSet<int>(), keep,
                    (a, secs) =>
                    {
                        seconds[eIndex, a] += secs;
                        Report(progress, "attack", ++localDone, totalUnits, epsilons[eIndex], stageNames[a]);
                    });
            else
                foreach (var name in stageNames) Report(progress, "attack", ++localDone, totalUnits, epsilons[e], name);
            done = localDone;
            if (keep) kept.Add(run?.Kept ?? KeptPoints.Of(model, x, x, new ThreatModel(options.Norm, epsilons[e], bounds)));
            if (e == mainEps) mainRun = run;
            for (int i = 0; i < len; i++)
                perEps[i, e] = run is null
                    ? new SampleEpsilonOutcome(epsilons[e], -1, 0, -1, 0, null) { FlippedLabels = [] }
                    : new SampleEpsilonOutcome(epsilons[e], run.BrokenBy[i], run.Distance[i], -1, 0, run.MinimumNorm[i])
                    {
                        FlippedLabels = run.FlippedOf(i),
                        FlippedBy = run.FlippedByOf(i),
                        AdversarialSet = run.AdversarialSet[i],
                        Queries = run.Queries?[i],
                        QueriesToSuccess = run.QueriesToSuccess[i],
                    };
        }

        if (galleryRows.Length > 0 && mainRun is not null)
        {
            using var cleanCpu = x.cpu().to(ScalarType.Float32);
            double Probability(double z) => 1 / (1 + Math.Exp(-(z + offset)));
            foreach (var i in galleryRows)
            {
                if (!mainRun.Gallery.TryGetValue(i, out var g)) continue;
                var list = g.Broken ? brokenExamples : robustExamples;
                if (list.Count >= options.ImageCount) continue;
                var sets = new MultiLabelSets(Set(truth, i), Set(predicted, i), g.PredictedSet ?? [],
                    cleanLogits.Skip(i * k).Take(k).Select(Probability).ToArray(), (g.DecisionLogits ?? []).Select(Probability).ToArray());
                list.Add(new AdversarialExample(rows[i], -1, cleanCpu[i].flatten().data<float>().ToArray(), g.Adversarial, sampleShape,
                    -1, 0, -1, 0, g.Broken, g.Attack, g.Distance, bounds) { Sets = sets });
            }
        }

        var outcomes = new List<SampleOutcome>(len);
        for (int i = 0; i < len; i++)
        {
            double confidence = 1;
            for (int c = 0; c < k; c++)
            {
                double p = 1 / (1 + Math.Exp(-(cleanLogits[i * k + c] + offset)));
                confidence = Math.Min(confidence, Math.Max(p, 1 - p));
            }
            outcomes.Add(new SampleOutcome
            {
                Position = start + i,
                Index = rows[i],
                Label = -1,
                CleanPrediction = -1,
                CleanConfidence = confidence,
                LabelSet = Set(truth, i),
                PredictedSet = Set(predicted, i),
                PerEpsilon = Enumerable.Range(0, epsilons.Count).Select(e => perEps[i, e]).ToArray(),
            });
        }
        return outcomes;
    }

    /// <summary>Explicit indices, else a seeded random subset of <see cref="EvaluationOptions.SampleCount"/> rows (sorted), else all rows.</summary>
    public static IReadOnlyList<long> ResolveIndices(ImageDataset data, EvaluationOptions options)
    {
        if (options.SampleIndices is { } given)
        {
            if (given.Count == 0) throw new ParameterException("SampleIndices", "the list is empty");
            foreach (var i in given)
                if (i < 0 || i >= data.Count) throw new ParameterException("SampleIndices", $"{i} is outside the dataset '{data.Name}' (0..{data.Count - 1})");
            if (given.Distinct().Count() != given.Count) throw new ParameterException("SampleIndices", "duplicate indices");
            return given.ToArray();
        }
        if (options.SampleCount is { } n && n < data.Count)
        {
            var rng = new Random(unchecked((int)(options.Seed ^ (options.Seed >> 32))));
            var all = Enumerable.Range(0, data.Count).Select(i => (long)i).ToArray();
            rng.Shuffle(all);
            return all.Take(n).Order().ToArray();
        }
        return Enumerable.Range(0, data.Count).Select(i => (long)i).ToArray();
    }

    /// <summary>SplitMix64 of the parts: decorrelated seeds that depend only on what identifies the work unit.</summary>
    public static ulong MixSeed(long seed, int epsIndex, int attackIndex, int batchStart)
    {
        ulong h = (ulong)seed;
        foreach (var part in new ulong[] { (ulong)epsIndex, (ulong)attackIndex, (ulong)batchStart })
        {
            h ^= part + 0x9E3779B97F4A7C15UL + (h << 6) + (h >> 2);
            h = SplitMix(h);
        }
        return h;
    }

    private static ulong SplitMix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    internal static IDisposable? EvalScope(IClassifier model) => model is IGradientClassifier g ? g.EvalMode() : null;

    internal static IReadOnlyList<string> ClassNamesOf(IClassifier model, ImageDataset data)
    {
        if (data.ClassNames.Count >= model.Spec.NumClasses) return data.ClassNames;
        if (model.Spec.Labels.Count >= model.Spec.NumClasses) return model.Spec.Labels;
        return Enumerable.Range(0, model.Spec.NumClasses).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    }

    public static AttackDescription Describe(IAttack attack) =>
        new(attack.Name, attack.Needs == ModelAccess.Gradients,
            attack.Parameters.OrderBy(p => p.Key, StringComparer.Ordinal)
                .ToDictionary(p => p.Key, p => ParameterText.Format(p.Value)))
        { Needs = attack.Needs.Name() };


    private static void Report(IProgress<EvaluationProgress>? progress, string phase, int done, int total, double? eps = null, string? attack = null) =>
        progress?.Report(new EvaluationProgress(phase, done, total, eps, attack));
}
