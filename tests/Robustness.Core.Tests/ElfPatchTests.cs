using Robustness.Build;

namespace Robustness.Core.Tests;

public class ElfPatchTests
{
    private static string BuiltLibrary =>
        Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", ElfVersionPatcher.TorchSharpLibrary);

    private static string PackageLibrary()
    {
        var home = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                   ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        return Path.Combine(home, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", ElfVersionPatcher.TorchSharpLibrary);
    }

    [Fact]
    public void PackageCopyRequiresTheVersionStrongly_AndIsNeverPatched()
    {
        var pkg = PackageLibrary();
        Assert.True(File.Exists(pkg), $"expected the NuGet copy at {pkg}");
        var req = ElfVersionPatcher.ReadRequirements(File.ReadAllBytes(pkg)).Single(r => r.Version == ElfVersionPatcher.RequiredVersion);
        Assert.Equal("libstdc++.so.6", req.File);
        Assert.False(req.IsWeak, "the NuGet cache copy must stay untouched");
    }

    [Fact]
    public void OutputCopyIsWeakExactlyWhenTheHostLacksTheVersion()
    {
        var bytes = File.ReadAllBytes(BuiltLibrary);
        var reqs = ElfVersionPatcher.ReadRequirements(bytes);
        var target = reqs.Single(r => r.Version == ElfVersionPatcher.RequiredVersion);
        Assert.Equal(!ElfVersionPatcher.HostProvides(ElfVersionPatcher.RequiredVersion), target.IsWeak);
        // Only that one entry is touched: every other requirement matches the package copy.
        var original = ElfVersionPatcher.ReadRequirements(File.ReadAllBytes(PackageLibrary()));
        Assert.Equal(original.Count, reqs.Count);
        foreach (var (a, b) in original.Zip(reqs).Where(p => p.First.Version != ElfVersionPatcher.RequiredVersion))
            Assert.Equal(a.Flags, b.Flags);
    }

    [Fact]
    public void MarkWeakChangesOnlyTheFlagBytes_AndIsIdempotent()
    {
        var original = File.ReadAllBytes(PackageLibrary());
        var copy = (byte[])original.Clone();
        Assert.Equal(ElfPatchOutcome.Patched, ElfVersionPatcher.MarkWeak(copy, ElfVersionPatcher.RequiredVersion));
        var diff = Enumerable.Range(0, copy.Length).Where(i => copy[i] != original[i]).ToArray();
        Assert.Single(diff);
        Assert.Equal(ElfPatchOutcome.AlreadyWeak, ElfVersionPatcher.MarkWeak(copy, ElfVersionPatcher.RequiredVersion));
        Assert.Equal(ElfPatchOutcome.NoRequirement, ElfVersionPatcher.MarkWeak(copy, "GLIBCXX_9.9.99"));
        Assert.Equal(ElfPatchOutcome.NotElf, ElfVersionPatcher.MarkWeak("hello"u8.ToArray(), ElfVersionPatcher.RequiredVersion));
    }

    [Fact]
    public void PatchDirectoriesIsANoOpWhenTheHostProvidesTheVersion()
    {
        var dir = Directory.CreateTempSubdirectory("elf");
        try
        {
            var native = Directory.CreateDirectory(Path.Combine(dir.FullName, "runtimes", "linux-x64", "native"));
            var lib = Path.Combine(native.FullName, ElfVersionPatcher.TorchSharpLibrary);
            File.Copy(PackageLibrary(), lib);
            Assert.Empty(ElfVersionPatcher.PatchDirectories([dir.FullName], hostProvides: _ => true));
            Assert.False(ElfVersionPatcher.ReadRequirements(File.ReadAllBytes(lib)).Single(r => r.Version == ElfVersionPatcher.RequiredVersion).IsWeak);
            Assert.Single(ElfVersionPatcher.PatchDirectories([dir.FullName], hostProvides: _ => false));
            Assert.True(ElfVersionPatcher.ReadRequirements(File.ReadAllBytes(lib)).Single(r => r.Version == ElfVersionPatcher.RequiredVersion).IsWeak);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void HostCheckFindsVersionStringsInALibrary()
    {
        var f = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(f, "xxGLIBCXX_3.4.30\0GLIBCXX_3.4.32\0yy"u8.ToArray());
            Assert.True(ElfVersionPatcher.HostProvides("GLIBCXX_3.4.32", [f]));
            Assert.False(ElfVersionPatcher.HostProvides("GLIBCXX_3.4.33", [f]));
            Assert.False(ElfVersionPatcher.HostProvides("GLIBCXX_3.4.3", [f])); // prefix of 3.4.30 must not count
        }
        finally { File.Delete(f); }
    }

    [Fact]
    public void TorchLoadsAndComputes()
    {
        using var a = TorchSharp.torch.tensor(new float[] { 1, 2, 3, 4 }).reshape(2, 2);
        using var b = a.matmul(a);
        Assert.Equal(new float[] { 7, 10, 15, 22 }, b.data<float>().ToArray());
    }
}
