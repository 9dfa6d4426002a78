using System.Diagnostics;
using System.Text.RegularExpressions;
using Robustness.Evaluation;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Robustness.Evaluation.Tests.Results;

public sealed class LeaderboardTests : IDisposable
{
    private readonly TempFolder _temp = new();
    public void Dispose() => _temp.Dispose();

    private static Leaderboard Build(IEnumerable<ResultRecord> records, LeaderboardQuery? query = null)
    {
        long id = 0;
        return LeaderboardBuilder.Build(records.Select(r => r with { Id = ++id }), query ?? new LeaderboardQuery(), "results.db");
    }

    [Fact]
    public void A_model_is_ranked_by_its_lowest_robust_accuracy_and_a_rerun_supersedes_its_key()
    {
        var board = Build(
        [
            Records.Make("alpha", 0.90, 0.60, attacks: "apgd-ce"),
            Records.Make("alpha", 0.90, 0.52, attacks: "apgd-ce,apgd-t"),          // a stronger attack set found less robustness
            Records.Make("beta", 0.85, 0.55),
            Records.Make("gamma", 0.95, 0.10),
            Records.Make("gamma", 0.95, 0.20),                                    // same key as the line above, newer: supersedes it
        ]);
        var t = Assert.Single(board.Tables);
        Assert.Equal(["beta", "alpha", "gamma"], t.Rows.Select(r => r.ModelName));
        Assert.Equal([1, 2, 3], t.Rows.Select(r => r.Rank));
        var alpha = t.Rows[1];
        Assert.Equal(0.52, alpha.RobustAccuracy);
        Assert.Equal("apgd-ce,apgd-t", alpha.AttackSet);
        Assert.Equal(2, alpha.Runs);
        Assert.Equal(0.20, t.Rows[2].RobustAccuracy);
        Assert.Equal(1, t.Rows[2].Runs);
        Assert.False(t.AttackSetsDiffer); // every row shows a two-attack run
        Assert.False(t.SampleSetsDiffer);

        var all = Build(
        [
            Records.Make("alpha", 0.90, 0.60, attacks: "apgd-ce"),
            Records.Make("alpha", 0.90, 0.52, attacks: "apgd-ce,apgd-t"),
        ], new LeaderboardQuery { AllRuns = true });
        Assert.Equal([0.60, 0.52], all.Tables[0].Rows.Select(r => r.RobustAccuracy!.Value));
        Assert.True(all.Tables[0].AttackSetsDiffer);
        Assert.True(Build([Records.Make("a", 0.9, 0.5), Records.Make("b", 0.9, 0.4, samples: "random-100")]).Tables[0].SampleSetsDiffer);
    }

    [Fact]
    public void Ties_share_a_rank_and_tables_are_split_by_dataset_and_threat_model()
    {
        var board = Build(
        [
            Records.Make("a", 0.9, 0.5), Records.Make("b", 0.8, 0.5), Records.Make("c", 0.9, 0.4),
            Records.Make("a", 0.9, 0.3, eps: 0.2), Records.Make("a", 0.9, 0.7, norm: "l2", eps: 0.5), Records.Make("a", 0.9, 0.6, dataset: "mnist"),
        ]);
        Assert.Equal(["fashion-mnist · L2 ε = 0.5", "fashion-mnist · L∞ ε = 0.1", "fashion-mnist · L∞ ε = 0.2", "mnist · L∞ ε = 0.1"], board.Tables.Select(t => t.Title));
        Assert.Equal([1, 1, 3], board.Tables[1].Rows.Select(r => r.Rank));
        Assert.Equal(["a", "b", "c"], board.Tables[1].Rows.Select(r => r.ModelName)); // equal robust: higher clean first

        var filtered = Build([Records.Make("x", 0.9, 0.1), Records.Make("a", 0.9, 0.3, eps: 0.2), Records.Make("b", 0.9, 0.3, norm: "l2", eps: 0.2)],
            new LeaderboardQuery { Norm = "linf", Epsilon = 0.2 });
        Assert.Equal(["a"], Assert.Single(filtered.Tables).Rows.Select(r => r.ModelName));
    }

