using Robustness.Evaluation;

namespace Robustness.Cli.Common;

/// <summary>
/// The pieces of the verbs' --json documents that several verbs share: a robustness report's numbers (as in
/// report.json, without the per-sample outcomes, which report.json holds), a certificate's, the files written, and where
/// a run was recorded.
/// </summary>
public static class ReportJson
{
    public static Dictionary<string, object?> Summary(RobustnessReport r)
    {
        var summary = SingleLabelSummary(r);
        if (r.SubsetAccuracy is null) return summary;
        // Multi-label: the four headline numbers as report.json has them at the top level, and the per-label detail.
        summary["subset_accuracy"] = r.SubsetAccuracy;
        summary["hamming_accuracy"] = r.HammingAccuracy;
        summary["robust_subset_accuracy"] = r.RobustSubsetAccuracy;
        summary["robust_hamming_accuracy"] = r.RobustHammingAccuracy;
        summary["multi_label"] = r.MultiLabel;
        return summary;
    }

    private static Dictionary<string, object?> SingleLabelSummary(RobustnessReport r) => new()
    {
        ["norm"] = r.Norm,
        ["epsilon"] = r.Epsilon,
        ["samples"] = r.Total,
        ["clean_accuracy"] = r.CleanAccuracy,
        ["robust_accuracy"] = r.RobustAccuracy,
        ["verified_accuracy"] = r.VerifiedAccuracy,
        ["per_attack"] = r.PerAttack,
        ["eps_sweep"] = r.EpsSweep,
        ["per_class"] = r.PerClass,
        ["perturbation"] = r.Perturbation,
        ["queries"] = r.Queries is { } q ? new Dictionary<string, object?> { ["per_attack"] = q.PerAttack, ["robust_accuracy_by_budget"] = q.RobustAccuracyByBudget, ["model_queries"] = q.ModelQueries } : null,
        ["warnings"] = r.Warnings,
        ["shard"] = r.Shard,
        ["seed"] = r.Provenance.Seed,
        ["model"] = r.Provenance.ModelPath,
        ["model_sha256"] = r.Provenance.ModelSha256,
        ["dataset"] = r.Provenance.DatasetName,
        ["attacks"] = r.Provenance.Attacks.Select(a => a.Name).ToArray(),
    };

    public static Dictionary<string, object?> Files(ReportBundleFiles f) => new()
    {
        ["json"] = f.Json, ["markdown"] = f.Markdown, ["html"] = f.Html, ["images"] = f.Images, ["plots"] = f.Plots,
    };

    public static Dictionary<string, object?> Summary(CertificateReport r) => new()
    {
        ["method"] = r.Method,
        ["norm"] = r.Norm,
        ["samples"] = r.Total,
        ["epsilon"] = r.Epsilon,
        ["clean_accuracy"] = r.CleanAccuracy,
        ["base_clean_accuracy"] = r.BaseCleanAccuracy,
        ["verified_accuracy"] = r.VerifiedAccuracy,
        ["certified_accuracy"] = r.CertifiedAccuracy,
        ["abstention_rate"] = r.AbstentionRate,
        ["certified_accuracy_by_radius"] = r.CertifiedAccuracyByRadius,
        ["per_class"] = r.PerClass,
        ["empirical_check"] = r.EmpiricalCheck is { } e ? new Dictionary<string, object?>
        {
            ["attack"] = e.Attack, ["points"] = e.Points, ["radii"] = e.Radii, ["violations"] = e.Violations, ["passed"] = e.Passed,
        } : null,
        ["warnings"] = r.Warnings,
        ["seed"] = r.Provenance.Seed,
        ["model"] = r.Provenance.ModelPath,
        ["model_sha256"] = r.Provenance.ModelSha256,
        ["dataset"] = r.Provenance.DatasetName,
    };

    public static Dictionary<string, object?> Files(CertificateFiles f) => new()
    {
        ["json"] = f.Json, ["markdown"] = f.Markdown, ["html"] = f.Html, ["plot"] = f.Plot,
    };

    /// <summary>Where a run went in the results database; null when it was not recorded.</summary>
    public static Dictionary<string, object?>? Recorded((ResultRecord Record, string Database)? recorded) =>
        recorded is { } r ? new Dictionary<string, object?> { ["id"] = r.Record.Id, ["database"] = r.Database } : null;
}
