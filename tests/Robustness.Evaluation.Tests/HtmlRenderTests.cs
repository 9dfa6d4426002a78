using System.Diagnostics;
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

    [ChromiumFact]
    public void Report_page_renders_in_headless_chromium()
    {
        var run = EvaluatorTests.HealthyRun.Value;
        // ROBUSTNESS_KEEP_REPORT=dir keeps the bundle and screenshot for a look by eye.
        var keep = Environment.GetEnvironmentVariable("ROBUSTNESS_KEEP_REPORT");
        var dir = keep ?? Path.Combine(Path.GetTempPath(), "robustness-render-tests", Guid.NewGuid().ToString("N"));
        try
        {
            var files = ReportBundle.WriteAll(run.Report, dir, run.Examples);
            var shot = Path.Combine(dir, "screenshot.png");
            var psi = new ProcessStartInfo("bash", [Script(), files.Html, shot, "1200,2000"]) { RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            var stderr = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            Assert.True(p.WaitForExit(60_000), "chromium did not finish within 60 s");
            Assert.True(p.ExitCode == 0, $"render-report.sh failed: {stderr.Result}");
            using var img = Image.Load<Rgba32>(shot);
            Assert.Equal(1200, img.Width);
            // A rendered page has many distinct colours (text, tables, plots); a blank or error page has few.
            var colours = new HashSet<uint>();
            for (int y = 0; y < img.Height; y += 3) for (int x = 0; x < img.Width; x += 3) colours.Add(img[x, y].PackedValue);
            Assert.True(colours.Count > 50, $"screenshot looks blank ({colours.Count} colours)");
        }
        finally
        {
            if (keep is null && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