    [Fact]
    public void Certified_accuracy_joins_the_row_and_certified_above_robust_is_flagged()
    {
        var board = Build(
        [
            Records.Make("plain", 0.9, 0.40),
            Records.Make("ibp", 0.7, 0.50),
            Records.Make("ibp", 0.7, null, kind: ResultRecord.CertifyKind, certified: 0.35, method: "ibp", attacks: "ibp"),
            Records.Make("ibp", 0.7, null, kind: ResultRecord.CertifyKind, certified: 0.38, method: "crown-ibp", attacks: "crown-ibp"),
            Records.Make("only-certified", 0.6, null, kind: ResultRecord.CertifyKind, certified: 0.30, method: "ibp", attacks: "ibp"),
            Records.Make("liar", 0.8, 0.20),
            Records.Make("liar", 0.8, null, kind: ResultRecord.CertifyKind, certified: 0.25, method: "ibp", attacks: "ibp"),
        ]);
        var rows = board.Tables[0].Rows.ToDictionary(r => r.ModelName);
        Assert.Equal((0.38, "crown-ibp"), (rows["ibp"].CertifiedAccuracy!.Value, rows["ibp"].CertificationMethod));
        Assert.Null(rows["plain"].CertifiedAccuracy);
        Assert.Null(rows["only-certified"].RobustAccuracy);
        Assert.Equal("certified only (ibp)", rows["only-certified"].AttackSet);
        Assert.Equal("only-certified", board.Tables[0].Rows[^1].ModelName); // no empirical number: ranked last
        Assert.True(rows["liar"].CertifiedAboveRobust);
        Assert.False(rows["ibp"].CertifiedAboveRobust);
        Assert.Contains("certified &gt; robust", LeaderboardWriter.Html(board, _temp.Path));
    }

    [Fact]
    public void Pages_escape_names_link_reports_relatively_and_need_nothing_from_outside()
    {
        var runs = Directory.CreateDirectory(Path.Combine(_temp.Path, "runs", "my run")).FullName;
        var json = Path.Combine(runs, "report.json");
        File.WriteAllText(json, "{}");
        File.WriteAllText(Path.Combine(runs, "report.html"), "<html></html>");
        var board = Build(
        [
            Records.Make("<script>alert(1)</script>|pipe", 0.9, 0.5, report: json, warnings: ["zero-gradients"]),
            Records.Make("gone", 0.9, 0.4, report: Path.Combine(_temp.Path, "deleted", "report.json")),
        ], new LeaderboardQuery { Dataset = "fashion-mnist" });
        var outDir = Path.Combine(_temp.Path, "board");
        var files = LeaderboardWriter.WriteAll(board, outDir);

        var html = File.ReadAllText(files.Html);
        Assert.DoesNotContain("<script>alert", html);
        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;|pipe", html);
        Assert.Contains("href=\"../runs/my%20run/report.html\"", html);
        Assert.Contains(">missing<", html);
        Assert.Contains("⚠ 1 warning", html);
        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        Assert.DoesNotMatch(new Regex("(src|href)=\"(?!\\.\\./|data:)"), html);
        Assert.Single(Regex.Matches(html, "<script>"));

        var md = File.ReadAllText(files.Markdown);
        Assert.Contains(@"&lt;script&gt;alert\(1\)&lt;/script&gt;\|pipe", md);
        Assert.Contains("[report](../runs/my%20run/report.html)", md);
        var rows = md.Split('\n').Where(l => l.StartsWith("| 1 ") || l.StartsWith("| 2 ")).ToArray();
        Assert.Equal(2, rows.Length);
        Assert.All(rows, row => Assert.Equal(10, Regex.Matches(row, @"(?<!\\)\|").Count));

        var parsed = System.Text.Json.JsonDocument.Parse(File.ReadAllText(files.Json));
        Assert.Equal(2, parsed.RootElement.GetProperty("tables")[0].GetProperty("rows").GetArrayLength());
        Assert.Empty(Directory.GetFiles(outDir, "*.tmp"));
    }

    private static Leaderboard Sample(string reportDir)
    {
        var names = new[] { "tiny-cnn-pgd", "tiny-cnn-trades", "fmnist-cnn-pgd-at", "tiny-cnn-standard", "mlp-gaussian", "preact-resnet18-fgsm-rs" };
        var records = names.Select((n, i) => Records.Make(n, 0.95 - i * 0.03, 0.8 - i * 0.13 + (i == 2 ? 0.3 : 0), count: 1000 - i * 100,
            report: Path.Combine(reportDir, "report.json"), warnings: i == 4 ? ["zero-gradients"] : [])).ToList();
        records.Add(Records.Make("tiny-cnn-trades", 0.9, null, kind: ResultRecord.CertifyKind, certified: 0.31, method: "ibp", attacks: "ibp"));
        return Build(records);
    }

