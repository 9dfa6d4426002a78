using Microsoft.Data.Sqlite;
using Robustness.Core;
using Robustness.Evaluation;

namespace Robustness.Evaluation.Tests.Results;

/// <summary>A temporary folder removed when the test ends.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "robustness-store-tests-" + Guid.NewGuid().ToString("N"));
    public TempFolder() => Directory.CreateDirectory(Path);
    public string Sub(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>Small records for store and leaderboard tests.</summary>
internal static class Records
{
    public static ResultRecord Make(string model, double clean, double? robust, string dataset = "fashion-mnist", string norm = "linf", double eps = 0.1,
        string samples = "first-100", string attacks = "apgd-ce,apgd-t", long seed = 0, string kind = ResultRecord.EvalKind, double? certified = null,
        string? method = null, int count = 100, string? report = null, IReadOnlyList<string>? warnings = null, DateTimeOffset? date = null)
    {
        var stages = robust is { } r
            ? new[] { new StageRecord(eps, 0, attacks.Split(',')[0], Math.Min(clean, r + 0.05), 0, 0), new StageRecord(eps, 1, attacks.Split(',')[^1], r, (int)(r * count), 1) }
            : [];
        return new ResultRecord
        {
            Kind = kind,
            ModelSha256 = ResultRecord.Sha256Hex(model),
            ModelName = model,
            ModelPath = $"/models/{model}.safetensors",
            ModelArch = "tiny-cnn",
            Dataset = dataset,
            SamplesSha256 = ResultRecord.Sha256Hex(samples),
            SampleCount = count,
            Norm = norm,
            Epsilon = eps,
            AttackSet = attacks,
            AttackConfigSha256 = ResultRecord.Sha256Hex(attacks),
            Seed = seed,
            CleanAccuracy = clean,
            RobustAccuracy = robust,
            CertifiedAccuracy = certified,
            CertificationMethod = method,
            WarningCodes = warnings ?? [],
            AttackPrecision = "float32",
            ToolVersion = "0.1.0-test",
            Date = date ?? new DateTimeOffset(2025, 3, 4, 5, 6, 7, TimeSpan.Zero),
            ReportPath = report,
            Stages = stages,
            Sweep = [new SweepRecord(0, clean, null), new SweepRecord(eps, robust, certified)],
        };
    }
}

public sealed class ResultsStoreTests : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    private static SqliteConnection Raw(string path)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        c.Open();
        return c;
    }

    private static void Exec(string path, string sql)
    {
        using var c = Raw(path);
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    [Fact]
    public void Appended_records_come_back_with_every_field_stage_and_sweep_point()
    {
        var path = _temp.Sub("results.db");
        var store = ResultsStore.Open(path);
        Assert.Equal(0, store.FoundVersion);
        var record = Records.Make("tiny-cnn-pgd", 0.87, 0.76, warnings: ["zero-gradients", "monotone-sweep"], report: "/runs/pgd/report.json") with
        {
            CertifiedAccuracy = 0.5,
            CertificationMethod = "ibp",
            Sweep = [new SweepRecord(0, 0.87, 0.87), new SweepRecord(0.05, 0.81, null), new SweepRecord(0.1, 0.76, 0.5)],
        };
        var saved = store.Append(record);
        Assert.True(saved.Id > 0);

        var back = Assert.Single(ResultsStore.Open(path).Query());
        Assert.Equal(saved.Id, back.Id);
        Assert.Equal(record with { Id = saved.Id, Stages = back.Stages, Sweep = back.Sweep, WarningCodes = back.WarningCodes }, back);
        Assert.Equal(record.Stages, back.Stages);
        Assert.Equal(record.Sweep, back.Sweep);
        Assert.Equal(record.WarningCodes, back.WarningCodes);
        Assert.Equal(record.Key, back.Key);
        Assert.Equal(1, ResultsStore.Open(path).Count());
    }

    [Fact]
    public void Queries_filter_by_dataset_norm_epsilon_and_kind()
    {
        var store = ResultsStore.Open(_temp.Sub("results.db"));
        store.Append(Records.Make("a", 0.9, 0.5));
        store.Append(Records.Make("b", 0.9, 0.4, eps: 0.05));
        store.Append(Records.Make("c", 0.9, 0.3, norm: "l2", eps: 0.5));
        store.Append(Records.Make("d", 0.8, 0.2, dataset: "mnist"));
        store.Append(Records.Make("e", 0.9, null, kind: ResultRecord.CertifyKind, certified: 0.3, method: "ibp", attacks: "ibp"));
        string[] Names(ResultQuery q) => store.Query(q).Select(r => r.ModelName).ToArray();
        Assert.Equal(["a", "b", "c", "e"], Names(new ResultQuery { Dataset = "FASHION-MNIST" }));
        Assert.Equal(["c"], Names(new ResultQuery { Norm = "L2" }));
        // ε matches within rounding: 0.3 / 3 is not the double 0.1.
        Assert.NotEqual(0.1, 0.3 / 3);
        Assert.Equal(["a", "d", "e"], Names(new ResultQuery { Norm = "linf", Epsilon = 0.3 / 3 }));
        Assert.Equal(["e"], Names(new ResultQuery { Kind = ResultRecord.CertifyKind }));
        Assert.Empty(Names(new ResultQuery { Dataset = "cifar10" }));
    }

    [Fact]
    public void Default_path_follows_XDG_DATA_HOME_and_falls_back_to_local_share()
    {
        string? Env(string name, string? xdg) => name switch { "XDG_DATA_HOME" => xdg, "HOME" => "/home/ada", _ => null };
        Assert.Equal("/data/x/robustness/results.db", ResultsStore.DefaultPath(n => Env(n, "/data/x")));
        Assert.Equal("/home/ada/.local/share/robustness/results.db", ResultsStore.DefaultPath(n => Env(n, null)));
        // The XDG rule: a relative XDG_DATA_HOME is invalid and ignored.
        Assert.Equal("/home/ada/.local/share/robustness/results.db", ResultsStore.DefaultPath(n => Env(n, "relative/dir")));
    }

    [Fact]
    public void A_file_that_is_not_SQLite_is_refused_naming_it_and_left_untouched()
    {
        var path = _temp.Sub("notes.db");
        var bytes = System.Text.Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("these are my notes, not a database\n", 40)));
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InputException>(() => ResultsStore.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("not a SQLite database", e.Message);
        Assert.Equal(bytes, File.ReadAllBytes(path));
        Assert.Equal(["notes.db"], Directory.GetFiles(_temp.Path).Select(Path.GetFileName));

        File.WriteAllBytes(path, "SQLite format 3\0"u8.ToArray()); // the header alone is not a database either
        Assert.Contains("not a SQLite database", Assert.Throws<InputException>(() => ResultsStore.Open(path)).Message);
        Assert.Contains("is a directory", Assert.Throws<InputException>(() => ResultsStore.Open(_temp.Path)).Message);
    }

    [Fact]
    public void A_corrupt_database_is_refused_naming_it_and_left_untouched()
    {
        var path = _temp.Sub("results.db");
        var store = ResultsStore.Open(path);
        for (int i = 0; i < 60; i++) store.Append(Records.Make($"model-{i}", 0.9, 0.1 + i / 100.0));
        Assert.False(File.Exists(path + "-wal") && new FileInfo(path + "-wal").Length > 0, "the last connection should have checkpointed the log");
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 4 * 4096, $"expected several pages, got {bytes.Length} bytes");
        // Keep the header page, overwrite the b-tree pages after it.
        var rng = new Random(7);
        for (int i = 4096; i < bytes.Length; i++) bytes[i] = (byte)rng.Next(256);
        File.WriteAllBytes(path, bytes);

        var e = Assert.Throws<InputException>(() => ResultsStore.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("corrupt", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Equal(bytes, File.ReadAllBytes(path));
        Assert.Equal(["results.db"], Directory.GetFiles(_temp.Path).Select(Path.GetFileName)); // no log or shared-memory file left beside it
    }

    [Fact]
    public void A_SQLite_database_of_something_else_is_refused()
    {
        var path = _temp.Sub("other.db");
        Exec(path, "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 9.5);");
        var e = Assert.Throws<InputException>(() => ResultsStore.Open(path));
        Assert.Contains("not a robustness results database", e.Message);
        Assert.Contains("invoices", e.Message);
    }

    [Fact]
    public void A_newer_schema_is_refused_rather_than_guessed_at()
    {
        var path = _temp.Sub("results.db");
        ResultsStore.Open(path);
        Exec(path, "INSERT INTO schema_version (version, applied_utc, description) VALUES (99, '2030-01-01', 'from the future')");
        var e = Assert.Throws<InputException>(() => ResultsStore.Open(path));
        Assert.Contains("schema version 99 is newer", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void Leaderboards_do_not_create_a_database_that_is_not_there()
    {
        var path = _temp.Sub("absent.db");
        Assert.Contains("no results database", Assert.Throws<InputException>(() => ResultsStore.Open(path, create: false)).Message);
        Assert.False(File.Exists(path));
    }

    /// <summary>
    /// Version 1 as released (a frozen copy, never edited: if migration 1 in the code changes, this still is what old
    /// databases look like) with one evaluation (stages at two ε) and one certification record.
    /// </summary>
    private const string VersionOneDatabase = """
        CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_utc TEXT NOT NULL, description TEXT NOT NULL);
        CREATE TABLE results (
            id INTEGER PRIMARY KEY AUTOINCREMENT, result_key TEXT NOT NULL, kind TEXT NOT NULL, model_sha256 TEXT NOT NULL,
            model_name TEXT NOT NULL, model_path TEXT, model_arch TEXT, dataset TEXT NOT NULL, samples_sha256 TEXT NOT NULL,
            sample_count INTEGER NOT NULL, norm TEXT NOT NULL, epsilon REAL NOT NULL, attack_set TEXT NOT NULL,
            attack_config_sha256 TEXT NOT NULL, seed INTEGER NOT NULL, clean_accuracy REAL NOT NULL, robust_accuracy REAL,
            certified_accuracy REAL, certification_method TEXT, tool_version TEXT NOT NULL, created_utc TEXT NOT NULL, report_path TEXT);
        CREATE INDEX results_by_key ON results (result_key);
        CREATE TABLE stages (
            result_id INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE, epsilon REAL NOT NULL, position INTEGER NOT NULL,
            attack TEXT NOT NULL, robust_accuracy_after REAL NOT NULL, robust_after INTEGER NOT NULL, broken INTEGER NOT NULL,
            PRIMARY KEY (result_id, epsilon, position));
        INSERT INTO schema_version VALUES (1, '2025-01-01T00:00:00.0000000Z', 'results and per-attack stages');
        INSERT INTO results VALUES (1, 'k1', 'eval', 'aaaa1111', 'tiny-cnn-pgd', '/m/pgd.safetensors', 'tiny-cnn', 'fashion-mnist', 's1', 200,
            'linf', 0.1, 'apgd-ce,apgd-t', 'c1', 0, 0.87, 0.76, NULL, NULL, '0.1.0', '2025-01-02T03:04:05.0000000Z', '/runs/pgd/report.json');
        INSERT INTO stages VALUES (1, 0.05, 0, 'apgd-ce', 0.82, 164, 10), (1, 0.05, 1, 'apgd-t', 0.81, 162, 2),
                                  (1, 0.1, 0, 'apgd-ce', 0.76, 152, 22), (1, 0.1, 1, 'apgd-t', 0.755, 151, 1);
        INSERT INTO results VALUES (2, 'k2', 'certify', 'bbbb2222', 'ibp-small', NULL, 'ibp-small', 'fashion-mnist', 's1', 200,
            'linf', 0.1, 'ibp', 'c2', 0, 0.7, NULL, 0.42, 'ibp', '0.1.0', '2025-01-03T00:00:00.0000000Z', NULL);
        """;

    [Fact]
    public void A_version_1_database_is_migrated_to_version_2_keeping_every_record()
    {
        var path = _temp.Sub("v1.db");
        Exec(path, VersionOneDatabase);

        var store = ResultsStore.Open(path);
        Assert.Equal(1, store.FoundVersion);
        Assert.Equal(2, ResultsStore.CurrentSchemaVersion);
        using (var c = Raw(path))
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT group_concat(version) FROM (SELECT version FROM schema_version ORDER BY version)";
            Assert.Equal("1,2", cmd.ExecuteScalar());
        }

        var records = store.Query();
        Assert.Equal(2, records.Count);
        var eval = records[0];
        Assert.Equal(("tiny-cnn-pgd", 0.87, 0.76, "/runs/pgd/report.json"), (eval.ModelName, eval.CleanAccuracy, eval.RobustAccuracy!.Value, eval.ReportPath));
        Assert.Equal(4, eval.Stages.Count);
        Assert.Null(eval.WarningCodes); // not recorded before version 2: unknown, not "none"
        Assert.Null(eval.AttackPrecision);
        // The sweep is backfilled from the last stage at each ε (stages are cumulative).
        Assert.Equal([new SweepRecord(0.05, 0.81, null), new SweepRecord(0.1, 0.755, null)], eval.Sweep);
        var cert = records[1];
        Assert.Equal([new SweepRecord(0.1, null, 0.42)], cert.Sweep);
        Assert.Equal(0.42, cert.CertifiedAccuracy);

        // The migrated database takes new records and is not migrated again.
        store.Append(Records.Make("new", 0.9, 0.5));
        var again = ResultsStore.Open(path);
        Assert.Equal(2, again.FoundVersion);
        Assert.Equal(3, again.Count());
    }

    [Fact]
    public void Eight_concurrent_writers_with_their_own_connections_lose_nothing()
    {
        // Every writer opens the (not yet existing) database itself, so creation and migration race as well.
        var path = _temp.Sub("shared.db");
        const int writers = 8, each = 25;
        using var start = new Barrier(writers);
        var errors = new System.Collections.Concurrent.ConcurrentBag<Exception>();
        var threads = Enumerable.Range(0, writers).Select(w => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                var store = ResultsStore.Open(path);
                for (int i = 0; i < each; i++) store.Append(Records.Make($"w{w}-r{i}", 0.9, (w * each + i) / 1000.0, seed: w));
            }
            catch (Exception e) { errors.Add(e); }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromMinutes(3)), "a writer did not finish");
        Assert.Empty(errors);

        var all = ResultsStore.Open(path).Query();
        Assert.Equal(writers * each, all.Count);
        Assert.Equal(all.Count, all.Select(r => r.Id).Distinct().Count());
        var expected = Enumerable.Range(0, writers).SelectMany(w => Enumerable.Range(0, each).Select(i => $"w{w}-r{i}")).Order(StringComparer.Ordinal);
        Assert.Equal(expected, all.Select(r => r.ModelName).Order(StringComparer.Ordinal));
        Assert.All(all, r =>
        {
            Assert.Equal(2, r.Stages.Count);
            Assert.Equal(2, r.Sweep.Count);
            Assert.Equal(r.RobustAccuracy, r.Stages[^1].RobustAccuracyAfter);
        });
        using var c = Raw(path);
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", cmd.ExecuteScalar());
    }

    [Fact]
    public void A_report_becomes_a_record_with_its_key_numbers_and_stages()
    {
        var report = EvaluatorTests.HealthyRun.Value.Report;
        var r = ResultRecord.FromReport(report, "runs/x/report.json");
        Assert.Equal(("abc123", "test|mlp", report.Provenance.DatasetName), (r.ModelSha256, r.ModelName, r.Dataset));
        Assert.Equal((report.CleanAccuracy, report.RobustAccuracy, report.Total), (r.CleanAccuracy, r.RobustAccuracy!.Value, r.SampleCount));
        Assert.Equal(Path.GetFullPath("runs/x/report.json"), r.ReportPath);
        Assert.Equal("fgsm,pgd", r.AttackSet);
        Assert.Equal(report.EpsSweep.Count * report.PerAttack.Count, r.Stages.Count);
        Assert.Equal(report.EpsSweep.Select(e => (e.Epsilon, (double?)e.RobustAccuracy)), r.Sweep.Select(s => (s.Epsilon, s.RobustAccuracy)));
        Assert.Equal(ResultRecord.HashIndices(report.Provenance.SampleIndices), r.SamplesSha256);

        // The key: the same run gives the same key; another seed, other samples, other attack parameters or split do not.
        Assert.Equal(r.Key, ResultRecord.FromReport(report, null).Key);
        Assert.NotEqual(r.Key, ResultRecord.FromReport(report with { Provenance = report.Provenance with { Seed = 1 } }, null).Key);
        Assert.NotEqual(r.Key, ResultRecord.FromReport(report with { Provenance = report.Provenance with { SampleIndices = report.Provenance.SampleIndices.Reverse().ToArray() } }, null).Key);
        var attacks = report.Provenance.Attacks.Select((a, i) => i == 0 ? a : a with { Parameters = new Dictionary<string, string>(a.Parameters) { ["steps"] = "1000" } }).ToArray();
        Assert.NotEqual(r.Key, ResultRecord.FromReport(report with { Provenance = report.Provenance with { Attacks = attacks } }, null).Key);
        var train = ResultRecord.FromReport(report with { Provenance = report.Provenance with { DatasetSplit = "train" } }, null);
        Assert.Equal(report.Provenance.DatasetName + ":train", train.Dataset);
        Assert.NotEqual(r.Key, train.Key);

        // A shard is not a result, and a report without a model hash cannot be keyed.
        Assert.Throws<ParameterException>(() => ResultRecord.FromReport(report with { Shard = new ShardInfo(0, 2) }, null));
        Assert.Throws<ParameterException>(() => ResultRecord.FromReport(report with { Provenance = report.Provenance with { ModelSha256 = null } }, null));
    }
}
