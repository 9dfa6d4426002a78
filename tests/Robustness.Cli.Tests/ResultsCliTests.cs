using System.Diagnostics;
using System.Text.Json;
using Robustness.Evaluation;
using Robustness.Models;

namespace Robustness.Cli.Tests;

/// <summary>Four small evaluations recorded into one database, shared by the results-store, leaderboard and compare tests.</summary>
public sealed class RecordedRuns : IDisposable
{
    public TempDir Temp { get; } = new();
    public string Db => Temp.Sub("results.db");
    public string Baseline => Temp.Sub("standard");   // untrained tiny-cnn, ε = 0.1, first 16 samples
    public string Hardened => Temp.Sub("pgd");        // the shipped PGD-trained tiny-cnn, same samples and threat model
    public string OtherEps => Temp.Sub("eps005");     // baseline model at ε = 0.05
    public string OtherSamples => Temp.Sub("n12");    // baseline model on the first 12 samples
    public static string PgdModel => Path.Combine(Repo.Root, "data", "models", "tiny-cnn-pgd.safetensors");
    public CliResult BaselineRun { get; }

    public RecordedRuns()
    {
        CliResult Eval(string model, string eps, string n, string outDir) =>
            Cli.Run("eval", "--model", model, "--n", n, "--attacks", "fgsm,pgd", "--steps", "3", "--eps", eps, "--eps-sweep", $"0,{eps}",
                "--no-sanity", "--images", "2", "--threads", "1", "--results-db", Db, "--out", outDir);
        BaselineRun = Eval(Make.TinyCnn, "0.1", "16", Baseline);
        foreach (var r in new[] { BaselineRun, Eval(PgdModel, "0.1", "16", Hardened), Eval(Make.TinyCnn, "0.05", "16", OtherEps), Eval(Make.TinyCnn, "0.1", "12", OtherSamples) })
            Assert.True(r.ExitCode == 0, r.ToString());
    }

    public void Dispose() => Temp.Dispose();
}