    [ChromiumFact]
    public void Leaderboard_renders_in_headless_chromium_at_laptop_and_desktop_sizes()
    {
        var keep = Environment.GetEnvironmentVariable("ROBUSTNESS_KEEP_REPORT");
        var dir = keep ?? _temp.Path;
        var runs = Directory.CreateDirectory(Path.Combine(dir, "run")).FullName;
        File.WriteAllText(Path.Combine(runs, "report.html"), "<html></html>");
        var files = LeaderboardWriter.WriteAll(Sample(runs), Path.Combine(dir, "board"));
        foreach (var (w, h) in new[] { (1280, 800), (1920, 1080) })
        {
            var shot = Path.Combine(dir, $"leaderboard-{w}x{h}.png");
            Chromium.Screenshot(files.Html, shot, w, h);
            using var img = Image.Load<Rgba32>(shot);
            Assert.Equal((w, h), (img.Width, img.Height));
            var colours = new HashSet<uint>();
            for (int y = 0; y < img.Height; y += 3) for (int x = 0; x < img.Width; x += 3) colours.Add(img[x, y].PackedValue);
            Assert.True(colours.Count > 50, $"screenshot at {w}×{h} looks blank ({colours.Count} colours)");
            // The page marks a panel whose table is wider than it (it would scroll sideways): the table must fit.
            var dom = Chromium.DumpDom(files.Html, "", w, h);
            Assert.Contains("class=\"panel\"", dom);
            Assert.DoesNotContain("class=\"panel scrolls\"", dom);
        }
    }

    [ChromiumFact]
    public void Columns_sort_in_the_page_by_its_own_script()
    {
        var files = LeaderboardWriter.WriteAll(Sample(_temp.Path), Path.Combine(_temp.Path, "board"));
        string[] Order(string hash) => Regex.Matches(Chromium.DumpDom(files.Html, hash), "<td class=\"model\" data-v=\"([^\"]+)\"").Select(m => m.Groups[1].Value).ToArray();
        var board = Sample(_temp.Path).Tables[0].Rows;
        Assert.Equal(board.Select(r => r.ModelName), Order(""));
        Assert.Equal(board.OrderBy(r => r.CleanAccuracy).Select(r => r.ModelName), Order("#sort=clean-asc"));
        Assert.Equal(board.OrderByDescending(r => r.SampleCount).Select(r => r.ModelName), Order("#sort=samples-desc"));
        Assert.Equal(board.OrderBy(r => r.ModelName, StringComparer.Ordinal).Select(r => r.ModelName), Order("#sort=model-asc"));
        // Empty cells (no certificate) go last whichever the direction.
        var byCert = Order("#sort=certified-desc");
        Assert.Equal("tiny-cnn-trades", byCert[0]);
        Assert.Equal(byCert.Skip(1).ToHashSet(), Order("#sort=certified-asc").Skip(1).ToHashSet());
        Assert.Equal("tiny-cnn-trades", Order("#sort=certified-asc")[0]);
    }
}

/// <summary>Headless Chromium runs for page tests (network off, throwaway profile).</summary>
internal static class Chromium
{
    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var profile = Directory.CreateTempSubdirectory("robustness-chromium-");
        try
        {
            var psi = new ProcessStartInfo(HtmlRenderTests.Browser()!)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--no-first-run", "--hide-scrollbars", $"--user-data-dir={profile.FullName}" }.Concat(args))
                psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            Assert.True(p.WaitForExit(90_000), "chromium did not finish within 90 s");
            return (p.ExitCode, stdout.Result, stderr.Result);
        }
        finally
        {
            try { profile.Delete(recursive: true); } catch (IOException) { }
        }
    }

    public static void Screenshot(string html, string png, int width, int height)
    {
        var r = Run($"--screenshot={png}", $"--window-size={width},{height}", new Uri(html).AbsoluteUri);
        Assert.True(File.Exists(png) && new FileInfo(png).Length > 0, $"no screenshot (exit {r.Code}): {r.Stderr}");
    }

    /// <summary>The DOM after the page's scripts ran, opened with <paramref name="hash"/> appended to its address.</summary>
    public static string DumpDom(string html, string hash, int width = 1280, int height = 800)
    {
        var r = Run("--dump-dom", $"--window-size={width},{height}", new Uri(html).AbsoluteUri + hash);
        Assert.True(r.Code == 0 && r.Stdout.Contains("</table>"), $"dump-dom failed (exit {r.Code}): {r.Stderr}");
        return r.Stdout;
    }
}

