using Robustness.Evaluation;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Robustness.Evaluation.Tests;

public class WriterTests
{
    private static readonly string[] Hostile = ["<script>alert(1)</script>", "a|b", "back`tick", "amp&\"quote'", "new\nline", "[link](x)", "plain", "*bold*", "_u_", "9"];

    private static RobustnessReport HostileReport()
    {
        var r = EvaluatorTests.HealthyRun.Value.Report;
        return r with
        {
            PerClass = r.PerClass.Select(c => c with { Label = Hostile[c.Class] }).ToArray(),
            Provenance = r.Provenance with { ClassNames = Hostile, DatasetName = "<img src=x onerror=alert(2)>", ModelPath = "/tmp/<evil>|`model`.safetensors" },
            Warnings = [new ReportWarning("<b>code</b>", "message with <script>x</script> and a|pipe", "advice <i>")],
        };
    }

    [Fact]
    public void Html_escapes_every_string_from_data()
    {
        var run = EvaluatorTests.HealthyRun.Value;
        var gallery = run.Examples.Select(e => GalleryItem.Of(e, Hostile, PerturbationImages.StripPng(e)) with { Attack = "<b>attack</b>\"'" }).ToArray();
        var html = HtmlReportWriter.Render(HostileReport(), new HtmlAssets(Gallery: gallery));
        // One script, the page's own; nothing from data becomes markup, in text or in attributes.
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(html, "<script", System.Text.RegularExpressions.RegexOptions.IgnoreCase));
        Assert.Contains($"<script>{ReportScript.Js}</script>", html);
        Assert.DoesNotContain("<script>alert", html);
        Assert.DoesNotContain("<b>attack</b>", html);
        Assert.Contains("data-attack=\"&lt;b&gt;attack&lt;/b&gt;&quot;&#39;\"", html);
        Assert.DoesNotContain("<img src=x", html);
        Assert.DoesNotContain("<evil>", html);
        Assert.DoesNotContain("<b>code</b>", html);
        Assert.Contains("&lt;script&gt;alert(1)&lt;/script&gt;", html);
        Assert.Contains("a|b", html);
        // Self-contained: no external resources of any kind.
        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        Assert.DoesNotContain("src=\"/", html);
    }

    [Fact]
    public void Markdown_escapes_pipes_and_html()
    {
        var md = MarkdownReportWriter.Render(HostileReport());
        Assert.Contains(@"a\|b", md);
        Assert.DoesNotContain("<script>", md);
        Assert.Contains("&lt;script&gt;", md);
        Assert.Contains(@"back\`tick", md);
        Assert.DoesNotContain("a|b", md.Replace(@"a\|b", ""));
        // Every per-class table row has exactly the 5 columns (6 unescaped pipes), hostile labels notwithstanding.
        var classRows = md.Split('\n').SkipWhile(l => !l.StartsWith("## Per class")).Skip(4).TakeWhile(l => l.StartsWith('|')).ToArray();
        Assert.Equal(10, classRows.Length);
        Assert.All(classRows, row => Assert.Equal(6, UnescapedPipes(row)));
        Assert.Equal("a\\|b", MarkdownReportWriter.Escape("a|b"));
    }

    private static int UnescapedPipes(string row)
    {
        int n = 0;
        for (int i = 0; i < row.Length; i++)
        {
            if (row[i] == '\\') { i++; continue; }
            if (row[i] == '|') n++;
        }
        return n;
    }

    [Fact]
    public void Bundle_writes_every_file_and_embeds_images()
    {
        var run = EvaluatorTests.HealthyRun.Value;
        var dir = Path.Combine(Path.GetTempPath(), "robustness-eval-tests", Guid.NewGuid().ToString("N"));
        try
        {
            var files = ReportBundle.WriteAll(HostileReport(), dir, run.Examples);
            Assert.True(File.Exists(files.Json) && File.Exists(files.Markdown) && File.Exists(files.Html));
            Assert.Equal(run.Examples.Count + 1, files.Images.Count); // strips + grid
            Assert.Equal(2, files.Plots.Count);
            foreach (var png in files.Images.Concat(files.Plots))
            {
                using var img = Image.Load<Rgba32>(png);
                Assert.True(img.Width > 10 && img.Height > 10);
            }
            var html = File.ReadAllText(files.Html);
            Assert.Equal(run.Examples.Count + 3, CountOf(html, "data:image/png;base64,")); // gallery + grid + 2 plots
            // Each example's caption is HTML under its picture, with what the filter selects it by.
            Assert.Equal(run.Examples.Count, CountOf(html, "<figure data-class="));
            foreach (var e in run.Examples)
            {
                Assert.Contains($"<div class=\"title\">sample {e.Index}</div>", html);
                Assert.Contains($"data-class=\"{HtmlReportWriter.E(Hostile[e.Label])}\" data-attack=\"{e.AttackName}\" data-verdict=\"{(e.Broken ? "broken" : "robust")}\"", html);
            }
            Assert.Contains("<select data-filter=\"class\">", html);
            Assert.Contains("<select data-filter=\"attack\">", html);
            Assert.Contains("<select data-filter=\"verdict\">", html);
            Assert.Empty(Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories));
            Assert.Equal(HostileReport().RobustAccuracy, JsonReportWriter.Read(files.Json).RobustAccuracy);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Console_summary_has_the_headline_rows()
    {
        var r = EvaluatorTests.HealthyRun.Value.Report;
        var rows = ConsoleSummary.Rows(r);
        Assert.Contains(rows, x => x.Key == "clean accuracy" && x.Value == MarkdownReportWriter.Pct(r.CleanAccuracy));
        Assert.Contains(rows, x => x.Key == "robust accuracy");
        Assert.Equal(r.PerAttack.Count, rows.Count(x => x.Key.StartsWith("  after ")));
    }

    private static int CountOf(string text, string what)
    {
        int n = 0, i = 0;
        while ((i = text.IndexOf(what, i, StringComparison.Ordinal)) >= 0) { n++; i += what.Length; }
        return n;
    }
}
