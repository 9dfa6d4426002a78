using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using DenseTensor = Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>;
using Onnx;
using Robustness.Models.Formats.Onnx;
using TorchSharp;
using Tensor = TorchSharp.torch.Tensor;
using static TorchSharp.torch;

namespace Robustness.Models.Backends.OnnxRuntime;

/// <summary>How our execution of an ONNX graph compares with ONNX Runtime's on one batch.</summary>
/// <param name="MaxAbsDifference">Largest |ours − ONNX Runtime| over every score.</param>
/// <param name="Scale">Largest |score| ONNX Runtime produced (the logit scale).</param>
/// <param name="PredictionsAgree">How many samples get the same top class from both.</param>
public sealed record OnnxRuntimeComparison(int Samples, double MaxAbsDifference, double Scale, int PredictionsAgree, string ComparedOutput)
{
    /// <summary>The difference relative to the logit scale.</summary>
    public double Relative => MaxAbsDifference / Math.Max(1e-6, Scale);
}

/// <summary>
/// ONNX Runtime as the reference executor of an ONNX file: it runs the same graph (with a cut final Softmax/Sigmoid
/// cut there too, so the scores the attacks use are what is compared) on the same inputs. ONNX Runtime gets the model
/// as bytes with any external data already inlined, so it opens no file.
/// </summary>
public static class OnnxRuntimeReference
{
    /// <summary>Runs <paramref name="inputs"/> (pixels, [N, ...InputShape]) through our classifier and through ONNX Runtime.</summary>
    public static OnnxRuntimeComparison Compare(LoadedModel model, string path, Tensor inputs)
    {
        if (model.Format != ModelFormat.Onnx) throw new ArgumentException("not an ONNX model", nameof(model));
        var file = OnnxFile.Read(path);
        var plan = OnnxGraph.Plan(file);
        var proto = file.Model.Clone();
        foreach (var t in proto.Graph.Initializer.Where(t => t.HasDataLocation && t.DataLocation == TensorProto.Types.DataLocation.External))
        {
            t.RawData = ByteString.CopyFrom(OnnxTensors.ExternalBytes(t, file));
            t.ExternalData.Clear();
            t.DataLocation = TensorProto.Types.DataLocation.Default;
        }
        if (plan.CutHead is not null)
        {
            var output = proto.Graph.Output[0];
            output.Name = plan.OutputName;
        }

        using var scope = NewDisposeScope();
        var spec = model.Classifier.Spec;
        var x = inputs.to(ScalarType.Float32).cpu().contiguous();
        Tensor ours;
        using (no_grad()) ours = model.Classifier.Logits(x.to(model.Classifier.Device)).cpu();
        // The graph sees what our Normalize module feeds the network.
        var fed = x;
        if (spec.Mean is { } mean && spec.Std is { } std)
        {
            var view = new long[x.dim()];
            Array.Fill(view, 1L);
            view[1] = mean.Length;
            fed = ((x - tensor(mean).view(view)) / tensor(std).view(view)).contiguous();
        }

        long n = x.shape[0];
        long batch = plan.InputDims[0] is { } fixedBatch && fixedBatch > 0 ? fixedBatch : n;
        var sampleShape = x.shape.Skip(1).Select(d => (int)d).ToArray();
        var theirs = new List<float>();
        using var options = new SessionOptions { IntraOpNumThreads = Math.Max(1, torch.get_num_threads()), LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        using var session = new InferenceSession(proto.ToByteArray(), options);
        for (long start = 0; start < n; start += batch)
        {
            long length = Math.Min(batch, n - start);
            var chunk = fed.narrow(0, start, length);
            if (length < batch) chunk = cat([chunk, zeros([batch - length, .. x.shape.Skip(1)])], 0);
            var data = chunk.contiguous().data<float>().ToArray();
            var dense = new DenseTensor(data, [(int)batch, .. sampleShape]);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor(plan.InputName, dense)]);
            var scores = results.First().AsTensor<float>().ToArray();
            theirs.AddRange(scores.Take((int)(scores.Length / batch * length)));
        }
        var reference = tensor(theirs.ToArray()).reshape(ours.shape);
        double diff = (ours - reference).abs().max().item<float>();
        double scale = reference.abs().max().item<float>();
        int agree = (int)ours.argmax(1).eq(reference.argmax(1)).sum().item<long>();
        return new OnnxRuntimeComparison((int)n, diff, scale, agree, plan.OutputName);
    }
}
