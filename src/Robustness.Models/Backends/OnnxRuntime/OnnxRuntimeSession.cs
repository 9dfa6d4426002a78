using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;
using Robustness.Core;
using Robustness.Models.Formats.Onnx;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;

namespace Robustness.Models.Backends.OnnxRuntime;

/// <summary>
/// An ONNX Runtime inference session over an ONNX file, as both the reference check and the query-only backend use
/// it: the file read with our checks (hostile protobuf, external data confined to the model's folder and inlined, so
/// ONNX Runtime opens no file), a final Softmax/Sigmoid cut the way our executor cuts it, one float input fed in
/// batches (chunks of the fixed size when the graph fixes its batch axis), threads set like libtorch's
/// (intra-op = torch's thread count, one inter-op thread, sequential execution).
/// </summary>
internal sealed class OnnxRuntimeSession : IDisposable
{
    private readonly InferenceSession _session;
    private readonly SessionOptions _options;

    private OnnxRuntimeSession(InferenceSession session, SessionOptions options, OnnxGraph signature)
    {
        _session = session;
        _options = options;
        Signature = signature;
    }

    public OnnxGraph Signature { get; }
    /// <summary>The batch size the graph fixes, or null for a dynamic batch axis.</summary>
    public long? FixedBatch => Signature.InputDims.Length > 0 && Signature.InputDims[0] is > 0 and var b ? b : null;

    /// <param name="forExecutor">Apply our executor's opset and function limits (the reference check does: it
    /// compares with the executor); the backend leaves them to ONNX Runtime.</param>
    public static OnnxRuntimeSession Open(string path, bool forExecutor)
    {
        var file = OnnxFile.Read(path, forExecutor);
        var signature = forExecutor ? OnnxGraph.Plan(file) : OnnxGraph.Signature(file);
        var proto = file.Model.Clone();
        foreach (var t in proto.Graph.Initializer.Where(t => t.HasDataLocation && t.DataLocation == TensorProto.Types.DataLocation.External))
        {
            t.RawData = ByteString.CopyFrom(OnnxTensors.ExternalBytes(t, file));
            t.ExternalData.Clear();
            t.DataLocation = TensorProto.Types.DataLocation.Default;
        }
        // The cut head: the graph's output becomes the scores before the final Softmax/Sigmoid.
        if (signature.CutHead is not null) proto.Graph.Output[0].Name = signature.OutputName;
        var options = new SessionOptions
        {
            IntraOpNumThreads = Math.Max(1, TorchSharp.torch.get_num_threads()),
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        try
        {
            return new OnnxRuntimeSession(new InferenceSession(proto.ToByteArray(), options), options, signature);
        }
        catch (OnnxRuntimeException e)
        {
            options.Dispose();
            throw new ModelFormatException($"{path}: ONNX Runtime cannot load the model ({FirstLine(e.Message)})");
        }
    }

    /// <summary>Scores [n·K] (row-major) for <paramref name="fed"/>: n samples of <paramref name="sampleShape"/>, flat,
    /// already normalised. Fixed-batch graphs get padded chunks; dynamic ones chunks of at most <paramref name="maxBatch"/>.</summary>
    public float[] Run(float[] fed, int n, int[] sampleShape, string what, int maxBatch = 1024)
    {
        int sample = sampleShape.Aggregate(1, (x, y) => x * y);
        int step = FixedBatch is { } f ? (int)f : Math.Max(1, maxBatch);
        var scores = new List<float>();
        for (int start = 0; start < n; start += step)
        {
            int length = Math.Min(step, n - start);
            int rows = FixedBatch is null ? length : step;
            var data = new float[(long)rows * sample];
            Array.Copy(fed, (long)start * sample, data, 0, (long)length * sample);
            try
            {
                using var results = _session.Run([NamedOnnxValue.CreateFromTensor(Signature.InputName, new DenseTensor(data, [rows, .. sampleShape]))]);
                var values = results.First().AsTensor<float>().ToArray();
                scores.AddRange(values.Take(values.Length / rows * length));
            }
            catch (OnnxRuntimeException e)
            {
                throw new ModelFormatException($"{what}: ONNX Runtime fails on a batch of shape [{rows},{string.Join(",", sampleShape)}] ({FirstLine(e.Message)})");
            }
        }
        return scores.ToArray();
    }

    private static string FirstLine(string text)
    {
        var line = text.ReplaceLineEndings(" ");
        return line.Length > 200 ? line[..200] + "…" : line;
    }

    public void Dispose()
    {
        _session.Dispose();
        _options.Dispose();
    }
}
