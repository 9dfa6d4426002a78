using System.Globalization;
using System.Text;
using Robustness.Core;

namespace Robustness.Evaluation;

/// <summary>The report as Markdown tables. Every string that comes from data, labels or file names is escaped.</summary>
public static class MarkdownReportWriter
{
    public static string Render(RobustnessReport r)
    {
        var sb = new StringBuilder();
        var p = r.Provenance;
        sb.AppendLine("# Robustness report").AppendLine();
        sb.AppendLine($"Model {Code(p.ModelPath ?? p.ModelArch)} on {Escape(p.DatasetName)} ({r.Total} samples), threat model {Escape(r.Norm)} ε = {Num(r.Epsilon)}.");
        if (r.VerifiedAccuracy is { } proven)
            sb.AppendLine().AppendLine($"**Attacks leave {Pct(r.RobustAccuracy)}, certificates prove {Pct(proven)}** (interval bound propagation): the true robust accuracy lies between.");
        if (r.Shard is { } s) sb.AppendLine().AppendLine($"**Shard {s.Index}/{s.Count} only** — merge all shards for the full result.");
        sb.AppendLine();
        sb.AppendLine("| metric | value |").AppendLine("|---|---|");
        sb.AppendLine($"| clean accuracy | {Pct(r.CleanAccuracy)} |");
        sb.AppendLine($"| robust accuracy (worst case, ε = {Num(r.Epsilon)}) | {Pct(r.RobustAccuracy)} |");
        if (r.VerifiedAccuracy is { } verified)
            sb.AppendLine($"| verified accuracy (IBP, ε = {Num(r.Epsilon)}) | {Pct(verified)} |");
        sb.AppendLine($"| successful adversarials | {r.Perturbation.Successful} |");
        sb.AppendLine($"| max ‖δ‖ / mean ‖δ‖ | {Num(r.Perturbation.MaxNorm)} / {Num(r.Perturbation.MeanNorm)} |");
        if (r.Perturbation.MedianMinimumNorm is { } med)
            sb.AppendLine($"| median minimum-norm distance ({r.Perturbation.MinimumNormCount} points) | {Num(med)} |");
        if (r.MultiLabel is { } ml)
        {
            sb.AppendLine($"| Hamming accuracy, clean / robust (worst case per label) | {Pct(r.HammingAccuracy ?? 0)} / {Pct(r.RobustHammingAccuracy ?? 0)} |");
            sb.AppendLine($"| micro-F1, clean / under attack | {Pct(ml.CleanMicroF1)} / {Pct(ml.RobustMicroF1)} |");
            sb.AppendLine($"| mean labels flipped (per sample / per broken sample) | {Num(ml.MeanLabelsFlipped, "0.###")} / {Num(ml.MeanLabelsFlippedBroken, "0.###")} |");
            sb.AppendLine($"| decision threshold | {Num(ml.DecisionThreshold, "0.###")} |");
        }
        sb.AppendLine($"| warnings | {r.Warnings.Count} |").AppendLine();
        if (r.MultiLabel is not null)
            sb.AppendLine("Multi-label model: clean and robust accuracy are subset (exact-match) accuracies; a sample is robust when no attack flips any of its labels.").AppendLine();

        sb.AppendLine("## Attacks (cumulative, AutoAttack order)").AppendLine();
        if (r.MultiLabel is null)
        {
            sb.AppendLine("| attack | broke | robust after | robust accuracy after | seconds |").AppendLine("|---|---:|---:|---:|---:|");
            foreach (var a in r.PerAttack)
                sb.AppendLine($"| {Escape(a.Name)} | {a.Broken} | {a.RobustAfter} | {Pct(a.RobustAccuracyAfter)} | {Num(a.Seconds, "0.##")} |");
        }
        else
        {
            sb.AppendLine("| attack | broke (samples) | robust subset after | labels flipped | robust Hamming after | seconds |").AppendLine("|---|---:|---:|---:|---:|---:|");
            foreach (var a in r.PerAttack)
                sb.AppendLine($"| {Escape(a.Name)} | {a.Broken} | {Pct(a.RobustAccuracyAfter)} | {a.LabelsFlipped} | {Pct(a.RobustHammingAfter ?? 0)} | {Num(a.Seconds, "0.##")} |");
        }
        sb.AppendLine();

        if (r.EpsSweep.Count > 1)
        {
            sb.AppendLine("## Accuracy vs ε").AppendLine();
            bool certified = r.VerifiedAccuracy is not null;
            sb.Append(certified ? "| ε | worst case | verified (IBP) |" : "| ε | worst case |");
            foreach (var a in r.PerAttack) sb.Append($" after {Escape(a.Name)} |");
            sb.AppendLine().Append(certified ? "|---:|---:|---:|" : "|---:|---:|");
            foreach (var _ in r.PerAttack) sb.Append("---:|");
            sb.AppendLine();
            foreach (var e in r.EpsSweep)
            {
                sb.Append($"| {Num(e.Epsilon)} | {Pct(e.RobustAccuracy)} |");
                if (certified) sb.Append($" {(e.VerifiedAccuracy is { } va ? Pct(va) : "–")} |");
                foreach (var a in e.PerAttack) sb.Append($" {Pct(a.RobustAccuracyAfter)} |");
                sb.AppendLine();
            }
            sb.AppendLine();
        }

        if (r.MultiLabel is { } m)
        {
            sb.AppendLine("## Multi-label").AppendLine();
            if (m.Goal is { } goal) sb.AppendLine($"Targeted: a sample is broken when the attack reaches its target set ({Escape(goal)}).").AppendLine();
            else if (m.LabelStages.Count > 0)
                sb.AppendLine($"After the sample attacks, each label attack ({Escape(string.Join(", ", m.LabelStages))}) ran on every correct (sample, label) decision still standing, asked to flip that label; a decision is robust when no attack flipped it.").AppendLine();
            else sb.AppendLine("No label attacks ran: per-label robustness counts only the labels the sample attacks flipped (an upper bound).").AppendLine();
            sb.AppendLine($"Objectives on multi-label targets: {Escape(m.Objectives)}.").AppendLine();
            sb.AppendLine("| ε | robust subset | robust Hamming | mean labels flipped |").AppendLine("|---:|---:|---:|---:|");
            foreach (var e in m.EpsSweep)
                sb.AppendLine($"| {Num(e.Epsilon)} | {Pct(e.RobustSubsetAccuracy)} | {Pct(e.RobustHammingAccuracy)} | {Num(e.MeanLabelsFlipped, "0.###")} |");
            sb.AppendLine();
            sb.AppendLine("| label | support | precision | recall | F1 | precision under attack | recall under attack | F1 under attack |").AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var l in m.PerLabel)
                sb.AppendLine($"| {Escape(l.Name)} | {l.Support} | {Pct(l.CleanPrecision)} | {Pct(l.CleanRecall)} | {Pct(l.CleanF1)} | {Pct(l.RobustPrecision)} | {Pct(l.RobustRecall)} | {Pct(l.RobustF1)} |");
            sb.AppendLine();
        }

        if (r.Queries is { } q)
        {
            sb.AppendLine("## Queries").AppendLine();
            sb.AppendLine("One query is one sample through the model. Queries to success: the queries an attack had used when it first held a point's adversarial, over the points it broke.").AppendLine();
            sb.AppendLine("| attack | budget | samples | queries (mean / max) | broke | to success: median | 25–75 % | 90 % |").AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
            foreach (var a in q.PerAttack)
                sb.AppendLine($"| {Escape(a.Name)} | {a.Budget?.ToString(CultureInfo.InvariantCulture) ?? "–"} | {a.Samples} | {Num(a.Mean, "0.#")} / {a.Max} | {a.Successes} | " +
                    (a.QueriesToSuccess is { } t ? $"{Num(t.Median, "0.#")} | {Num(t.Q25, "0.#")}–{Num(t.Q75, "0.#")} | {Num(t.Q90, "0.#")} |" : "– | – | – |"));
            sb.AppendLine().AppendLine("| query budget | robust accuracy |").AppendLine("|---:|---:|");
            foreach (var point in q.RobustAccuracyByBudget) sb.AppendLine($"| {point.Queries} | {Pct(point.RobustAccuracy)} |");
            sb.AppendLine().AppendLine("Below the budget this is an upper bound for a run with that budget: once an attack broke a point, later attacks did not run on it.");
            if (q.ModelQueries is { } mq) sb.AppendLine().AppendLine($"The model answered {mq.ToString("N0", CultureInfo.InvariantCulture)} queries in all (attacks, clean passes, final verdicts, sanity checks).");
            sb.AppendLine();
        }

        sb.AppendLine(r.MultiLabel is null ? "## Per class" : "## Per label (decision accuracy)").AppendLine();
        bool perClassVerified = r.PerClass.Any(c => c.Verified is not null);
        sb.AppendLine(perClassVerified ? "| class | label | count | clean | robust | verified |" : "| class | label | count | clean | robust |")
          .AppendLine(perClassVerified ? "|---:|---|---:|---:|---:|---:|" : "|---:|---|---:|---:|---:|");
        foreach (var c in r.PerClass)
            sb.AppendLine($"| {c.Class} | {Escape(c.Label)} | {c.Count} | {Pct(c.CleanAccuracy)} ({c.CleanCorrect}) | {Pct(c.RobustAccuracy)} ({c.RobustCorrect}) |"
                + (perClassVerified ? $" {(c.Verified is { } v ? $"{Pct(c.Count == 0 ? 0 : (double)v / c.Count)} ({v})" : "–")} |" : ""));
        sb.AppendLine();

        sb.AppendLine("## Warnings").AppendLine();
        if (r.Warnings.Count == 0) sb.AppendLine("No sanity check fired.");
        foreach (var w in r.Warnings)
            sb.AppendLine($"- **{Escape(w.Code)}**: {Escape(w.Message)} *What to do:* {Escape(w.Advice)}");
        sb.AppendLine();

        sb.AppendLine("## Provenance").AppendLine();
        sb.AppendLine("| field | value |").AppendLine("|---|---|");
        void Row(string k, string v) => sb.AppendLine($"| {k} | {v} |");
        Row("tool", Escape($"robustness {p.ToolVersion}"));
        Row("TorchSharp / libtorch", Escape($"{p.TorchSharpVersion} / {p.Libtorch}"));
        Row("device", Escape(p.Device));
        Row("seed", p.Seed.ToString(CultureInfo.InvariantCulture));
        Row("batch size", p.BatchSize.ToString(CultureInfo.InvariantCulture));
        Row("attack gradients", Escape(p.AttackPrecision) + (p.AttackPrecision == "float32" ? "" : " (points judged in float32)"));
        if (p.Certification is not null) Row("certification", Escape($"{p.Certification}: float64 interval bounds, last layer folded, widened for float32 rounding"));
        Row("dataset", $"{Escape(p.DatasetName)} ({Code(p.DatasetSource)})");
        Row("model", p.ModelPath is null ? Escape(p.ModelArch) : $"{Code(p.ModelPath)} ({Escape(p.ModelArch)})");
        if (p.ModelSha256 is not null) Row("model SHA-256", Code(p.ModelSha256));
        foreach (var (key, value) in p.ModelNotes) Row(Escape(key), Code(value));
        Row("samples", SampleSummary(p.SampleIndices));
        Row("wall time", Num(p.WallSeconds, "0.#") + " s");
        Row("date", p.Date.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture));
        Row("sharding", Escape(p.Sharding));
        foreach (var a in p.Attacks)
            Row($"attack {Escape(a.Name)}", Escape(string.Join(", ", a.Parameters.Select(kv => $"{kv.Key}={kv.Value}"))));
        return sb.ToString();
    }

    public static void Write(RobustnessReport report, string path) => AtomicFile.WriteAllText(path, Render(report));

    /// <summary>
    /// Escapes text for Markdown table cells and inline text: backslash, pipe, backticks, emphasis and link
    /// characters are backslash-escaped; &lt;, &gt; and &amp; become entities (no raw HTML); newlines become spaces.
    /// </summary>
    public static string Escape(string text)
    {
        var sb = new StringBuilder(text.Length + 8);
        foreach (var ch in text)
        {
            switch (ch)
            {
                case '<': sb.Append("&lt;"); break;
                case '>': sb.Append("&gt;"); break;
                case '&': sb.Append("&amp;"); break;
                case '\r': break;
                case '\n': sb.Append(' '); break;
                case '\\' or '|' or '`' or '*' or '_' or '[' or ']' or '#' or '!' or '~' or '{' or '}' or '(' or ')':
                    sb.Append('\\').Append(ch);
                    break;
                default: sb.Append(ch); break;
            }
        }
        return sb.ToString();
    }

    /// <summary>A file name or hash shown as text; escaped rather than put in backticks (which cannot hold a `).</summary>
    private static string Code(string text) => Escape(text);

    private static string SampleSummary(IReadOnlyList<long> idx)
    {
        if (idx.Count == 0) return "none";
        bool contiguous = idx.Zip(idx.Skip(1)).All(pair => pair.Second == pair.First + 1);
        return contiguous ? $"{idx.Count} (rows {idx[0]}–{idx[^1]})" : $"{idx.Count} (listed in report.json)";
    }

    /// <summary>A fraction as a percentage with two decimals, e.g. "93.50%".</summary>
    public static string Pct(double v) => (v * 100).ToString("0.00", CultureInfo.InvariantCulture) + "%";

    internal static string Num(double v, string format = "0.#####") => v.ToString(format, CultureInfo.InvariantCulture);
}
