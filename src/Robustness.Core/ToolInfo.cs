using System.Globalization;
using static TorchSharp.torch;

namespace Robustness.Core;

/// <summary>The toolkit's version, as every output records it.</summary>
public static class ToolInfo
{
    public static string Version { get; } = typeof(ToolInfo).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
}

/// <summary>How parameter values are written into reports and model metadata: invariant culture, shortest
/// round-trip numbers, lower-case booleans, lists comma-separated.</summary>
public static class ParameterText
{
    public static string Format(object value) => value switch
    {
        bool b => b ? "true" : "false",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        string s => s,
        System.Collections.IEnumerable list => string.Join(",", list.Cast<object>().Select(Format)),
        _ => value.ToString() ?? "",
    };

    public static Dictionary<string, string> FormatAll(IReadOnlyDictionary<string, object> parameters) =>
        parameters.ToDictionary(kv => kv.Key, kv => Format(kv.Value));
}

/// <summary>Clean accuracy of a classifier on a dataset: eval mode (restored), no graph, a dispose scope per batch,
/// counts kept on the device and read once at the end. For a multi-label dataset it is the subset (exact-match)
/// accuracy (<see cref="MultiLabelAccuracy"/> has the others).</summary>
public static class Accuracy
{
    public static double Clean(IClassifier model, ImageDataset data, int batchSize = 256) =>
        data.Count == 0 ? 0
        : data.MultiLabel ? MultiLabelAccuracy.Counts(model, data, batchSize).SubsetAccuracy
        : (double)CorrectCount(model, data, batchSize) / data.Count;

    public static long CorrectCount(IClassifier model, ImageDataset data, int batchSize = 256)
    {
        using var mode = model is IGradientClassifier g ? g.EvalMode() : null;
        using var _ = no_grad();
        using var correct = zeros(1, ScalarType.Int64, model.Device);
        foreach (var batch in data.Batches(batchSize, model.Device))
        {
            using var b = batch;
            using var scope = NewDisposeScope();
            correct.add_(model.Logits(b.Inputs).argmax(1).eq(b.Labels).sum());
        }
        return correct.item<long>();
    }
}
