using System.Diagnostics;
using System.Globalization;
using Robustness.Attacks;
using Robustness.Certification;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Core.Graphs;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Evaluation;

/// <summary>What every certification run shares: which points, seed, batch size, and the model's identity.</summary>
public abstract record CertificationOptions
{
    public long Seed { get; init; }
    /// <summary>Dataset rows to certify (in this order); null = every row.</summary>
    public IReadOnlyList<long>? SampleIndices { get; init; }
    public string? ModelPath { get; init; }
    public string? ModelSha256 { get; init; }
}

/// <summary>IBP verification at L∞ ε (and optionally more radii), cross-checked by attacks on the verified points.</summary>
public sealed record IbpCertificationOptions : CertificationOptions
{
    public required double Epsilon { get; init; }
    /// <summary>More ε values for the verified-accuracy curve.</summary>
    public IReadOnlyList<double> SweepEpsilons { get; init; } = [];
    /// <summary>Points per verification batch.</summary>
    public int BatchSize { get; init; } = 256;
    /// <summary>Attacks (registry names or a preset) run at ε on every clean-correct point; empty = no check.</summary>
    public string CheckAttacks { get; init; } = "apgd-ce";
    public AttackOptions? CheckAttackOptions { get; init; }
    /// <summary>IBP, or the better of IBP and CROWN-IBP per margin.</summary>
    public BoundMethod Bounds { get; init; } = BoundMethod.Ibp;

    public IReadOnlyList<double> AllEpsilons() => SweepEpsilons.Append(Epsilon).Distinct().Order().ToArray();
}

/// <summary>Randomized-smoothing certification (CERTIFY on every point) with the SmoothAdv cross-check on a subset.</summary>
public sealed record SmoothingCertificationOptions : CertificationOptions
{
    public required RandomizedSmoothing Smoothing { get; init; }
    /// <summary>Radii of the table (the curve is finer).</summary>
    public IReadOnlyList<double> TableRadii { get; init; } = [0, 0.25, 0.5, 0.75, 1.0];
    /// <summary>How many of the points (the first ones) the attack cross-check runs on; 0 = none.</summary>
    public int CheckPoints { get; init; } = 100;
    /// <summary>PREDICT's n on the clean and attacked points of the check.</summary>
    public int CheckSamples { get; init; } = 10_000;
    public int CheckSteps { get; init; } = 20;
    public int CheckNoiseSamples { get; init; } = 32;
}

/// <summary>
/// Runs a certification over a dataset and builds the <see cref="CertificateReport"/>: per point, a dispose scope per
/// batch (IBP) or per point (smoothing), results copied to small CPU arrays; then the empirical cross-check
/// (certified ≤ empirical on every checked point; a violation is a bug and becomes a loud warning).
/// </summary>
public sealed class Certifier
{
    public const double PaperSamples = 100_000;