[Collection("cli")]
public sealed class ResultsCliTests(RecordedRuns runs) : IClassFixture<RecordedRuns>, IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    private static CliResult QuickEval(string outDir, params string[] extra) =>
        Cli.Run(["eval", "--model", Make.TinyCnn, "--n", "8", "--attacks", "fgsm", "--eps", "0.05", "--no-sanity", "--images", "0", "--threads", "1", "--out", outDir, .. extra]);

    [Fact]
    public void Eval_appends_its_result_with_the_numbers_of_its_report()
    {
        var records = ResultsStore.Open(runs.Db).Query();
        Assert.Equal(4, records.Count);
        var report = JsonReportWriter.Read(Path.Combine(runs.Baseline, "report.json"));
        var r = records.Single(x => x.ReportPath == Path.Combine(runs.Baseline, "report.json"));
        Assert.Equal(ModelFile.Sha256(Make.TinyCnn), r.ModelSha256);
        Assert.Equal(("tiny-cnn-seed1", "fashion-mnist", "linf", 0.1, 16), (r.ModelName, r.Dataset, r.Norm, r.Epsilon, r.SampleCount));
        Assert.Equal((report.CleanAccuracy, report.RobustAccuracy), (r.CleanAccuracy, r.RobustAccuracy!.Value));
        Assert.Equal("fgsm,pgd", r.AttackSet);
        Assert.Equal(report.EpsSweep.Select(e => e.PerAttack.Select(a => a.RobustAccuracyAfter)).SelectMany(x => x), r.Stages.Select(s => s.RobustAccuracyAfter));
        Assert.Equal(ResultRecord.HashIndices(Enumerable.Range(0, 16).Select(i => (long)i).ToArray()), r.SamplesSha256);
        Assert.Equal("test", report.Provenance.DatasetSplit);
        Assert.Contains($"#{r.Id} in", runs.BaselineRun.Stdout, StringComparison.Ordinal); // the table wraps the path
        Assert.True(r.RobustAccuracy <= r.CleanAccuracy);
    }

    [Fact]
    public void Without_flags_eval_records_in_the_default_database_and_no_record_writes_none()
    {
        long Count() => File.Exists(ResultsIsolation.DefaultDatabase) ? ResultsStore.Open(ResultsIsolation.DefaultDatabase).Count() : 0;
        long before = Count();
        var r = QuickEval(_temp.Sub("default"));
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(before + 1, Count());
        var none = QuickEval(_temp.Sub("none"), "--no-record");
        Assert.True(none.ExitCode == 0, none.ToString());
        Assert.Equal(before + 1, Count());
        Assert.Contains("no (--no-record)", none.Stdout);
    }

    [Fact]
    public void A_results_db_that_is_not_a_database_stops_eval_before_anything_is_written()
    {
        var bad = _temp.File("notes.txt", System.Text.Encoding.UTF8.GetBytes(new string('x', 2000)));
        var outDir = _temp.Sub("out");
        Expect.BadInput(QuickEval(outDir, "--results-db", bad), bad, "not a SQLite database");
        Expect.NoPartialOutput(outDir);
        Assert.Equal(new string('x', 2000), File.ReadAllText(bad));

        // A damaged database: a valid header, garbage after it.
        var db = _temp.Sub("damaged.db");
        var store = ResultsStore.Open(db);
        foreach (var rec in ResultsStore.Open(runs.Db).Query()) store.Append(rec);
        var bytes = File.ReadAllBytes(db);
        for (int i = 4096; i < bytes.Length; i++) bytes[i] = (byte)(i * 31);
        File.WriteAllBytes(db, bytes);
        Expect.BadInput(QuickEval(outDir, "--results-db", db), db, "corrupt");
        Expect.NoPartialOutput(outDir);
        Assert.Equal(bytes, File.ReadAllBytes(db));

        Expect.BadInput(QuickEval(outDir, "--results-db", _temp.Path), _temp.Path, "is a directory");
        Expect.BadInput(QuickEval(outDir, "--results-db", db, "--no-record"), "--no-record", "--results-db");
        Expect.NoPartialOutput(outDir);
    }

    [Fact]
    public void Shards_are_not_recorded_and_their_merge_is()
    {
        var db = _temp.Sub("shards.db");
        foreach (var s in new[] { "0/2", "1/2" })
        {
            var r = QuickEval(_temp.Sub($"shard{s[0]}"), "--shard", s, "--results-db", db);
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains("no (a shard", r.Stdout);
        }
        Assert.False(File.Exists(db));
        var merged = Cli.Run("merge", _temp.Sub("shard0"), _temp.Sub("shard1"), "--results-db", db, "--out", _temp.Sub("merged"));
        Assert.True(merged.ExitCode == 0, merged.ToString());
        var record = Assert.Single(ResultsStore.Open(db).Query());
        Assert.Equal(8, record.SampleCount);
        Assert.Equal(Path.Combine(_temp.Sub("merged"), "report.json"), record.ReportPath);
        Assert.Contains($"recorded as #{record.Id}", merged.Stdout);
    }

    [Fact]
    public void Leaderboard_writes_html_markdown_and_json_and_ranks_by_robust_accuracy()
    {
        var outDir = _temp.Sub("board");
        var r = Cli.Run("leaderboard", "--results-db", runs.Db, "--out", outDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("fashion-mnist · L∞ ε = 0.1", r.Stdout);
        Assert.Contains("fashion-mnist · L∞ ε = 0.05", r.Stdout);
        foreach (var f in new[] { "leaderboard.html", "leaderboard.md", "leaderboard.json" }) Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        Expect.NoTempFiles(outDir);
        var html = File.ReadAllText(Path.Combine(outDir, "leaderboard.html"));
        // Links are relative to the output folder, so the page works wherever the runs and the board are moved together.
        Assert.Contains($"href=\"{Path.GetRelativePath(outDir, Path.Combine(runs.Hardened, "report.html"))}\"", html);
        Assert.Contains($"href=\"{Path.GetRelativePath(outDir, Path.Combine(runs.OtherEps, "report.html"))}\"", html);

        var json = Cli.Run("leaderboard", "--results-db", runs.Db, "--norm", "linf", "--eps", "0.1", "--json");
        Assert.True(json.ExitCode == 0, json.ToString());
        Assert.Equal("", json.Stderr);
        using var doc = JsonDocument.Parse(json.Stdout);
        var table = Assert.Single(doc.RootElement.GetProperty("tables").EnumerateArray());
        Assert.Equal(0.1, table.GetProperty("epsilon").GetDouble());
        var rows = table.GetProperty("rows").EnumerateArray().ToArray();
        Assert.Equal(2, rows.Length); // two models; the baseline model's two runs (16 and 12 samples) count as one row
        Assert.Equal("tiny-cnn-pgd", rows[0].GetProperty("model_name").GetString());
        Assert.True(rows[0].GetProperty("robust_accuracy").GetDouble() >= rows[1].GetProperty("robust_accuracy").GetDouble());
        Assert.Equal(2, rows[1].GetProperty("runs").GetInt32());
        // The baseline model's row is its 16- or its 12-sample run, whichever found less robustness; only the latter differs in samples.
        Assert.Equal(rows[1].GetProperty("sample_count").GetInt32() != 16, table.GetProperty("sample_sets_differ").GetBoolean());
        var all = ResultsStore.Open(runs.Db).Query(new ResultQuery { Epsilon = 0.1 }).Where(x => x.ModelName == "tiny-cnn-seed1").Min(x => x.RobustAccuracy);
        Assert.Equal(all, rows[1].GetProperty("robust_accuracy").GetDouble());
    }

    [Fact]
    public void Leaderboard_bad_input_is_one_line_and_exit_2()
    {
        var missing = _temp.Sub("none.db");
        Expect.BadInput(Cli.Run("leaderboard", "--results-db", missing), missing, "no results database");
        Assert.False(File.Exists(missing));
        var empty = _temp.Sub("empty.db");
        ResultsStore.Open(empty);
        Expect.BadInput(Cli.Run("leaderboard", "--results-db", empty, "--out", _temp.Sub("b1")), empty, "no results yet");
        Assert.False(Directory.Exists(_temp.Sub("b1")));
        Expect.BadInput(Cli.Run("leaderboard", "--results-db", runs.Db, "--dataset", "mnist"), "no results for mnist", "fashion-mnist linf ε=0.1");
        Expect.BadInput(Cli.Run("leaderboard", "--results-db", runs.Db, "--eps", "0.1"), "--eps", "--norm");
        Expect.BadInput(Cli.Run("leaderboard", "--results-db", runs.Db, "--norm", "l3"), "--norm");
        Expect.BadInput(Cli.Run("leaderboard", "--results-db", runs.Db, "--norm", "linf", "--eps", "abc"), "--eps", "abc");
        var text = _temp.File("text.db", new byte[4096]);
        Expect.BadInput(Cli.Run("leaderboard", "--results-db", text, "--json"), text, "not a SQLite database");
    }

    [Fact]
    public void Compare_puts_reports_side_by_side_with_a_paired_test()
    {
        var outDir = _temp.Sub("cmp");
        var r = Cli.Run("compare", runs.Baseline, Path.Combine(runs.Hardened, "report.json"), "--out", outDir);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("standard (baseline)", r.Stdout);
        Assert.Contains("McNemar", r.Stdout);
        foreach (var f in new[] { "compare.html", "compare.md", "compare.json" }) Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        Expect.NoTempFiles(outDir);

        var json = Cli.Run("compare", runs.Baseline, runs.Hardened, "--json");
        Assert.True(json.ExitCode == 0, json.ToString());
        using var doc = JsonDocument.Parse(json.Stdout);
        var a = JsonReportWriter.Read(Path.Combine(runs.Baseline, "report.json"));
        var b = JsonReportWriter.Read(Path.Combine(runs.Hardened, "report.json"));
        var robust = doc.RootElement.GetProperty("headline")[1];
        Assert.Equal(b.RobustAccuracy - a.RobustAccuracy, robust.GetProperty("delta_vs_baseline")[1].GetDouble(), 12);
        var main = doc.RootElement.GetProperty("paired").EnumerateArray().Single(p => p.GetProperty("epsilon").ValueKind == JsonValueKind.Number && p.GetProperty("epsilon").GetDouble() == 0.1);
        int onlyA = a.Samples.Count(s => s.RobustAt(a.EpsSweep.Count - 1) && !b.Samples.Single(t => t.Index == s.Index).RobustAt(b.EpsSweep.Count - 1));
        Assert.Equal(onlyA, main.GetProperty("only_baseline").GetInt32());
        Assert.Equal(16, main.GetProperty("both").GetInt32() + onlyA + main.GetProperty("only_other").GetInt32() + main.GetProperty("neither").GetInt32());
    }

    [Fact]
    public void Compare_refuses_incomparable_reports_unless_forced()
    {
        Expect.BadInput(Cli.Run("compare", runs.Baseline, runs.OtherEps), "threat models differ", "ε = 0.05", "--force");
        Expect.BadInput(Cli.Run("compare", runs.Baseline, runs.OtherSamples), "sample sets differ", "16 samples", "12 samples", "--force");
        var outDir = _temp.Sub("forced");
        var forced = Cli.Run("compare", runs.Baseline, runs.OtherEps, runs.OtherSamples, "--force", "--out", outDir);
        Assert.True(forced.ExitCode == 0, forced.ToString());
        Assert.Contains("not comparable", forced.Stdout);
        Assert.Contains("Not comparable:", File.ReadAllText(Path.Combine(outDir, "compare.md")));
        var json = Cli.Run("compare", runs.Baseline, runs.OtherEps, "--force", "--json");
        Assert.True(json.ExitCode == 0, json.ToString());
        using var doc = JsonDocument.Parse(json.Stdout);
        Assert.Equal(1, doc.RootElement.GetProperty("incompatibilities").GetArrayLength());
        Assert.Contains("not comparable", json.Stderr);
    }

    [Fact]
    public void Compare_bad_input_is_one_line_and_exit_2()
    {
        Expect.BadInput(Cli.Run("compare", runs.Baseline), "at least two reports");
        var missing = _temp.Sub("nope");
        Expect.BadInput(Cli.Run("compare", runs.Baseline, missing), missing, "no such report");
        var emptyDir = _temp.Dir("empty");
        Expect.BadInput(Cli.Run("compare", runs.Baseline, emptyDir), emptyDir, "no report.json");
        var notReport = _temp.File("other/report.json", "{\"hello\": 1}"u8.ToArray());
        Expect.BadInput(Cli.Run("compare", runs.Baseline, notReport), notReport, "not a robustness report");
        var garbage = _temp.File("garbage.json", "not json at all"u8.ToArray());
        Expect.BadInput(Cli.Run("compare", runs.Baseline, garbage), garbage, "not a robustness report");
        var text = File.ReadAllText(Path.Combine(runs.Baseline, "report.json")).Replace("\"schema_version\": 1", "\"schema_version\": 99");
        var future = _temp.File("future/report.json", System.Text.Encoding.UTF8.GetBytes(text));
        Expect.BadInput(Cli.Run("compare", runs.Baseline, future), future, "schema_version 99");
        var outDir = _temp.Sub("never");
        Expect.BadInput(Cli.Run("compare", runs.Baseline, runs.OtherEps, "--out", outDir), "--force");
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Certify_records_what_it_proved_and_the_leaderboard_puts_it_beside_the_attacks()
    {
        var db = _temp.Sub("cert.db");
        var cert = Cli.Run("certify", "--model", RecordedRuns.PgdModel, "--method", "ibp", "--eps", "0.004", "--eps-sweep", "0.002", "--n", "16",
            "--check-attacks", "none", "--threads", "1", "--results-db", db, "--out", _temp.Sub("cert"));
        Assert.True(cert.ExitCode == 0, cert.ToString());
        Assert.Contains("recorded 2 entries", cert.Stdout);
        var records = ResultsStore.Open(db).Query();
        Assert.Equal([0.002, 0.004], records.Select(r => r.Epsilon).Order());
        Assert.All(records, r => Assert.Equal((ResultRecord.CertifyKind, "ibp", Path.Combine(_temp.Sub("cert"), "certificate.json")), (r.Kind, r.CertificationMethod, r.ReportPath)));

        var eval = Cli.Run("eval", "--model", RecordedRuns.PgdModel, "--n", "16", "--attacks", "fgsm,pgd", "--steps", "5", "--eps", "0.004", "--no-sanity",
            "--images", "0", "--threads", "1", "--results-db", db, "--out", _temp.Sub("eval"));
        Assert.True(eval.ExitCode == 0, eval.ToString());
        var board = Cli.Run("leaderboard", "--results-db", db, "--norm", "linf", "--eps", "0.004", "--json");
        Assert.True(board.ExitCode == 0, board.ToString());
        using var doc = JsonDocument.Parse(board.Stdout);
        var row = doc.RootElement.GetProperty("tables")[0].GetProperty("rows").EnumerateArray().Single();
        var certified = records.Single(r => r.Epsilon == 0.004).CertifiedAccuracy!.Value;
        Assert.Equal(certified, row.GetProperty("certified_accuracy").GetDouble());
        // Same samples: what IBP proves can never exceed what the attacks left standing.
        Assert.True(certified <= row.GetProperty("robust_accuracy").GetDouble(), $"certified {certified} above robust {row.GetProperty("robust_accuracy")}");
        Assert.False(row.GetProperty("certified_above_robust").GetBoolean());
    }

    [Fact]
    public async Task Eight_eval_processes_recording_at_once_lose_nothing()
    {
        var db = _temp.Sub("concurrent.db");
        var procs = Enumerable.Range(0, 8).Select(i =>
        {
            var info = new ProcessStartInfo(Repo.RobustExecutable()) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "eval", "--model", Make.TinyCnn, "--n", "6", "--attacks", "fgsm", "--eps", "0.05", "--no-sanity", "--images", "0",
                         "--threads", "1", "--seed", i.ToString(System.Globalization.CultureInfo.InvariantCulture), "--results-db", db, "--out", _temp.Sub($"p{i}") })
                info.ArgumentList.Add(a);
            var p = Process.Start(info)!;
            return (Process: p, Stdout: p.StandardOutput.ReadToEndAsync(), Stderr: p.StandardError.ReadToEndAsync());
        }).ToArray();
        foreach (var (p, stdout, stderr) in procs)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
            await p.WaitForExitAsync(timeout.Token);
            var (o, e) = (await stdout, await stderr);
            Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}\n{o}\n{e}");
            p.Dispose();
        }
        var records = ResultsStore.Open(db).Query();
        Assert.Equal(Enumerable.Range(0, 8).Select(i => (long)i), records.Select(r => r.Seed).Order());
        Assert.Equal(Enumerable.Range(0, 8).Select(i => Path.Combine(_temp.Sub($"p{i}"), "report.json")).Order(), records.Select(r => r.ReportPath!).Order());
        Assert.All(records, r => Assert.Equal(JsonReportWriter.Read(r.ReportPath!).RobustAccuracy, r.RobustAccuracy));
    }
}
