using Robustness.Core;

namespace Robustness.Evaluation;

/// <summary>The multi-label numbers of a report, derived from the per-sample label sets like every other aggregate.</summary>
internal sealed record MultiLabelAggregate(MultiLabelReport Report, IReadOnlyList<ClassAccuracy> PerClass, double CleanHamming)
{
    public static MultiLabelAggregate Build(IReadOnlyList<SampleOutcome> samples, IReadOnlyList<string> classNames, MultiLabelInputs inputs,
        IReadOnlyList<double> epsilons, int mainEps)
    {
        int k = classNames.Count, n = samples.Count;
        long decisions = (long)n * k;
        double F(long a, long b) => b == 0 ? 0 : (double)a / b;
        // Confusion counts per label, clean and worst case (a decision that is not robust counts as wrong).
        var clean = new (long Tp, long Fp, long Fn, long Tn)[k];
        var robust = new (long Tp, long Fp, long Fn, long Tn)[k];
        long cleanRight = 0, trueLabels = 0, predictedLabels = 0;
        foreach (var s in samples)
        {
            var truth = new HashSet<int>(s.LabelSet ?? []);
            var predicted = new HashSet<int>(s.PredictedSet ?? []);
            var flipped = new HashSet<int>(s.PerEpsilon[mainEps].FlippedLabels ?? []);
            trueLabels += truth.Count;
            predictedLabels += predicted.Count;
            for (int c = 0; c < k; c++)
            {
                bool on = truth.Contains(c), right = on == predicted.Contains(c), held = right && !flipped.Contains(c);
                if (right) cleanRight++;
                clean[c] = Add(clean[c], on, right);
                robust[c] = Add(robust[c], on, held);
            }
        }

        double P((long Tp, long Fp, long Fn, long Tn) t) => F(t.Tp, t.Tp + t.Fp);
        double R((long Tp, long Fp, long Fn, long Tn) t) => F(t.Tp, t.Tp + t.Fn);
        double F1((long Tp, long Fp, long Fn, long Tn) t) => F(2 * t.Tp, 2 * t.Tp + t.Fp + t.Fn);
        double Micro((long Tp, long Fp, long Fn, long Tn)[] t) =>
            F(2 * t.Sum(x => x.Tp), 2 * t.Sum(x => x.Tp) + t.Sum(x => x.Fp) + t.Sum(x => x.Fn));
        var perLabel = Enumerable.Range(0, k).Select(c => new LabelMetrics(c, classNames[c], (int)(clean[c].Tp + clean[c].Fn),
            P(clean[c]), R(clean[c]), F1(clean[c]), P(robust[c]), R(robust[c]), F1(robust[c]),
            F(clean[c].Tp + clean[c].Tn, n), F(robust[c].Tp + robust[c].Tn, n))).ToArray();
        var perClass = perLabel.Select(l => new ClassAccuracy(l.Label, l.Name, n, (int)(clean[l.Label].Tp + clean[l.Label].Tn),
            (int)(robust[l.Label].Tp + robust[l.Label].Tn), l.CleanAccuracy, l.RobustAccuracy)).ToArray();

        var sweep = new List<MultiLabelEpsilonResult>();
        for (int e = 0; e < epsilons.Count; e++)
        {
            long held = 0, flippedTotal = 0;
            int robustSamples = 0;
            var histogram = new int[k + 1];
            foreach (var s in samples)
            {
                int right = s.CorrectLabels(k).Count();
                int flipped = s.PerEpsilon[e].FlippedLabels?.Count ?? 0;
                held += right - flipped;
                flippedTotal += flipped;
                histogram[Math.Min(flipped, k)]++;
                if (s.CleanCorrect && !s.PerEpsilon[e].Broken) robustSamples++;
            }
            sweep.Add(new MultiLabelEpsilonResult(epsilons[e], F(robustSamples, n), F(held, decisions), F(flippedTotal, n), histogram));
        }
        var brokenMain = samples.Where(s => s.PerEpsilon[mainEps].FlippedLabels is { Count: > 0 }).ToArray();
        var report = new MultiLabelReport(
            inputs.DecisionThreshold, F(trueLabels, n), F(predictedLabels, n),
            Micro(clean), Micro(robust), k == 0 ? 0 : perLabel.Average(l => l.CleanF1), k == 0 ? 0 : perLabel.Average(l => l.RobustF1),
            sweep[mainEps].MeanLabelsFlipped, brokenMain.Length == 0 ? 0 : brokenMain.Average(s => s.PerEpsilon[mainEps].FlippedLabels!.Count),
            perLabel, sweep, inputs.LabelStages, inputs.Goal, inputs.Objectives);
        return new MultiLabelAggregate(report, perClass, F(cleanRight, decisions));
    }

    private static (long Tp, long Fp, long Fn, long Tn) Add((long Tp, long Fp, long Fn, long Tn) t, bool on, bool right) =>
        (on, right) switch
        {
            (true, true) => (t.Tp + 1, t.Fp, t.Fn, t.Tn),
            (true, false) => (t.Tp, t.Fp, t.Fn + 1, t.Tn),
            (false, true) => (t.Tp, t.Fp, t.Fn, t.Tn + 1),
            (false, false) => (t.Tp, t.Fp + 1, t.Fn, t.Tn),
        };
}
