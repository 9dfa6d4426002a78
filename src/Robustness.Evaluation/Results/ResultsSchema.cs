namespace Robustness.Evaluation;

/// <summary>
/// The results database's schema as a list of migrations: migration <c>i</c> takes a database from version <c>i</c> to
/// <c>i + 1</c> (version 0 is an empty file). A released migration is never edited; a change of schema is a new
/// migration at the end. Each migration runs inside the same write transaction as the version bump.
/// </summary>
internal static class ResultsSchema
{
    public sealed record Migration(int ToVersion, string Description, string Sql);

    public static IReadOnlyList<Migration> Migrations { get; } =
    [
        new(1, "results and per-attack stages", """
            CREATE TABLE schema_version (
                version     INTEGER PRIMARY KEY,
                applied_utc TEXT NOT NULL,
                description TEXT NOT NULL
            );
            CREATE TABLE results (
                id                   INTEGER PRIMARY KEY AUTOINCREMENT,
                result_key           TEXT NOT NULL,
                kind                 TEXT NOT NULL,
                model_sha256         TEXT NOT NULL,
                model_name           TEXT NOT NULL,
                model_path           TEXT,
                model_arch           TEXT,
                dataset              TEXT NOT NULL,
                samples_sha256       TEXT NOT NULL,
                sample_count         INTEGER NOT NULL,
                norm                 TEXT NOT NULL,
                epsilon              REAL NOT NULL,
                attack_set           TEXT NOT NULL,
                attack_config_sha256 TEXT NOT NULL,
                seed                 INTEGER NOT NULL,
                clean_accuracy       REAL NOT NULL,
                robust_accuracy      REAL,
                certified_accuracy   REAL,
                certification_method TEXT,
                tool_version         TEXT NOT NULL,
                created_utc          TEXT NOT NULL,
                report_path          TEXT
            );
            CREATE INDEX results_by_key ON results (result_key);
            CREATE TABLE stages (
                result_id             INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
                epsilon               REAL NOT NULL,
                position              INTEGER NOT NULL,
                attack                TEXT NOT NULL,
                robust_accuracy_after REAL NOT NULL,
                robust_after          INTEGER NOT NULL,
                broken                INTEGER NOT NULL,
                PRIMARY KEY (result_id, epsilon, position)
            );
            """),
        new(2, "ε sweep table (backfilled from the stages), warning codes, attack precision, threat-model index", """
            ALTER TABLE results ADD COLUMN warning_codes TEXT;
            ALTER TABLE results ADD COLUMN attack_precision TEXT;
            CREATE TABLE sweep (
                result_id          INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
                epsilon            REAL NOT NULL,
                robust_accuracy    REAL,
                certified_accuracy REAL,
                PRIMARY KEY (result_id, epsilon)
            );
            -- The worst case at each ε is the robust accuracy after the last stage (stages are cumulative).
            INSERT INTO sweep (result_id, epsilon, robust_accuracy)
                SELECT s.result_id, s.epsilon, s.robust_accuracy_after FROM stages s
                WHERE s.position = (SELECT MAX(t.position) FROM stages t WHERE t.result_id = s.result_id AND t.epsilon = s.epsilon);
            -- Records without stages (certification runs) get their main ε.
            INSERT INTO sweep (result_id, epsilon, robust_accuracy)
                SELECT r.id, r.epsilon, r.robust_accuracy FROM results r
                WHERE NOT EXISTS (SELECT 1 FROM sweep w WHERE w.result_id = r.id AND w.epsilon = r.epsilon);
            UPDATE sweep SET certified_accuracy = (SELECT r.certified_accuracy FROM results r WHERE r.id = sweep.result_id)
                WHERE epsilon = (SELECT r.epsilon FROM results r WHERE r.id = sweep.result_id);
            CREATE INDEX results_by_threat ON results (dataset, norm, epsilon);
            """),
    ];

    public static int CurrentVersion => Migrations[^1].ToVersion;
}
