using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Robustness.Core;

namespace Robustness.Evaluation;

/// <summary>What to read from the store; null fields match everything.</summary>
public sealed record ResultQuery
{
    /// <summary>Dataset label, case-insensitive ("fashion-mnist", "fashion-mnist:train").</summary>
    public string? Dataset { get; init; }
    public string? Norm { get; init; }
    /// <summary>Matched within a relative 1e-9 (ε values are stored as given).</summary>
    public double? Epsilon { get; init; }
    public string? Kind { get; init; }
}

/// <summary>
/// The results database: every evaluation (and certification) appended as a <see cref="ResultRecord"/>, in SQLite.
/// Safe for many concurrent writers (processes or threads, each with its own store): write-ahead logging, a busy
/// timeout, immediate write transactions and bounded retries with jitter. Opening validates the file (a non-SQLite or
/// corrupt file, or a newer schema, is an <see cref="InputException"/> naming it, and the file is left as it was) and
/// migrates an older schema in place (<see cref="ResultsSchema"/>).
/// </summary>
public sealed class ResultsStore
{
    public static int CurrentSchemaVersion => ResultsSchema.CurrentVersion;
    private const int BusyTimeoutSeconds = 30;
    private const int MaxAttempts = 8;
    private static readonly byte[] SqliteHeader = "SQLite format 3\0"u8.ToArray();

    private ResultsStore(string path, int foundVersion)
    {
        Path = path;
        FoundVersion = foundVersion;
    }

    /// <summary>Absolute path of the database file.</summary>
    public string Path { get; }
    /// <summary>The schema version the file had when opened (0: new or empty file); it is <see cref="CurrentSchemaVersion"/> now.</summary>
    public int FoundVersion { get; }

