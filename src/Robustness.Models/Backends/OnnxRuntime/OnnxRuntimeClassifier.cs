using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Backends.OnnxRuntime;

/// <summary>
/// An ONNX model run by ONNX Runtime as a query-only classifier (scores, no gradients): for graphs with operators our
/// executor does not translate, or to attack exactly what a deployment runs. Inputs are pixels in the bounds; the
/// normalisation of the input contract is applied before the graph, as our Normalize module does, so ε stays in
/// pixel units. Every call is one batched session run (in chunks) and counts one query per sample.
/// </summary>
public sealed class OnnxRuntimeClassifier : IQueryClassifier, IDisposable
{
    private readonly OnnxRuntimeSession _session;
    private readonly string _path;
    private long _answered;

    internal OnnxRuntimeClassifier(OnnxRuntimeSession session, string path, ModelSpec spec)
    {
        _session = session;
        _path = path;
        Spec = spec;
    }

    public ModelSpec Spec { get; internal set; }
    /// <summary>ONNX Runtime's CPU execution provider: outputs land on the CPU.</summary>
    public Device Device => CPU;
    public ModelAccess Access => ModelAccess.Scores;
    public long QueriesAnswered => Interlocked.Read(ref _answered);
    /// <summary>The batch size the graph fixes (inputs are fed in padded chunks of it), or null.</summary>
    public long? FixedBatch => _session.FixedBatch;

    public Tensor Logits(Tensor inputs)
    {
        using var scope = NewDisposeScope();
        var x = inputs.detach().to(ScalarType.Float32).cpu().contiguous();
        int n = (int)x.shape[0];
        var sample = x.shape.Skip(1).Select(d => (int)d).ToArray();
        float[] scores = n == 0 ? [] : _session.Run(Normalised(x, Spec).contiguous().data<float>().ToArray(), n, sample, _path);
        Interlocked.Add(ref _answered, n);
        var k = n == 0 ? Spec.NumClasses : scores.Length / n;
        return tensor(scores).reshape(n, k).to(inputs.device).MoveToOuterDisposeScope();
    }

    /// <summary>(x − mean)/std per channel when the spec normalises, else x: what the graph receives.</summary>
    internal static Tensor Normalised(Tensor x, ModelSpec spec)
    {
        if (spec.Mean is not { } mean || spec.Std is not { } std) return x;
        var view = new long[x.dim()];
        Array.Fill(view, 1L);
        view[1] = mean.Length;
        return ((x - tensor(mean).view(view)) / tensor(std).view(view)).contiguous();
    }

    public void Dispose() => _session.Dispose();
}