public sealed class CertificateRecordTests
{
    private static CertificateReport Certificate(string method, string norm, RadiusAccuracy[] curve, EmpiricalCheck? check = null) => new()
    {
        Method = method, Norm = norm, Total = 50, CleanAccuracy = 0.8, AbstentionRate = 0, CertifiedAccuracyByRadius = curve,
        PerClass = [], Warnings = [], Samples = [], EmpiricalCheck = check,
        VerifiedAccuracy = method == "smoothing" ? null : curve[^1].Accuracy, Epsilon = method == "smoothing" ? null : curve[^1].Radius,
        Provenance = new CertificateProvenance
        {
            ToolVersion = "t", TorchSharpVersion = "0", Libtorch = "cpu", Device = "cpu", Seed = 3, BatchSize = 8,
            Parameters = method == "smoothing" ? new Dictionary<string, string> { ["sigma"] = "0.25" } : new Dictionary<string, string>(),
            DatasetName = "fashion-mnist", DatasetSource = "x", ClassNames = [], SampleIndices = Enumerable.Range(0, 50).Select(i => (long)i).ToArray(),
            ModelPath = "/m/net.safetensors", ModelSha256 = ResultRecord.Sha256Hex("net"), ModelArch = "mlp", WallSeconds = 1, SecondsPerPoint = 0.1,
            Date = DateTimeOffset.UnixEpoch,
        },
    };

    [Fact]
    public void Interval_certificates_give_one_record_per_verified_epsilon()
    {
        var records = ResultRecord.FromCertificate(Certificate("ibp", "linf", [new(0.01, 0.6, 30), new(0.02, 0.4, 20)]), "c/certificate.json", "test");
        Assert.Equal([(0.01, 0.6), (0.02, 0.4)], records.Select(r => (r.Epsilon, r.CertifiedAccuracy!.Value)));
        Assert.All(records, r => Assert.Equal((ResultRecord.CertifyKind, "ibp", (double?)null, "net"), (r.Kind, r.CertificationMethod, r.RobustAccuracy, r.ModelName)));
        Assert.NotEqual(records[0].Key, records[1].Key);
        // A certificate the attack contradicted proves nothing: nothing is recorded.
        var failed = new EmpiricalCheck { Attack = "apgd-ce", Parameters = new Dictionary<string, string>(), Points = 50, Radii = [], Violations = 1, Definition = "" };
        Assert.Empty(ResultRecord.FromCertificate(Certificate("ibp", "linf", [new(0.01, 0.6, 30)], failed), null, "test"));
    }

    [Fact]
    public void Smoothing_certifies_another_classifier_and_gets_rows_of_its_own()
    {
        var curve = Enumerable.Range(0, 101).Select(i => new RadiusAccuracy(i * 0.005, Math.Max(0, 0.7 - i * 0.006), 0)).ToArray();
        var records = ResultRecord.FromCertificate(Certificate("smoothing", "l2", curve), null, "test");
        Assert.Equal([0.25, 0.5], records.Select(r => Math.Round(r.Epsilon, 9)));
        Assert.All(records, r => Assert.Equal("smoothing σ=0.25", r.CertificationMethod));

        long id = 0;
        var eval = Records.Make("net", 0.8, 0.3, norm: "l2", eps: 0.5) with { ModelSha256 = ResultRecord.Sha256Hex("net"), SamplesSha256 = records[1].SamplesSha256 };
        var board = LeaderboardBuilder.Build(records.Append(eval).Select(r => r with { Id = ++id }), new LeaderboardQuery { Norm = "l2", Epsilon = 0.5 }, "db");
        var rows = board.Tables.Single().Rows;
        Assert.Equal(2, rows.Count);
        Assert.Null(rows.Single(r => r.ModelName == "net").CertifiedAccuracy); // the base model is not what smoothing certified
        var smoothed = rows.Single(r => r.ModelName == "net (smoothing σ=0.25)");
        Assert.Equal(records[1].CertifiedAccuracy, smoothed.CertifiedAccuracy);
        Assert.DoesNotContain(rows, r => r.CertifiedAboveRobust);
    }
}
