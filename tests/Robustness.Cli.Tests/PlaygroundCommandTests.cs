namespace Robustness.Cli.Tests;

/// <summary>`robust playground --render` writes the view; bad options are one-line errors naming the flag.</summary>
[Collection("cli")]
public sealed class PlaygroundCommandTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Render_trains_headless_and_writes_the_view()
    {
        var png = _temp.Sub("out/view.png");
        var r = Cli.Run("playground", "--render", "--dataset", "spiral", "--defense", "pgd", "--eps", "0.3", "--epochs", "3",
            "--features", "x1,x2,sinx1,sinx2", "--hidden", "6", "--out", png, "--width", "900");
        Assert.True(r.ExitCode == 0, r.ToString());
        var bytes = File.ReadAllBytes(png);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
        using var image = SixLabors.ImageSharp.Image.Load(bytes);
        Assert.Equal(900, image.Width);
        Assert.Contains("pgd", r.Stdout);
        Assert.Contains("standard", r.Stdout);
        Assert.Contains("objective=pgd", r.Stdout.Replace("\n", ""));
        Expect.NoTempFiles(_temp.Path);
    }

    [Theory]
    [InlineData("--eps", "-1", "--eps")]
    [InlineData("--defense", "magic", "--defense")]
    [InlineData("--hidden", "4,9", "--hidden")]
    [InlineData("--dataset", "moons", "--dataset")]
    [InlineData("--features", "x3", "--features")]
    [InlineData("--lr", "100", "--lr")]
    [InlineData("--epochs", "-3", "--epochs")]
    [InlineData("--width", "10", "--width")]
    [InlineData("--state", "learningRate=abc", "--state")]
    public void Bad_render_options_are_named(string flag, string value, string named)
    {
        var png = _temp.Sub("bad.png");
        var r = Cli.Run("playground", "--render", "--out", png, "--epochs", "1", flag, value);
        Expect.BadInput(r, named);
        Assert.False(File.Exists(png));
    }

    [Fact]
    public void Render_needs_a_png_path_and_serving_needs_a_valid_address()
    {
        Expect.BadInput(Cli.Run("playground", "--render"), "--out");
        Expect.BadInput(Cli.Run("playground", "--render", "--out", _temp.Sub("view.jpg")), "--out", ".png");
        Expect.BadInput(Cli.Run("playground", "--port", "70000"), "--port");
        Expect.BadInput(Cli.Run("playground", "--host", "not-an-address"), "--host");
        Expect.BadInput(Cli.Run("playground", "--defense", "pgd", "--eps", "0"), "--eps");
    }
}
