using System.Xml.Linq;

namespace Robustness.Core.Tests;

/// <summary>
/// The projects' references point one way (architecture.md): Models, Data, Attacks, Certification → Core;
/// Evaluation, Defenses → Core, Attacks (and Certification); Playground → the libraries, never the CLI; Cli → all.
/// Read from the project files themselves, so a new forbidden reference fails here.
/// </summary>
public sealed class DependencyTests
{
    public static readonly IReadOnlyDictionary<string, string[]> Allowed = new Dictionary<string, string[]>
    {
        ["Robustness.Core"] = [],
        ["Robustness.Models"] = ["Robustness.Core"],
        ["Robustness.Data"] = ["Robustness.Core"],
        ["Robustness.Attacks"] = ["Robustness.Core"],
        ["Robustness.Certification"] = ["Robustness.Core"],
        ["Robustness.Evaluation"] = ["Robustness.Core", "Robustness.Attacks", "Robustness.Certification"],
        ["Robustness.Defenses"] = ["Robustness.Core", "Robustness.Attacks", "Robustness.Certification"],
        ["Robustness.Playground"] = ["Robustness.Core", "Robustness.Models", "Robustness.Data", "Robustness.Attacks",
            "Robustness.Certification", "Robustness.Defenses", "Robustness.Evaluation"],
        ["Robustness.Cli"] = ["Robustness.Core", "Robustness.Models", "Robustness.Data", "Robustness.Attacks",
            "Robustness.Certification", "Robustness.Defenses", "Robustness.Evaluation", "Robustness.Playground"],
    };

    /// <summary>Every (project → referenced project) edge that <see cref="Allowed"/> does not list.</summary>
    public static IReadOnlyList<string> Violations(IEnumerable<(string From, string To)> edges) =>
        edges.Where(e => !Allowed.TryGetValue(e.From, out var to) || !to.Contains(e.To))
            .Select(e => $"{e.From} → {e.To}").ToArray();

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Robustness.sln"))) return dir.FullName;
        throw new InvalidOperationException("Robustness.sln not found above the test binaries");
    }

    private static IEnumerable<(string From, string To)> LibraryEdges()
    {
        var root = RepoRoot();
        foreach (var folder in new[] { "src", "attacks", "defenses" })
            foreach (var csproj in Directory.EnumerateFiles(Path.Combine(root, folder), "*.csproj", SearchOption.AllDirectories))
            {
                if (csproj.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}")) continue;
                var from = Path.GetFileNameWithoutExtension(csproj);
                foreach (var reference in XDocument.Load(csproj).Descendants("ProjectReference"))
                    yield return (from, Path.GetFileNameWithoutExtension(reference.Attribute("Include")!.Value.Replace('\\', '/')));
            }
    }

    [Fact]
    public void Project_references_point_one_way()
    {
        var edges = LibraryEdges().ToArray();
        Assert.Contains(edges, e => e.From == "Robustness.Cli");
        Assert.Empty(Violations(edges));
        foreach (var project in edges.Select(e => e.From).Distinct())
            Assert.True(Allowed.ContainsKey(project), $"{project} is not in the dependency table; add it with its allowed references");
    }

    [Fact]
    public void A_forbidden_edge_is_reported()
    {
        Assert.Equal(["Robustness.Defenses → Robustness.Models"], Violations([("Robustness.Defenses", "Robustness.Models")]));
        Assert.Equal(["Robustness.Core → Robustness.Attacks"], Violations([("Robustness.Core", "Robustness.Attacks")]));
        Assert.Equal(["Robustness.Playground → Robustness.Cli"], Violations([("Robustness.Playground", "Robustness.Cli")]));
        Assert.Empty(Violations([("Robustness.Evaluation", "Robustness.Attacks")]));
    }
}
