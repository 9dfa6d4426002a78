using Robustness.Core;

namespace Robustness.Data;

/// <summary>Splitting a dataset reproducibly, e.g. a validation set held out of the training set for robust validation.</summary>
public static class DatasetSplits
{
    /// <summary>
    /// Holds out <paramref name="valSize"/> rows chosen by a permutation seeded with <paramref name="seed"/>; the rest
    /// is the new training set. Both keep file order within themselves and are new datasets (copies) the caller owns;
    /// <paramref name="train"/> is left untouched.
    /// </summary>
    public static (ImageDataset Train, ImageDataset Validation) HoldOut(ImageDataset train, int valSize, long seed)
    {
        if (valSize <= 0 || valSize >= train.Count)
            throw new ParameterException("ValidationSize", $"must be between 1 and {train.Count - 1} (the training set has {train.Count:N0} images), got {valSize}");
        var order = Enumerable.Range(0, train.Count).Select(i => (long)i).ToArray();
        // Same seed folding as ImageDataset.Batches, so one recorded seed explains both.
        new Random(unchecked((int)(seed ^ (seed >> 32)))).Shuffle(order);
        var validation = order[..valSize];
        var rest = order[valSize..];
        Array.Sort(validation);
        Array.Sort(rest);
        return (train.Subset(rest, train.Name), train.Subset(validation, $"{train.Name}-validation"));
    }
}
