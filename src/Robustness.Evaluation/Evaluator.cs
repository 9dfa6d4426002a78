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
    bool Broken, string AttackName, double Distance, Bounds Bounds);

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
        if (model.Spec.MultiLabel)
            throw new InputException("evaluate: multi-label models are not supported by the robustness report (per-class accuracy needs one label)");
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
        // An attack that needs more than the model gives is refused before any work, naming those that can run.
        var access = ModelAccesses.Of(model);
        AttackRegistry.RequireRunnable(suites.SelectMany(s => s), access);
        bool labelsOnly = access == ModelAccess.Labels;
        long? queriesBefore = (model as IQueryClassifier)?.QueriesAnswered;

        // Certification bounds the float32 network itself (a reduced-precision view only speeds up attack gradients).
        var certifyModel = model is IReducedPrecisionClassifier reduced ? reduced.FullPrecision : model;
        var graph = options.CertifyIbp ? NetworkDescriptions.Of(certifyModel, "--certify") : null;
        int batchSize = options.BatchSize;
        int batchCount = (indices.Count + batchSize - 1) / batchSize;
        var ownedBatches = Enumerable.Range(0, batchCount).Where(b => options.Shard?.OwnsBatch(b) ?? true).ToArray();
        int totalUnits = ownedBatches.Length * (1 + epsilons.Count * attackNames.Length);
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
        }

        var attackDescriptions = suites[mainEps].Select(Describe).ToArray();
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
            ClassNames = ClassNamesOf(model, data),
            SampleIndices = indices,
            ModelPath = options.ModelPath,
            ModelSha256 = options.ModelSha256,
            ModelArch = model.Spec.Arch,
            ModelNotes = options.ModelNotes,
            WallSeconds = started.Elapsed.TotalSeconds,
            Date = date,
        };
        long? modelQueries = queriesBefore is { } before ? ((IQueryClassifier)model).QueriesAnswered - before : null;
        var report = ReportAggregator.Build(new ReportInputs(
            options.Norm.Name(), options.Epsilon, epsilons, attackNames, seconds, samples, checks, provenance,
            options.Shard is { Count: > 1 } s2 ? new ShardInfo(s2.Index, s2.Count) : null, modelQueries));
        Report(progress, "done", totalUnits, totalUnits);
        var examples = brokenExamples.Concat(robustExamples).Take(options.ImageCount).ToArray();
        return new EvaluationResult(report, examples, options.KeepAdversarials ? KeptPoints.Concat(kept) : null);
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
