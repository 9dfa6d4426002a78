using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Evaluation;

/// <summary>
/// For a logistic-regression model (zoo <c>logistic</c>: logits = W·x + b, behind an optional per-channel Normalize) the
/// worst case under L∞ is exact in closed form, box constraints included: each coordinate moves by ε or up to the
/// bound it meets, in the direction that lowers the margin, so a margin m falls by Σ_j |w_j|·room_j (without the box,
/// ε‖w‖₁ — "a linear score moves by ε·‖w‖_dual"). Per (sample, label) for multi-label models, per (true class, other
/// class) pair for single-label ones. Comparing it with what the attacks achieved tells how close the evaluation came
/// to the truth: a robust accuracy below the exact one is impossible (a bug), one above it means the attacks fell short.
/// </summary>
internal static class LinearExactCheck
{
    public const string Code = "linear-exact-gap";
    /// <summary>Largest |robust − exact| (fraction of samples or decisions) before the check fires.</summary>
    public const double Tolerance = 0.005;

    /// <summary>Exact robust (subset accuracy or accuracy, Hamming accuracy or null) on <paramref name="rows"/>, or null
    /// when the model is not a plain logistic model or the norm is not L∞.</summary>
    public static (double Samples, double? Decisions)? Exact(IClassifier model, ImageDataset data, IReadOnlyList<long> rows, ThreatModel threat)
    {
        if (threat.Norm != Norm.Linf || model.Spec.Arch != "logistic" || model is not TorchClassifier torch) return null;
        using var scope = NewDisposeScope();
        var sd = torch.Network.state_dict();
        if (!sd.TryGetValue("fc.weight", out var weight) || !sd.TryGetValue("fc.bias", out var bias)) return null;
        using var idx = tensor(rows.ToArray(), ScalarType.Int64);
        var x = data.Images.index_select(0, idx).to(ScalarType.Float64).reshape(rows.Count, -1);
        var w = weight.detach().cpu().to(ScalarType.Float64);
        var b = bias.detach().cpu().to(ScalarType.Float64);
        if (model.Spec.Mean is { } mean && model.Spec.Std is { } std)
        {
            // z = W((x − μ)/σ) + b: per input coordinate its channel's μ and σ.
            int channels = model.Spec.InputShape[0], plane = (int)(x.shape[1] / channels);
            var sigma = tensor(Enumerable.Range(0, (int)x.shape[1]).Select(j => (double)std[std.Length == 1 ? 0 : j / plane]).ToArray());
            var mu = tensor(Enumerable.Range(0, (int)x.shape[1]).Select(j => (double)mean[mean.Length == 1 ? 0 : j / plane]).ToArray());
            w = w / sigma;
            b = b - w.matmul(mu);
        }
        double eps = threat.Epsilon;
        var roomUp = (Keep(threat.Bounds.Upper) - x).clamp(Keep(0), Keep(eps));
        var roomDown = (x - Keep(threat.Bounds.Lower)).clamp(Keep(0), Keep(eps));
        if (model.Spec.MultiLabel)
        {
            var z = x.matmul(w.t()) + b - Keep(model.Spec.DecisionOffset);
            var positive = w.clamp_min(Keep(0)).t();
            var negative = (-w).clamp_min(Keep(0)).t();
            // Largest fall of s·z: s = +1 moves against w (down where w > 0, up where w < 0), s = −1 with it.
            var fallOn = roomDown.matmul(positive) + roomUp.matmul(negative);
            var fallOff = roomUp.matmul(positive) + roomDown.matmul(negative);
            var on = MultiLabelTargets.On(data.Labels.index_select(0, idx)).to(z.device);
            var robust = where(on, (z - fallOn).gt(Keep(0)), (-z - fallOff).ge(Keep(0)));
            return (robust.all(1).to(ScalarType.Float64).mean().item<double>(), robust.to(ScalarType.Float64).mean().item<double>());
        }
        else
        {
            var labels = data.Labels.index_select(0, idx);
            int k = (int)w.shape[0];
            var z = x.matmul(w.t()) + b;
            var robust = z.argmax(1).eq(labels);
            for (int other = 0; other < k; other++)
            {
                // Margin of the true class over `other`: Δw = w_y − w_other, per sample.
                var dw = w.index_select(0, labels) - w[other];
                var margin = (z.gather(1, labels.unsqueeze(1)).squeeze(1) - z[.., other]);
                var fall = (roomDown * dw.clamp_min(Keep(0)) + roomUp * (-dw).clamp_min(Keep(0))).sum(1);
                robust = robust.logical_and(labels.eq(Keep(other)).logical_or((margin - fall).gt(Keep(0))));
            }
            return (robust.to(ScalarType.Float64).mean().item<double>(), null);
        }
    }

    /// <summary>The check against the evaluation's per-sample outcomes at the main ε.</summary>
    public static SanityCheckResult? Run(IClassifier model, ImageDataset data, IReadOnlyList<long> rows, ThreatModel threat,
        IReadOnlyList<SampleOutcome> samples, int mainEps)
    {
        if (Exact(model, data, rows, threat) is not { } exact) return null;
        int n = samples.Count;
        double robust = (double)samples.Count(s => s.RobustAt(mainEps)) / Math.Max(1, n);
        double gap = robust - exact.Samples;
        string detail = FormattableString.Invariant($"Exact robust accuracy of this linear model at L∞ ε = {threat.Epsilon}: {exact.Samples:0.####}; the attacks left {robust:0.####}.");
        if (exact.Decisions is { } hamming && model.Spec.MultiLabel)
        {
            int k = model.Spec.NumClasses;
            double robustHamming = samples.Sum(s => s.CorrectLabels(k).Count() - (s.PerEpsilon[mainEps].FlippedLabels?.Count ?? 0)) / (double)Math.Max(1, n * k);
            double hammingGap = robustHamming - hamming;
            if (Math.Abs(hammingGap) > Math.Abs(gap)) gap = hammingGap;
            detail = FormattableString.Invariant($"Exact worst case of this linear model at L∞ ε = {threat.Epsilon}: subset {exact.Samples:0.####}, Hamming {hamming:0.####}; the attacks left subset {robust:0.####}, Hamming {robustHamming:0.####}.");
        }
        return SanityChecks.Result(Code, SanityChecks.ModelScope, Math.Abs(gap) > Tolerance, gap, Tolerance, n, detail);
    }
}