    public CertificateReport Ibp(IClassifier model, ImageDataset data, IbpCertificationOptions o,
        IProgress<EvaluationProgress>? progress = null, CancellationToken cancel = default)
    {
        var watch = Stopwatch.StartNew();
        var date = DateTimeOffset.UtcNow;
        var bounds = model.Spec.Bounds;
        var epsilons = o.AllEpsilons();
        foreach (var e in epsilons) new ThreatModel(Norm.Linf, e, bounds).Validate(e == o.Epsilon ? "--eps" : "--eps-sweep");
        if (o.BatchSize < 1) throw new ParameterException(nameof(o.BatchSize), $"must be ≥ 1, got {o.BatchSize}");
        RequireSingleLabel(model, o.Bounds.Name());
        var graph = NetworkDescriptions.Of(model, o.Bounds.Name());
        var rows = Rows(data, o.SampleIndices);
        int main = epsilons.ToList().IndexOf(o.Epsilon);
        var attacks = string.IsNullOrWhiteSpace(o.CheckAttacks) ? [] : AttackRegistry.Preset(o.CheckAttacks, new ThreatModel(Norm.Linf, o.Epsilon, bounds), o.CheckAttackOptions);
        var samples = new List<CertifiedSample>();
        int batches = (rows.Length + o.BatchSize - 1) / o.BatchSize, unitsPerBatch = 1 + attacks.Count, done = 0;
        var verifier = new IntervalVerifier(o.Epsilon) { Method = o.Bounds };
        for (int start = 0; start < rows.Length; start += o.BatchSize)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var chunk = rows.Skip(start).Take(o.BatchSize).ToArray();
            var (x, y, labels) = Load(data, chunk, model.Device);
            var clean = Predict(model, x);
            var verified = new bool[epsilons.Count][];
            double[] worst = [];
            for (int e = 0; e < epsilons.Count; e++)
            {
                using var v = (verifier with { Epsilon = epsilons[e] }).Verify(graph, bounds, x, y);
                verified[e] = v.Verified.cpu().data<bool>().ToArray();
                if (e == main) worst = v.WorstMargin.cpu().data<double>().ToArray();
            }
            Report(progress, "verify", ++done, batches * unitsPerBatch);
            // Attack every clean-correct point at the main ε, each attack on the points still standing.
            var broken = new bool[chunk.Length];
            using (var generator = new Generator(Evaluator.MixSeed(o.Seed, main, 0, start)))
                for (int a = 0; a < attacks.Count; a++)
                {
                    var open = Enumerable.Range(0, chunk.Length).Where(i => clean[i] == labels[i] && !broken[i]).ToArray();
                    if (open.Length > 0 && o.Epsilon > 0)
                    {
                        using var attackScope = NewDisposeScope();
                        using var sel = tensor(open.Select(i => (long)i).ToArray(), ScalarType.Int64, device: model.Device);
                        using var result = attacks[a].Run(model, x.index_select(0, sel), new AttackTargets(y.index_select(0, sel)), new AttackContext(generator, null, cancel));
                        var success = result.Success.cpu().data<bool>().ToArray();
                        for (int j = 0; j < open.Length; j++) broken[open[j]] |= success[j];
                    }
                    Report(progress, attacks[a].Name, ++done, batches * unitsPerBatch);
                }
            for (int i = 0; i < chunk.Length; i++)
                samples.Add(new CertifiedSample
                {
                    Index = chunk[i],
                    Label = labels[i],
                    CleanPrediction = clean[i],
                    Prediction = clean[i],
                    Radius = verified[main][i] ? o.Epsilon : 0,
                    Certified = verified[main][i],
                    WorstMargin = worst[i],
                    VerifiedByRadius = epsilons.Select((_, e) => verified[e][i]).ToArray(),
                    RefutedAt = broken[i] ? [o.Epsilon] : [],
                });
        }