    /// <summary>
    /// <c>$XDG_DATA_HOME/robustness/results.db</c> when XDG_DATA_HOME is an absolute path (the XDG rule: a relative
    /// one is ignored), else <c>~/.local/share/robustness/results.db</c>.
    /// </summary>
    public static string DefaultPath(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var xdg = environment("XDG_DATA_HOME");
        var root = !string.IsNullOrEmpty(xdg) && System.IO.Path.IsPathRooted(xdg)
            ? xdg
            : System.IO.Path.Combine(environment("HOME") is { Length: > 0 } home ? home : Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return System.IO.Path.Combine(root, "robustness", "results.db");
    }

    /// <summary>Opens (and with <paramref name="create"/>, creates) the database at <paramref name="path"/>, migrating it to the current schema.</summary>
    public static ResultsStore Open(string path, bool create = true)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new ParameterException("ResultsDatabase", "a path is required");
        var full = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new InputException($"{full}: is a directory, not a results database file");
        if (File.Exists(full)) CheckHeader(full);
        else if (!create) throw new InputException($"{full}: no results database here (robust eval records one; or give the path of an existing one)");
        else
        {
            var dir = System.IO.Path.GetDirectoryName(full)!;
            try { Directory.CreateDirectory(dir); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            { throw new InputException($"{full}: cannot create its folder ({e.Message})"); }
        }
        int found = Guard(full, () => Retry(() =>
        {
            using var c = Connect(full, create);
            CheckIntegrity(c, full); // before anything is written to the file
            EnsureWal(c);
            return Migrate(c, full);
        }));
        return new ResultsStore(full, found);
    }

    /// <summary>Appends <paramref name="record"/> (with its stages and sweep) in one transaction; returns it with its id.</summary>
    public ResultRecord Append(ResultRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        long id = Guard(Path, () => Retry(() =>
        {
            using var c = Connect(Path, create: false);
            using var tx = c.BeginTransaction(deferred: false);
            using var insert = Command(c, tx, """
                INSERT INTO results (result_key, kind, model_sha256, model_name, model_path, model_arch, dataset, samples_sha256,
                    sample_count, norm, epsilon, attack_set, attack_config_sha256, seed, clean_accuracy, robust_accuracy,
                    certified_accuracy, certification_method, tool_version, created_utc, report_path, warning_codes, attack_precision)
                VALUES ($key, $kind, $sha, $name, $path, $arch, $dataset, $samples, $count, $norm, $eps, $attacks, $config, $seed,
                    $clean, $robust, $certified, $method, $tool, $date, $report, $warnings, $precision);
                SELECT last_insert_rowid();
                """);
            insert.Parameters.AddWithValue("$key", record.Key);
            insert.Parameters.AddWithValue("$kind", record.Kind);
            insert.Parameters.AddWithValue("$sha", record.ModelSha256);
            insert.Parameters.AddWithValue("$name", record.ModelName);
            insert.Parameters.AddWithValue("$path", (object?)record.ModelPath ?? DBNull.Value);
            insert.Parameters.AddWithValue("$arch", (object?)record.ModelArch ?? DBNull.Value);
            insert.Parameters.AddWithValue("$dataset", record.Dataset);
            insert.Parameters.AddWithValue("$samples", record.SamplesSha256);
            insert.Parameters.AddWithValue("$count", record.SampleCount);
            insert.Parameters.AddWithValue("$norm", record.Norm);
            insert.Parameters.AddWithValue("$eps", record.Epsilon);
            insert.Parameters.AddWithValue("$attacks", record.AttackSet);
            insert.Parameters.AddWithValue("$config", record.AttackConfigSha256);
            insert.Parameters.AddWithValue("$seed", record.Seed);
            insert.Parameters.AddWithValue("$clean", record.CleanAccuracy);
            insert.Parameters.AddWithValue("$robust", (object?)record.RobustAccuracy ?? DBNull.Value);
            insert.Parameters.AddWithValue("$certified", (object?)record.CertifiedAccuracy ?? DBNull.Value);
            insert.Parameters.AddWithValue("$method", (object?)record.CertificationMethod ?? DBNull.Value);
            insert.Parameters.AddWithValue("$tool", record.ToolVersion);
            insert.Parameters.AddWithValue("$date", record.Date.ToUniversalTime().ToString("o", CultureInfo.InvariantCulture));
            insert.Parameters.AddWithValue("$report", (object?)record.ReportPath ?? DBNull.Value);
            insert.Parameters.AddWithValue("$warnings", record.WarningCodes is null ? DBNull.Value : JsonSerializer.Serialize(record.WarningCodes));
            insert.Parameters.AddWithValue("$precision", (object?)record.AttackPrecision ?? DBNull.Value);
            long rowId = (long)insert.ExecuteScalar()!;

            using var stage = Command(c, tx, """
                INSERT INTO stages (result_id, epsilon, position, attack, robust_accuracy_after, robust_after, broken)
                VALUES ($id, $eps, $pos, $attack, $after, $robust, $broken)
                """);
            foreach (var s in record.Stages)
            {
                stage.Parameters.Clear();
                stage.Parameters.AddWithValue("$id", rowId);
                stage.Parameters.AddWithValue("$eps", s.Epsilon);
                stage.Parameters.AddWithValue("$pos", s.Position);
                stage.Parameters.AddWithValue("$attack", s.Attack);
                stage.Parameters.AddWithValue("$after", s.RobustAccuracyAfter);
                stage.Parameters.AddWithValue("$robust", s.RobustAfter);
                stage.Parameters.AddWithValue("$broken", s.Broken);
                stage.ExecuteNonQuery();
            }
            using var sweep = Command(c, tx, "INSERT INTO sweep (result_id, epsilon, robust_accuracy, certified_accuracy) VALUES ($id, $eps, $robust, $certified)");
            foreach (var s in record.Sweep)
            {
                sweep.Parameters.Clear();
                sweep.Parameters.AddWithValue("$id", rowId);
                sweep.Parameters.AddWithValue("$eps", s.Epsilon);
                sweep.Parameters.AddWithValue("$robust", (object?)s.RobustAccuracy ?? DBNull.Value);
                sweep.Parameters.AddWithValue("$certified", (object?)s.CertifiedAccuracy ?? DBNull.Value);
                sweep.ExecuteNonQuery();
            }
            tx.Commit();
            return rowId;
        }));
        return record with { Id = id };
    }

    /// <summary>Records matching <paramref name="query"/>, oldest first, with their stages and sweep.</summary>
    public IReadOnlyList<ResultRecord> Query(ResultQuery? query = null)
    {
        query ??= new ResultQuery();
        return Guard(Path, () => Retry(() =>
        {
            using var c = Connect(Path, create: false);
            using var tx = c.BeginTransaction(deferred: true); // one snapshot for the three reads
            var where = new StringBuilder("WHERE 1 = 1");
            var parameters = new List<(string Name, object Value)>();
            void Filter(string clause, string name, object? value)
            {
                if (value is null) return;
                where.Append(" AND ").Append(clause);
                parameters.Add((name, value));
            }
            Filter("r.dataset = $dataset COLLATE NOCASE", "$dataset", query.Dataset);
            Filter("r.norm = $norm COLLATE NOCASE", "$norm", query.Norm);
            Filter("ABS(r.epsilon - $eps) <= 1e-12 + 1e-9 * ABS($eps)", "$eps", query.Epsilon);
            Filter("r.kind = $kind", "$kind", query.Kind);

            var records = new List<ResultRecord>();
            using (var select = Command(c, tx, $"""
                SELECT r.id, r.kind, r.model_sha256, r.model_name, r.model_path, r.model_arch, r.dataset, r.samples_sha256, r.sample_count,
                       r.norm, r.epsilon, r.attack_set, r.attack_config_sha256, r.seed, r.clean_accuracy, r.robust_accuracy,
                       r.certified_accuracy, r.certification_method, r.tool_version, r.created_utc, r.report_path, r.warning_codes, r.attack_precision
                FROM results r {where} ORDER BY r.id
                """, parameters))
            using (var reader = select.ExecuteReader())
            {
                while (reader.Read())
                {
                    records.Add(new ResultRecord
                    {
                        Id = reader.GetInt64(0),
                        Kind = reader.GetString(1),
                        ModelSha256 = reader.GetString(2),
                        ModelName = reader.GetString(3),
                        ModelPath = NullableString(reader, 4),
                        ModelArch = NullableString(reader, 5),
                        Dataset = reader.GetString(6),
                        SamplesSha256 = reader.GetString(7),
                        SampleCount = reader.GetInt32(8),
                        Norm = reader.GetString(9),
                        Epsilon = reader.GetDouble(10),
                        AttackSet = reader.GetString(11),
                        AttackConfigSha256 = reader.GetString(12),
                        Seed = reader.GetInt64(13),
                        CleanAccuracy = reader.GetDouble(14),
                        RobustAccuracy = reader.IsDBNull(15) ? null : reader.GetDouble(15),
                        CertifiedAccuracy = reader.IsDBNull(16) ? null : reader.GetDouble(16),
                        CertificationMethod = NullableString(reader, 17),
                        ToolVersion = reader.GetString(18),
                        Date = DateTimeOffset.Parse(reader.GetString(19), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind),
                        ReportPath = NullableString(reader, 20),
                        WarningCodes = NullableString(reader, 21) is { } w ? JsonSerializer.Deserialize<string[]>(w) : null,
                        AttackPrecision = NullableString(reader, 22),
                    });
                }
            }
            var stages = new Dictionary<long, List<StageRecord>>();
            using (var select = Command(c, tx, $"""
                SELECT s.result_id, s.epsilon, s.position, s.attack, s.robust_accuracy_after, s.robust_after, s.broken
                FROM stages s JOIN results r ON r.id = s.result_id {where} ORDER BY s.result_id, s.epsilon, s.position
                """, parameters))
            using (var reader = select.ExecuteReader())
            {
                while (reader.Read())
                    Add(stages, reader.GetInt64(0), new StageRecord(reader.GetDouble(1), reader.GetInt32(2), reader.GetString(3), reader.GetDouble(4), reader.GetInt32(5), reader.GetInt32(6)));
            }
            var sweep = new Dictionary<long, List<SweepRecord>>();
            using (var select = Command(c, tx, $"""
                SELECT w.result_id, w.epsilon, w.robust_accuracy, w.certified_accuracy
                FROM sweep w JOIN results r ON r.id = w.result_id {where} ORDER BY w.result_id, w.epsilon
                """, parameters))
            using (var reader = select.ExecuteReader())
            {
                while (reader.Read())
                    Add(sweep, reader.GetInt64(0), new SweepRecord(reader.GetDouble(1), reader.IsDBNull(2) ? null : reader.GetDouble(2), reader.IsDBNull(3) ? null : reader.GetDouble(3)));
            }
            tx.Commit();
            return (IReadOnlyList<ResultRecord>)records.Select(r => r with
            {
                Stages = stages.TryGetValue(r.Id, out var s) ? s : [],
                Sweep = sweep.TryGetValue(r.Id, out var w) ? w : [],
            }).ToArray();
        }));
    }

    /// <summary>Number of records in the store.</summary>
    public long Count() => Guard(Path, () => Retry(() =>
    {
        using var c = Connect(Path, create: false);
        using var command = Command(c, null, "SELECT COUNT(*) FROM results");
        return (long)command.ExecuteScalar()!;
    }));

    private static void Add<T>(Dictionary<long, List<T>> map, long id, T item)
    {
        if (!map.TryGetValue(id, out var list)) map[id] = list = [];
        list.Add(item);
    }

    private static string? NullableString(SqliteDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static SqliteConnection Connect(string path, bool create)
    {
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = create ? SqliteOpenMode.ReadWriteCreate : SqliteOpenMode.ReadWrite,
            Pooling = false,
            DefaultTimeout = BusyTimeoutSeconds,
            ForeignKeys = true,
        };
        var c = new SqliteConnection(builder.ToString());
        try
        {
            c.Open();
            using var pragma = Command(c, null, $"PRAGMA busy_timeout = {BusyTimeoutSeconds * 1000};");
            pragma.ExecuteNonQuery();
            return c;
        }
        catch
        {
            c.Dispose();
            throw;
        }
    }

    private static SqliteCommand Command(SqliteConnection c, SqliteTransaction? tx, string sql, IEnumerable<(string Name, object Value)>? parameters = null)
    {
        var command = c.CreateCommand();
        command.Transaction = tx;
        command.CommandText = sql;
        command.CommandTimeout = BusyTimeoutSeconds;
        foreach (var (name, value) in parameters ?? []) command.Parameters.AddWithValue(name, value);
        return command;
    }

    private static void EnsureWal(SqliteConnection c)
    {
        using var read = Command(c, null, "PRAGMA journal_mode;");
        if (string.Equals((string?)read.ExecuteScalar(), "wal", StringComparison.OrdinalIgnoreCase)) return;
        using var set = Command(c, null, "PRAGMA journal_mode = WAL;");
        set.ExecuteScalar(); // persistent in the file; a file system without shared memory keeps its mode, which is still correct
    }

    private static void CheckIntegrity(SqliteConnection c, string path)
    {
        using var check = Command(c, null, "PRAGMA quick_check(1);");
        var result = check.ExecuteScalar() as string;
        if (!string.Equals(result, "ok", StringComparison.OrdinalIgnoreCase))
            throw new InputException($"{path}: the results database is corrupt (SQLite quick_check: {OneLine(result ?? "no answer")})");
    }

    /// <summary>Brings the schema to the current version in one immediate transaction; returns the version found.</summary>
    private static int Migrate(SqliteConnection c, string path)
    {
        using var tx = c.BeginTransaction(deferred: false);
        var tables = new List<string>();
        using (var list = Command(c, tx, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"))
        using (var reader = list.ExecuteReader())
            while (reader.Read()) tables.Add(reader.GetString(0));
        int found = 0;
        if (tables.Count > 0)
        {
            if (!tables.Contains("schema_version") || !tables.Contains("results"))
                throw new InputException($"{path}: a SQLite database but not a robustness results database (its tables: {string.Join(", ", tables.Take(8))})");
            using var version = Command(c, tx, "SELECT MAX(version) FROM schema_version");
            found = version.ExecuteScalar() is long v ? (int)v : 0;
            if (found > CurrentSchemaVersion)
                throw new InputException($"{path}: results database schema version {found} is newer than this tool understands ({CurrentSchemaVersion}); use a newer robust");
        }
        foreach (var m in ResultsSchema.Migrations.Where(m => m.ToVersion > found))
        {
            using (var apply = Command(c, tx, m.Sql)) apply.ExecuteNonQuery();
            using var bump = Command(c, tx, "INSERT INTO schema_version (version, applied_utc, description) VALUES ($v, $t, $d)",
                [("$v", m.ToVersion), ("$t", DateTime.UtcNow.ToString("o", CultureInfo.InvariantCulture)), ("$d", m.Description)]);
            bump.ExecuteNonQuery();
        }
        tx.Commit();
        return found;
    }

    private static void CheckHeader(string path)
    {
        byte[] head = new byte[SqliteHeader.Length];
        long length;
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            length = fs.Length;
            if (length == 0) return; // SQLite treats an empty file as an empty database
            fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"{path}: cannot read the results database ({e.Message})");
        }
        if (length < 512 || !head.AsSpan().SequenceEqual(SqliteHeader))
            throw new InputException($"{path}: not a SQLite database");
    }

    /// <summary>Busy and locked errors are retried (after SQLite's own busy timeout) with jittered back-off.</summary>
    private static T Retry<T>(Func<T> work)
    {
        for (int attempt = 1; ; attempt++)
        {
            try { return work(); }
            catch (SqliteException e) when (IsBusy(e) && attempt < MaxAttempts)
            {
                Thread.Sleep(Random.Shared.Next(20, 100) * attempt);
            }
        }
    }

    private static bool IsBusy(SqliteException e) => e.SqliteErrorCode is 5 or 6; // SQLITE_BUSY, SQLITE_LOCKED

    /// <summary>SQLite errors about the file become one-line input errors naming it; others pass through.</summary>
    private static T Guard<T>(string path, Func<T> work)
    {
        try { return work(); }
        catch (SqliteException e) when (e.SqliteErrorCode is 26) // SQLITE_NOTADB
        { throw new InputException($"{path}: not a SQLite database", e); }
        catch (SqliteException e) when (e.SqliteErrorCode is 11) // SQLITE_CORRUPT
        { throw new InputException($"{path}: the results database is corrupt ({OneLine(e.Message)})", e); }
        catch (SqliteException e) when (e.SqliteErrorCode is 14 or 8 or 23) // CANTOPEN, READONLY, AUTH
        { throw new InputException($"{path}: cannot open the results database for writing ({OneLine(e.Message)})", e); }
        catch (SqliteException e) when (IsBusy(e))
        { throw new IOException($"{path}: the results database stayed locked by other writers ({OneLine(e.Message)})", e); }
    }

    private static string OneLine(string text) => string.Join(' ', text.ReplaceLineEndings("\n").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
