using Robustness.Core;

namespace Robustness.Cli.Common;

/// <summary>Which rows of a dataset a run uses: --n first rows in file order, or --n rows drawn with the seed.</summary>
public static class SampleSelection
{
    public static long[] Indices(int datasetCount, int? n, string mode, long seed)
    {
        if (n is { } count)
        {
            if (count <= 0) throw new InputException($"--n: must be > 0, got {count}");
            if (count > datasetCount) throw new InputException($"--n: {count} is larger than the dataset ({datasetCount} samples)");
        }
        var take = n ?? datasetCount;
        switch (mode.Trim().ToLowerInvariant())
        {
            case "first":
                return Enumerable.Range(0, take).Select(i => (long)i).ToArray();
            case "random":
                var all = Enumerable.Range(0, datasetCount).Select(i => (long)i).ToArray();
                new Random(unchecked((int)(seed ^ (seed >> 32)) ^ 0x5eed)).Shuffle(all);
                var chosen = all.Take(take).ToArray();
                Array.Sort(chosen);
                return chosen;
            default:
                throw new InputException($"--sample: unknown mode '{mode}' (valid: first, random)");
        }
    }
}