        var byRadius = epsilons.Select((e, k) => new RadiusAccuracy(e, Fraction(samples.Count(s => s.VerifiedByRadius![k]), samples.Count), samples.Count(s => s.VerifiedByRadius![k]))).ToArray();
        EmpiricalCheck? check = null;
        if (attacks.Count > 0)
        {
            // Verified implies correct on the clean point (it is in its own ball) and unbroken by any attack.
            int violations = samples.Count(s => s.Certified && (s.RefutedAt!.Count > 0 || !s.CleanCorrect));
            double robust = Fraction(samples.Count(s => s.CleanCorrect && s.RefutedAt!.Count == 0), samples.Count);
            double verifiedAcc = Fraction(samples.Count(s => s.Certified), samples.Count);
            check = new EmpiricalCheck
            {
                Attack = string.Join(", ", attacks.Select(a => a.Name)),
                Parameters = attacks.SelectMany(a => a.Parameters.Select(kv => ($"{a.Name}.{kv.Key}", Format(kv.Value)))).ToDictionary(p => p.Item1, p => p.Item2),
                Points = samples.Count,
                Radii = [new EmpiricalRadius(o.Epsilon, verifiedAcc, robust, robust, violations)],
                Violations = violations,
                Definition = "Every clean-correct point is attacked at ε (each attack on the points still standing); a point is empirically robust " +
                             "when it is classified correctly and no attack broke it. A verified point that an attack breaks is a violation: a bug in the bounds.",
            };
        }
        var warnings = new List<ReportWarning>();
        if (check is { Passed: false })
            warnings.Add(new ReportWarning("certified-but-broken",
                $"CERTIFICATE VIOLATED: {check.Violations} point(s) verified by {o.Bounds.Name()} at ε = {F(o.Epsilon)} were broken by {check.Attack}. A verified point cannot have an adversarial example inside its ball.",
                "This is a bug in the bound propagation or in the model description (IDescribedNetwork does not match forward()); do not trust these certificates and report it."));
        if (samples.Count > 0 && samples.All(s => !s.Certified) && o.Epsilon > 0)
            warnings.Add(new ReportWarning("nothing-verified",
                $"{o.Bounds.Name()} verified no point at ε = {F(o.Epsilon)}. Interval bounds are loose for networks not trained for them.",
                "Train with certified training (robust train --defense ibp) or use a smaller ε; empirical robustness (robust eval) may still be high."));
        if (o.Bounds == BoundMethod.CrownIbp && CrownIbp.Unsupported(graph) is { } why)
            warnings.Add(new ReportWarning("crown-not-applicable", $"CROWN-IBP cannot bound this model ({why}); the certificates are IBP's alone.",
                "Use --method ibp for this model, or a model without max-pooling (strided convolutions) for CROWN-IBP."));
        return Build(o.Bounds.Name(), "linf", model, data, samples, byRadius, check, null, warnings, verifier.Parameters.ToDictionary(kv => kv.Key, kv => Format(kv.Value)),
            o, o.BatchSize, watch, date) with
        {
            VerifiedAccuracy = Fraction(samples.Count(s => s.Certified), samples.Count),
            Epsilon = o.Epsilon,
        };
    }

    public CertificateReport Smoothing(IClassifier model, ImageDataset data, SmoothingCertificationOptions o,
        IProgress<EvaluationProgress>? progress = null, CancellationToken cancel = default)
    {
        var watch = Stopwatch.StartNew();
        var date = DateTimeOffset.UtcNow;
        var s = o.Smoothing;
        s.Validate();
        RequireSingleLabel(model, "smoothing");
        if (o.CheckPoints < 0) throw new ParameterException(nameof(o.CheckPoints), $"must be ≥ 0, got {o.CheckPoints}");
        if (o.CheckPoints > 0 && model is not IGradientClassifier)
            throw new InputException("smoothing: the empirical cross-check attacks the smoothed classifier with gradients; this model only gives scores (set CheckPoints = 0)");
        var rows = Rows(data, o.SampleIndices);
        int checkCount = Math.Min(o.CheckPoints, rows.Length);
        var checkRadii = o.TableRadii.Where(r => r > 0 && r <= s.MaxCertifiableRadius(s.N)).ToArray();
        int total = rows.Length + checkCount * (1 + checkRadii.Length), done = 0;

        // The base classifier on the clean points (no noise), in batches.
        var baseClean = new int[rows.Length];
        for (int start = 0; start < rows.Length; start += 256)
        {
            using var scope = NewDisposeScope();
            var chunk = rows.Skip(start).Take(256).ToArray();
            var (x, _, _) = Load(data, chunk, model.Device);
            Predict(model, x).CopyTo(baseClean, start);
        }

        var samples = new List<CertifiedSample>();
        for (int i = 0; i < rows.Length; i++)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var (x, _, labels) = Load(data, [rows[i]], model.Device);
            using var generator = new Generator(Evaluator.MixSeed(o.Seed, 0, 0, (int)rows[i]));
            var c = s.Certify(model, x, generator);
            bool certified = !c.Abstained && c.Prediction == labels[0];
            samples.Add(new CertifiedSample
            {
                Index = rows[i],
                Label = labels[0],
                CleanPrediction = baseClean[i],
                Prediction = c.Prediction,
                SmoothedPrediction = c.MonteCarloPrediction,
                Radius = certified ? c.Radius : 0,
                Certified = certified,
                PALower = c.PALower,
                CountA = c.CountA,
            });
            Report(progress, "certify", ++done, total);
        }
        double pointSeconds = watch.Elapsed.TotalSeconds / Math.Max(1, rows.Length);

        EmpiricalCheck? check = null;
        if (checkCount > 0)
            check = SmoothingCheck((IGradientClassifier)model, data, o, samples, checkCount, checkRadii, progress, ref done, total, cancel);
        for (int i = 0; i < samples.Count; i++)
            if (check is not null && i < checkCount && samples[i].RefutedAt is null) samples[i] = samples[i] with { RefutedAt = [] };

        var byRadius = Curve(samples, s);
        var warnings = new List<ReportWarning>();
        if (check is { Passed: false })
        {
            var worst = check.Radii.Where(r => r.Certified > r.EmpiricalRobust || r.Violations > 0).ToArray();
            warnings.Add(new ReportWarning("certified-above-empirical",
                $"CERTIFICATE VIOLATED: {check.Violations} point(s) certified at radius r were refuted by the attack at ε = r " +
                $"({string.Join("; ", worst.Select(r => $"r = {F(r.Radius)}: certified {Pct(r.Certified)} vs empirical {Pct(r.EmpiricalRobust)}, {r.Violations} violation(s)"))}). " +
                "A certificate can only fail with probability α per point.",
                "With α = " + F(s.Alpha) + " this is almost surely a bug (noise, bounds or the certificate itself); do not trust these numbers and report it."));
        }
        var cost = new SampleSizeCost(s.N, s.MaxCertifiableRadius(s.N), (long)PaperSamples, s.MaxCertifiableRadius((long)PaperSamples),
            s.N == PaperSamples
                ? $"With n = {s.N:N0} and α = {F(s.Alpha)} no point can be certified beyond σ·Φ⁻¹(α^(1/n)) = {F(s.MaxCertifiableRadius(s.N))}."
                : $"With n = {s.N:N0} (the paper uses {PaperSamples:N0}) no point can be certified beyond {F(s.MaxCertifiableRadius(s.N))} " +
                  $"(n = {PaperSamples:N0}: {F(s.MaxCertifiableRadius((long)PaperSamples))}), and every radius is smaller because p̲_A is looser.");
        if (s.N < PaperSamples)
            warnings.Add(new ReportWarning("reduced-samples", cost.Note,
                $"For the numbers to report, run with the paper's n = {PaperSamples:N0} (--noise-samples {PaperSamples:F0})."));
        var parameters = s.Parameters.ToDictionary(kv => kv.Key, kv => Format(kv.Value));
        var report = Build("smoothing", "l2", model, data, samples, byRadius, check, cost, warnings, parameters, o, s.BatchSize, watch, date);
        return report with
        {
            BaseCleanAccuracy = Fraction(samples.Count(x => x.CleanCorrect), samples.Count),
            CleanAccuracy = Fraction(samples.Count(x => x.SmoothedPrediction == x.Label), samples.Count),
            CertifiedAccuracy = Fraction(samples.Count(x => x.Certified), samples.Count),
            AbstentionRate = Fraction(samples.Count(x => x.Prediction == RandomizedSmoothing.Abstain), samples.Count),
            Provenance = report.Provenance with { SecondsPerPoint = pointSeconds },
        };
    }

    /// <summary>
    /// SmoothAdv at each radius on the first points; PREDICT judges the clean and the attacked point. A point is refuted
    /// at r when PREDICT confidently returns a class other than the label on either (an abstention refutes nothing).
    /// </summary>
    private static EmpiricalCheck SmoothingCheck(IGradientClassifier model, ImageDataset data, SmoothingCertificationOptions o, List<CertifiedSample> samples,
        int count, double[] radii, IProgress<EvaluationProgress>? progress, ref int done, int total, CancellationToken cancel)
    {
        var s = o.Smoothing;
        var cleanPredict = new int[count];
        var strictClean = new bool[count];
        for (int i = 0; i < count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var (x, _, labels) = Load(data, [samples[i].Index], model.Device);
            using var generator = new Generator(Evaluator.MixSeed(o.Seed, 1, 0, (int)samples[i].Index));
            cleanPredict[i] = s.Predict(model, x[0], o.CheckSamples, generator).Prediction;
            strictClean[i] = cleanPredict[i] == labels[0];
            Report(progress, "predict (check)", ++done, total);
        }
        var refuted = new List<double>[count];
        for (int i = 0; i < count; i++)
            refuted[i] = cleanPredict[i] != RandomizedSmoothing.Abstain && cleanPredict[i] != samples[i].Label ? [0.0] : [];
        var results = new List<EmpiricalRadius>();
        int violations = 0;
        int attackBatch = Math.Max(1, s.BatchSize / o.CheckNoiseSamples);
        foreach (var (r, k) in radii.Select((r, k) => (r, k)))
        {
            var attack = new SmoothedPgdAttack(s.Sigma, new ThreatModel(Norm.L2, r, model.Spec.Bounds)) { Steps = o.CheckSteps, NoiseSamples = o.CheckNoiseSamples };
            var strict = new bool[count];
            // Only points the smoothed classifier gets right (or abstains on) can be refuted by an attack.
            var targets = Enumerable.Range(0, count).Where(i => refuted[i].Count == 0).ToArray();
            for (int start = 0; start < targets.Length; start += attackBatch)
            {
                cancel.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var chunk = targets.Skip(start).Take(attackBatch).ToArray();
                var (x, y, labels) = Load(data, chunk.Select(i => samples[i].Index).ToArray(), model.Device);
                using var generator = new Generator(Evaluator.MixSeed(o.Seed, 2 + k, 0, (int)samples[chunk[0]].Index));
                var adv = attack.Run(model, x, y, generator);
                for (int j = 0; j < chunk.Length; j++)
                {
                    var p = s.Predict(model, adv[j], o.CheckSamples, generator).Prediction;
                    int i = chunk[j];
                    if (p != RandomizedSmoothing.Abstain && p != labels[j]) refuted[i].Add(r);
                    strict[i] = strictClean[i] && p == labels[j];
                    Report(progress, $"attack r={F(r)} (check)", done, total);
                }
            }
            int certifiedAtR = Enumerable.Range(0, count).Count(i => samples[i].Certified && samples[i].Radius >= r);
            int notRefuted = Enumerable.Range(0, count).Count(i => !refuted[i].Any(x => x <= r));
            int violated = Enumerable.Range(0, count).Count(i => samples[i].Certified && samples[i].Radius >= r && refuted[i].Any(x => x <= r));
            violations += violated;
            results.Add(new EmpiricalRadius(r, Fraction(certifiedAtR, count), Fraction(notRefuted, count), Fraction(strict.Count(b => b), count), violated));
            done += count;
            Report(progress, $"attack r={F(r)} (check)", done, total);
        }
        for (int i = 0; i < count; i++) samples[i] = samples[i] with { RefutedAt = refuted[i].ToArray() };
        return new EmpiricalCheck
        {
            Attack = "smoothadv-pgd",
            Parameters = new Dictionary<string, string>
            {
                ["steps"] = o.CheckSteps.ToString(CultureInfo.InvariantCulture), ["noise_samples"] = o.CheckNoiseSamples.ToString(CultureInfo.InvariantCulture),
                ["step_size"] = "2.5·ε/steps", ["predict_n"] = o.CheckSamples.ToString(CultureInfo.InvariantCulture), ["predict_alpha"] = F(s.Alpha),
            },
            Points = count,
            Radii = results,
            Violations = violations,
            Definition = "For each radius r, PGD on the Monte-Carlo soft smoothed classifier (Salman et al. 2019) attacks every point whose clean PREDICT " +
                         "is the label or an abstention; PREDICT (two-sided binomial test at α) judges the attacked point. A point is refuted at r when PREDICT " +
                         "confidently returns another class on the clean or the attacked point; empirical robust accuracy counts the points not refuted " +
                         "(an abstention refutes nothing), the strict variant counts those PREDICT labels correctly both times. Certified accuracy at r " +
                         "must not exceed the empirical one, and no point certified at r may be refuted at r.",
        };
    }

    /// <summary>Certified accuracy on a grid from 0 to past the largest radius (steps of σ/50, plus every table radius).</summary>
    private static RadiusAccuracy[] Curve(List<CertifiedSample> samples, RandomizedSmoothing s)
    {
        double max = Math.Max(s.MaxCertifiableRadius(s.N), samples.Count == 0 ? 0 : samples.Max(x => x.Radius));
        var radii = new SortedSet<double>();
        for (double r = 0; r <= max + s.Sigma / 50; r += s.Sigma / 50) radii.Add(Math.Round(r, 6));
        foreach (var r in new[] { 0, 0.25, 0.5, 0.75, 1.0 }) radii.Add(r);
        return radii.Select(r =>
        {
            int n = samples.Count(x => x.Certified && x.Radius >= r);
            return new RadiusAccuracy(r, Fraction(n, samples.Count), n);
        }).ToArray();
    }

    private static CertificateReport Build(string method, string norm, IClassifier model, ImageDataset data, List<CertifiedSample> samples,
        IReadOnlyList<RadiusAccuracy> byRadius, EmpiricalCheck? check, SampleSizeCost? cost, List<ReportWarning> warnings,
        IReadOnlyDictionary<string, string> parameters, CertificationOptions o, int batchSize, Stopwatch watch, DateTimeOffset date)
    {
        var classNames = Evaluator.ClassNamesOf(model, data);
        var perClass = Enumerable.Range(0, Math.Max(classNames.Count, samples.Count == 0 ? 0 : samples.Max(x => x.Label) + 1)).Select(c =>
        {
            var of = samples.Where(x => x.Label == c).ToArray();
            int clean = of.Count(x => method == "smoothing" ? x.SmoothedPrediction == x.Label : x.CleanCorrect);
            int cert = of.Count(x => x.Certified), abstained = of.Count(x => x.Prediction == RandomizedSmoothing.Abstain);
            return new ClassCertificate(c, c < classNames.Count ? classNames[c] : c.ToString(CultureInfo.InvariantCulture), of.Length, clean, cert, abstained,
                Fraction(clean, of.Length), Fraction(cert, of.Length));
        }).ToArray();
        return new CertificateReport
        {
            Method = method,
            Norm = norm,
            Total = samples.Count,
            CleanAccuracy = Fraction(samples.Count(x => x.CleanCorrect), samples.Count),
            AbstentionRate = 0,
            CertifiedAccuracyByRadius = byRadius,
            PerClass = perClass,
            EmpiricalCheck = check,
            SampleSize = cost,
            Warnings = warnings,
            Samples = samples,
            Provenance = new CertificateProvenance
            {
                ToolVersion = ToolInfo.Version,
                TorchSharpVersion = Devices.TorchSharpVersion,
                Libtorch = Devices.Describe(),
                Device = model.Device.ToString(),
                Seed = o.Seed,
                BatchSize = batchSize,
                Parameters = parameters,
                DatasetName = data.Name,
                DatasetSource = data.Source,
                ClassNames = classNames,
                SampleIndices = samples.Select(x => x.Index).ToArray(),
                ModelPath = o.ModelPath,
                ModelSha256 = o.ModelSha256,
                ModelArch = model.Spec.Arch,
                WallSeconds = watch.Elapsed.TotalSeconds,
                SecondsPerPoint = watch.Elapsed.TotalSeconds / Math.Max(1, samples.Count),
                Date = date,
            },
        };
    }

    /// <summary>The certificates are about the top-1 class; a multi-label model (K independent decisions) has none.</summary>
    private static void RequireSingleLabel(IClassifier model, string method)
    {
        if (model.Spec.MultiLabel)
            throw new InputException($"{method}: certifies the top-1 class of a single-label model; {model.Spec.Arch} is multi-label (one decision per label)");
    }

    private static long[] Rows(ImageDataset data, IReadOnlyList<long>? indices)
    {
        if (indices is null) return Enumerable.Range(0, data.Count).Select(i => (long)i).ToArray();
        if (indices.Count == 0) throw new InputException("--n: no points to certify");
        foreach (var i in indices)
            if (i < 0 || i >= data.Count) throw new InputException($"--indices: {i} is outside the dataset '{data.Name}' (0..{data.Count - 1})");
        return indices.ToArray();
    }

    private static (Tensor X, Tensor Y, int[] Labels) Load(ImageDataset data, long[] rows, Device device)
    {
        var idx = tensor(rows, ScalarType.Int64);
        var x = data.Images.index_select(0, idx).to(device);
        var y = data.Labels.index_select(0, idx).to(device);
        return (x, y, y.cpu().data<long>().Select(v => (int)v).ToArray());
    }

    private static int[] Predict(IClassifier model, Tensor x)
    {
        using var _ = no_grad();
        using var mode = Evaluator.EvalScope(model);
        using var pred = model.Logits(x).argmax(1).cpu();
        return pred.data<long>().Select(v => (int)v).ToArray();
    }

    private static double Fraction(int k, int n) => n == 0 ? 0 : (double)k / n;
    internal static string F(double v) => v.ToString("0.####", CultureInfo.InvariantCulture);
    private static string Pct(double v) => (100 * v).ToString("0.0", CultureInfo.InvariantCulture) + " %";

    private static string Format(object value) => value switch
    {
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static void Report(IProgress<EvaluationProgress>? progress, string phase, int done, int total) =>
        progress?.Report(new EvaluationProgress(phase, done, total));
}
