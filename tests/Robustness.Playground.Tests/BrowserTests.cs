using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using Robustness.Playground;
using Xunit.Abstractions;

namespace Robustness.Playground.Tests;

/// <summary>Runs only where Debian's chromium and chromium-driver are installed; otherwise reported as skipped.</summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    public BrowserFactAttribute()
    {
        if (!File.Exists(Browser.Chromium) || !File.Exists(Browser.Driver))
            Skip = $"needs {Browser.Chromium} and {Browser.Driver} (apt-get install -y chromium chromium-driver)";
    }
}

/// <summary>A real Kestrel server on 127.0.0.1 (a free port) and headless Chromium driven by Selenium.</summary>
public sealed class Browser : IDisposable
{
    public const string Chromium = "/usr/bin/chromium";
    public const string Driver = "/usr/bin/chromedriver";

    public Browser(int width = 1280, int height = 800, PlaygroundOptions? options = null)
    {
        App = PlaygroundServer.Build((options ?? new PlaygroundOptions()) with { Host = "127.0.0.1", Port = 0 });
        App.Start();
        Url = App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/') + "/";
        var service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(Driver)!, Path.GetFileName(Driver));
        service.SuppressInitialDiagnosticInformation = true;
        service.HideCommandPromptWindow = true;
        var o = new ChromeOptions { BinaryLocation = Chromium };
        o.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1", $"--window-size={width},{height}");
        Driver_ = new ChromeDriver(service, o, TimeSpan.FromSeconds(60));
        Resize(width, height);
    }

    public WebApplication App { get; }
    public string Url { get; }
    public ChromeDriver Driver_ { get; }

    /// <summary>Sets the viewport (not the window) to the given size.</summary>
    public void Resize(int width, int height)
    {
        Driver_.ExecuteCdpCommand("Emulation.setDeviceMetricsOverride", new Dictionary<string, object?>
        {
            ["width"] = width, ["height"] = height, ["deviceScaleFactor"] = 1, ["mobile"] = false,
        });
    }

    public IWebElement El(string cssSelector) => Driver_.FindElement(By.CssSelector(cssSelector));

    public IWebElement? El(string cssSelector, bool optional) =>
        Driver_.FindElements(By.CssSelector(cssSelector)) is { Count: > 0 } found ? found[0] : optional ? null : throw new NoSuchElementException(cssSelector);

    public double? Value(string id)
    {
        var text = Driver_.FindElement(By.Id(id)).GetDomAttribute("data-value");
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : null;
    }

    /// <summary>Waits on page state (polling the DOM), never a fixed sleep.</summary>
    public void WaitUntil(Func<bool> condition, TimeSpan timeout, string what)
    {
        var wait = new WebDriverWait(Driver_, timeout) { PollingInterval = TimeSpan.FromMilliseconds(100), Message = what };
        wait.IgnoreExceptionTypes(typeof(StaleElementReferenceException));
        try { wait.Until(_ => condition()); }
        catch (WebDriverTimeoutException)
        {
            // Keep what the page showed, and say where it stood.
            Screenshot(Path.Combine(ArtifactDir(), "playground-failure.png"));
            var values = string.Join(", ", new[] { "epoch", "testLoss", "trainLoss", "cleanAcc-main", "robustAcc-main", "robustAcc-standard" }.Select(id => $"{id}={Value(id)}"));
            var toast = Driver_.FindElement(By.Id("toast")).Text + " | page: " + Driver_.ExecuteScript(
                "return JSON.stringify({playing: frame && frame.playing, epoch: frame && frame.epoch, gen: frame && frame.generation, queued: queue.length, connected, ready: socket.readyState, errors: window.playgroundErrors})");
            throw new WebDriverTimeoutException($"timed out after {timeout.TotalSeconds:0} s waiting until {what} ({values}; url {Driver_.Url}; toast '{toast}'; screenshot in {ArtifactDir()})");
        }
    }

    public void Choose(string selectId, string optionText) =>
        Driver_.FindElement(By.XPath($"//select[@id='{selectId}']/option[normalize-space(text())='{optionText}']")).Click();

    public void Screenshot(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Driver_.ExecuteScript("window.scrollTo(0, 0)");
        Driver_.GetScreenshot().SaveAsFile(path);
    }

    public void Dispose()
    {
        try { Driver_.Quit(); } catch (WebDriverException) { }
        Driver_.Dispose();
        App.StopAsync().GetAwaiter().GetResult();
        ((IDisposable)App).Dispose();
    }

    /// <summary>Where screenshots go: $ROBUSTNESS_ARTIFACTS, else TestResults/playground under the test output.</summary>
    public static string ArtifactDir() =>
        Environment.GetEnvironmentVariable("ROBUSTNESS_ARTIFACTS") is { Length: > 0 } d ? d : Path.Combine(AppContext.BaseDirectory, "TestResults", "playground");
}

