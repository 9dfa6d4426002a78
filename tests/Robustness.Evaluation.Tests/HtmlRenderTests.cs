using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Robustness.Evaluation;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Robustness.Evaluation.Tests;

/// <summary>Runs only where Chromium is installed (apt-get install -y chromium); otherwise reported as skipped.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (HtmlRenderTests.Browser() is null) Skip = "chromium is not installed (apt-get install -y chromium)";
    }
}

/// <summary>
/// report.html in a real browser (headless Chromium, no network): screenshots at two desktop sizes, and the page's
/// own script exercised through a probe appended to a copy of the page (sorting, aria-sort, the gallery filter, no
/// horizontal overflow, no script error), also with the print styles in force at the width of an A4 page.
/// ROBUSTNESS_KEEP_REPORT=dir keeps the bundle, the screenshots and the probed pages for a look by eye.
/// </summary>
public class HtmlRenderTests
{
    internal static string? Browser() =>
        new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }.FirstOrDefault(File.Exists);

    private static string Script()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "docs", "render-report.sh"))) dir = dir.Parent;
        return dir is null ? throw new FileNotFoundException("docs/render-report.sh not found above the test directory") : Path.Combine(dir.FullName, "docs", "render-report.sh");
    }

    /// <summary>The healthy run with Fashion-MNIST's class names, so labels are as long as a real report's.</summary>
    private static (RobustnessReport Report, IReadOnlyList<AdversarialExample> Examples) RealisticRun()
    {
        var run = EvaluatorTests.HealthyRun.Value;
        var names = ImageTests.FashionNames;
        var report = run.Report with
        {
            PerClass = run.Report.PerClass.Select(c => c with { Label = names[c.Class] }).ToArray(),
            Provenance = run.Report.Provenance with { ClassNames = names },
        };
        return (report, run.Examples);
    }

    [ChromiumFact]
    public void Report_page_renders_sorts_filters_and_fits_in_headless_chromium()
    {
        var (report, examples) = RealisticRun();
        Assert.Contains(examples, e => e.Broken);
        var keep = Environment.GetEnvironmentVariable("ROBUSTNESS_KEEP_REPORT");
        var dir = keep ?? Path.Combine(Path.GetTempPath(), "robustness-render-tests", Guid.NewGuid().ToString("N"));
        try
        {
            var files = ReportBundle.WriteAll(report, dir, examples);
            foreach (var (w, h) in new[] { (1280, 800), (1920, 1080) })
            {
                var shot = Path.Combine(dir, $"screenshot-{w}x{h}.png");
                Run("bash", [Script(), files.Html, shot, $"{w},{h}"]);
                using var img = Image.Load<Rgba32>(shot);
                Assert.Equal((w, h), (img.Width, img.Height));
                // A rendered page has many distinct colours (text, tables, plots); a blank or error page has few.
                var colours = new HashSet<uint>();
                for (int y = 0; y < img.Height; y += 3) for (int x = 0; x < img.Width; x += 3) colours.Add(img[x, y].PackedValue);
                Assert.True(colours.Count > 50, $"{w}×{h}: screenshot looks blank ({colours.Count} colours)");

                var probe = Probe(files.Html, Path.Combine(dir, $"probed-{w}.html"), w, h, print: false);
                Assert.True(probe.GetProperty("errors").GetArrayLength() == 0, $"{w}×{h}: script errors {probe}");
                Assert.False(probe.TryGetProperty("probeError", out var pe), $"{w}×{h}: probe failed: {pe}");
                Assert.Equal(w, probe.GetProperty("innerWidth").GetInt32());
                Assert.True(probe.GetProperty("scrollWidth").GetInt32() <= w, $"{w}×{h}: the page is wider than the window: {probe}");
                Assert.Equal(0, probe.GetProperty("wide").GetArrayLength());
                CheckSortingAndFilter(probe, report, examples);
            }

            // On paper: the print rules in force at the printable width of A4 (210 mm less 2 × 14 mm at 96 dpi).
            var paper = Probe(files.Html, Path.Combine(dir, "probed-print.html"), 688, 1000, print: true);
            Assert.True(paper.GetProperty("scrollWidth").GetInt32() <= 688, $"print: wider than the page: {paper}");
            Assert.Equal(0, paper.GetProperty("wide").GetArrayLength());
            Assert.Equal("none", paper.GetProperty("filterDisplay").GetString());
        }
        finally
        {
            if (keep is null && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    private static void CheckSortingAndFilter(JsonElement probe, RobustnessReport report, IReadOnlyList<AdversarialExample> examples)
    {
        // Every table with a header row got sortable headers (attacks, sweep, per class, sanity checks: at least 4).
        Assert.True(probe.GetProperty("sortableTables").GetInt32() >= 4, probe.ToString());
        string[] Strings(string name) => probe.GetProperty(name).EnumerateArray().Select(v => v.GetString()!).ToArray();
        // The per-class "count" column sorts both ways and says so in aria-sort.
        var counts = report.PerClass.Select(c => c.Count).ToArray();
        Assert.Equal(counts.Order().Select(c => c.ToString()), Strings("countAsc"));
        Assert.Equal("ascending", probe.GetProperty("countAscSort").GetString());
        Assert.Equal(counts.OrderDescending().Select(c => c.ToString()), Strings("countDesc"));
        Assert.Equal("descending", probe.GetProperty("countDescSort").GetString());
        // "95.00% (19)" sorts by its percentage, as a number: before "100.00% (26)", which text order would put first.
        var robust = report.PerClass.OrderBy(c => c.RobustAccuracy).Select(c => c.RobustAccuracy).ToArray();
        Assert.Equal(robust, Strings("robustAsc").Select(t => double.Parse(t[..t.IndexOf('%')], System.Globalization.CultureInfo.InvariantCulture) / 100), new Tolerance());
        // The label column sorts as text from the keyboard (Enter), and only one header carries aria-sort.
        Assert.Equal(report.PerClass.Select(c => c.Label).Order(StringComparer.OrdinalIgnoreCase), Strings("labelAsc"));
        Assert.Equal("ascending", probe.GetProperty("labelSort").GetString());
        Assert.Equal(1, probe.GetProperty("ariaSorted").GetInt32());

        // The filter bar is shown (hidden without script); "broken" keeps the broken examples, a class narrows it further.
        Assert.False(probe.GetProperty("filterHidden").GetBoolean());
        int broken = examples.Count(e => e.Broken);
        Assert.Equal(broken, probe.GetProperty("shownBroken").GetInt32());
        Assert.Equal($"{broken} of {examples.Count} shown", probe.GetProperty("countText").GetString());
        var names = report.Provenance.ClassNames;
        var chosen = probe.GetProperty("classChosen").GetString();
        Assert.Equal(examples.Count(e => e.Broken && names[e.Label] == chosen), probe.GetProperty("shownBrokenClass").GetInt32());
        Assert.Equal(examples.Count, probe.GetProperty("shownReset").GetInt32());
    }

    private sealed class Tolerance : IEqualityComparer<double>
    {
        public bool Equals(double a, double b) => Math.Abs(a - b) < 1e-3;
        public int GetHashCode(double v) => 0;
    }

    /// <summary>Collects script errors from the start, and after the page's script ran measures the layout and drives
    /// the tables and the filter like a reader would; the findings end up as JSON in a &lt;pre id="probe"&gt;.</summary>
    private const string ErrorCatcher = "<script>window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(String(e.message));});</script>";

    private const string ProbeScript = """
        <script>(function(){
          var out={errors:window.__errors};
          function visible(){return [].filter.call(document.querySelectorAll('.gallery figure'),function(f){return f.getClientRects().length>0;}).length;}
          try{
            out.innerWidth=innerWidth;out.scrollWidth=document.documentElement.scrollWidth;
            out.wide=[];
            document.querySelectorAll('main *').forEach(function(el){var r=el.getBoundingClientRect();if(r.width>0&&r.right>innerWidth+0.5)out.wide.push(el.tagName+'.'+el.className+' right='+Math.round(r.right));});
            out.wide=out.wide.slice(0,5);
            var bar=document.getElementById('gallery-filters');
            out.filterHidden=bar.hidden;out.filterDisplay=getComputedStyle(bar).display;
            out.sortableTables=document.querySelectorAll('table.sortable').length;
            var table=[].find.call(document.querySelectorAll('table'),function(t){return t.rows[0]&&t.rows[0].cells[0].textContent.trim()==='class';});
            function col(name){return [].findIndex.call(table.rows[0].cells,function(c){return c.textContent.trim()===name;});}
            function values(i){return [].slice.call(table.rows,1).map(function(r){return r.cells[i].textContent.trim();});}
            var count=col('count'),th=table.rows[0].cells[count];
            th.click();out.countAsc=values(count);out.countAscSort=th.getAttribute('aria-sort');
            th.click();out.countDesc=values(count);out.countDescSort=th.getAttribute('aria-sort');
            var robust=col('robust');table.rows[0].cells[robust].click();out.robustAsc=values(robust);
            var label=col('label'),lth=table.rows[0].cells[label];
            lth.dispatchEvent(new KeyboardEvent('keydown',{key:'Enter'}));out.labelAsc=values(label);out.labelSort=lth.getAttribute('aria-sort');
            out.ariaSorted=table.querySelectorAll('th[aria-sort]').length;
            var verdict=bar.querySelector('select[data-filter=verdict]');verdict.value='broken';verdict.dispatchEvent(new Event('change'));
            out.shownBroken=visible();out.countText=bar.querySelector('.count').textContent;
            var cls=bar.querySelector('select[data-filter=class]');cls.value=cls.options[1].value;cls.dispatchEvent(new Event('change'));
            out.classChosen=cls.value;out.shownBrokenClass=visible();
            verdict.value='';cls.value='';cls.dispatchEvent(new Event('change'));out.shownReset=visible();
          }catch(e){out.probeError=String(e&&e.stack||e);}
          var pre=document.createElement('pre');pre.id='probe';pre.textContent=JSON.stringify(out);document.body.appendChild(pre);
        })();</script>
        """;

    private static JsonElement Probe(string html, string probedPath, int width, int height, bool print)
    {
        var page = File.ReadAllText(html);
        Assert.Contains("<head>", page);
        page = page.Replace("<head>", "<head>" + ErrorCatcher).Replace("</body>", ProbeScript + "</body>");
        if (print)
        {
            Assert.Contains("@media print{", page);
            page = page.Replace("@media print{", "@media all{");
        }
        File.WriteAllText(probedPath, page);
        var dom = DumpDom(probedPath, width, height);
        var m = Regex.Match(dom, "<pre id=\"probe\">(.*?)</pre>", RegexOptions.Singleline);
        Assert.True(m.Success, $"no probe output in the dumped page ({dom.Length} characters)");
        return JsonDocument.Parse(WebUtility.HtmlDecode(m.Groups[1].Value)).RootElement.Clone();
    }

    private static string DumpDom(string html, int width, int height)
    {
        var profile = Directory.CreateTempSubdirectory("robustness-chromium-");
        try
        {
            return Run(Browser()!, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", $"--user-data-dir={profile.FullName}", "--hide-scrollbars",
                $"--window-size={width},{height}", "--dump-dom", new Uri(Path.GetFullPath(html)).AbsoluteUri]);
        }
        finally { profile.Delete(recursive: true); }
    }

    private static string Run(string program, string[] args)
    {
        var psi = new ProcessStartInfo(program, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), $"{Path.GetFileName(program)} did not finish within 60 s");
        Assert.True(p.ExitCode == 0, $"{Path.GetFileName(program)} failed ({p.ExitCode}): {stderr.Result}");
        return stdout;
    }
}
