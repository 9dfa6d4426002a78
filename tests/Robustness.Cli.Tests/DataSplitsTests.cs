namespace Robustness.Cli.Tests;

/// <summary>`robust data` without --split describes both splits, each with where it was found.</summary>
[Collection("cli")]
public sealed class DataSplitsTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Both_splits_are_described_with_their_sources()
    {
        var data = _temp.Sub("both");
        Make.FashionSubset(data, "train", 0, 40);
        Make.FashionSubset(data, "t10k", 0, 30);
        var r = Cli.Run("data", data);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("train split", r.Stdout);
        Assert.Contains("40 images", r.Stdout);
        Assert.Contains("test split", r.Stdout);
        Assert.Contains("30 images", r.Stdout);
        Assert.Contains(data, r.Stdout);

        var onlyTest = _temp.Sub("test-only");
        Make.FashionSubset(onlyTest, "t10k", 0, 20);
        var t = Cli.Run("data", onlyTest);
        Assert.Equal(0, t.ExitCode);
        Assert.Contains("train split: not found", t.Stdout);
        Assert.Contains("20 images", t.Stdout);

        var one = Cli.Run("data", data, "--split", "train");
        Assert.Equal(0, one.ExitCode);
        Assert.DoesNotContain("test split", one.Stdout);
    }
}