public class BrowserTests(ITestOutputHelper output)
{
    [BrowserFact]
    public void Spiral_trains_in_the_browser_and_pgd_training_beats_standard_under_attack()
    {
        var clock = Stopwatch.StartNew();
        using var b = new Browser();
        b.Driver_.Navigate().GoToUrl(b.Url);
        b.WaitUntil(() => b.El("#connection").GetDomAttribute("data-state") == "open" && b.Value("epoch") is not null, TimeSpan.FromSeconds(20), "the page connects and shows a first frame");

        // Spiral, with X1X2 and the sines fed in, learning rate 0.1 — as a student would click it.
        b.El("#dataset-spiral").Click();
        foreach (var f in new[] { "x1x2", "sinx1", "sinx2" }) b.El($"#feature-{f}").Click();
        b.Choose("learningRate", "0.1");
        // Two hidden layers of 8 neurons: room for a boundary that keeps its distance from the points.
        for (int layer = 0; layer < 2; layer++)
            while (b.El($"#node-{layer}-7", optional: true) is null) b.El($"#add-neuron-{layer}").Click();
        b.WaitUntil(() => b.Driver_.Url.Contains("networkShape=8%2C8"), TimeSpan.FromSeconds(5), "an 8,8 network");
        b.WaitUntil(() => b.Driver_.Url.Contains("features=x1%2Cx2%2Cx1x2%2Csinx1%2Csinx2") && b.Driver_.Url.Contains("dataset=spiral"), TimeSpan.FromSeconds(5), "the URL carries the setup");
        b.El("#play").Click();
        b.WaitUntil(() => b.Value("epoch") > 100 && b.Value("testLoss") < 0.35, TimeSpan.FromSeconds(25), "epoch > 100 and test loss < 0.35");
        output.WriteLine($"epoch {b.Value("epoch")} test loss {b.Value("testLoss")} after {clock.Elapsed.TotalSeconds:0.0} s");

        // PGD-AT at ε = 0.3 (L∞), side by side with the standard network forked from the same weights.
        Assert.Equal("0.3", b.El("#epsilon").GetDomProperty("value"));
        Assert.True(b.El("#compare").Selected);
        b.Choose("objective", "PGD-AT (Madry)");
        b.WaitUntil(() => b.El("#row-standard").Displayed && b.Value("robustAcc-standard") is not null && b.Value("robustAcc-main") is not null,
            TimeSpan.FromSeconds(10), "both networks report robust accuracy");
        b.WaitUntil(() => b.Value("robustAcc-main") > b.Value("robustAcc-standard") + 0.02, TimeSpan.FromSeconds(25),
            "PGD-AT's robust test accuracy rises above the standard network's");
        var (robustAt, robustStd) = (b.Value("robustAcc-main")!.Value, b.Value("robustAcc-standard")!.Value);
        output.WriteLine($"robust accuracy: PGD-AT {robustAt:P1}, standard {robustStd:P1} at epoch {b.Value("epoch")} after {clock.Elapsed.TotalSeconds:0.0} s");
        // Robust accuracy can never exceed clean accuracy, and certified never exceeds robust.
        foreach (var role in new[] { "main", "standard" })
        {
            Assert.True(b.Value($"robustAcc-{role}") <= b.Value($"cleanAcc-{role}") + 1e-9);
            Assert.True(b.Value($"certAcc-{role}") <= b.Value($"robustAcc-{role}") + 0.05, "certified ≤ robust (up to the frames they were measured in)");
        }

        b.El("#play").Click();
        b.WaitUntil(() => !(b.El("#play").GetDomAttribute("class") ?? "").Contains("playing"), TimeSpan.FromSeconds(5), "training paused");
        foreach (var id in new[] { "showBalls", "showAttack", "showCertified" }) b.El($"#{id}").Click();
        b.WaitUntil(() => b.Driver_.Url.Contains("showCertified=true") && b.Value("certAcc-main") is not null, TimeSpan.FromSeconds(5), "overlays on");
        b.Driver_.ExecuteScript("document.activeElement && document.activeElement.blur()");
        // Save PNG composes the view in the page; it must run without a script error.
        b.El("#savePng").Click();
        var errors = Convert.ToInt64(b.Driver_.ExecuteScript("return window.playgroundErrors.length"));
        Assert.True(errors == 0, "script errors: " + b.Driver_.ExecuteScript("return JSON.stringify(window.playgroundErrors)"));
        var dir = Browser.ArtifactDir();
        Directory.CreateDirectory(dir);
        var exported = (string)b.Driver_.ExecuteScript("return composeView().toDataURL('image/png')")!;
        File.WriteAllBytes(Path.Combine(dir, "playground-save-png.png"), Convert.FromBase64String(exported[(exported.IndexOf(',') + 1)..]));
        b.Screenshot(Path.Combine(dir, "playground-1280x800.png"));
        b.Resize(1920, 1080);
        b.WaitUntil(() => Convert.ToInt64(b.Driver_.ExecuteScript("return window.innerWidth")) == 1920, TimeSpan.FromSeconds(5), "viewport resized");
        b.Screenshot(Path.Combine(dir, "playground-1920x1080.png"));
        output.WriteLine($"screenshots in {dir}; total {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"the browser test took {clock.Elapsed.TotalSeconds:0} s");
    }
}
