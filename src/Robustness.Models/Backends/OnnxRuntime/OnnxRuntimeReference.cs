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
        using var session = OnnxRuntimeSession.Open(path, forExecutor: true);
        using var scope = NewDisposeScope();
        var x = inputs.to(ScalarType.Float32).cpu().contiguous();
        Tensor ours;
        using (no_grad()) ours = model.Classifier.Logits(x.to(model.Classifier.Device)).cpu();
        var spec = model.Classifier.Spec;
        var fed = OnnxRuntimeClassifier.Normalised(x, spec).data<float>().ToArray();
        var theirs = session.Run(fed, (int)x.shape[0], x.shape.Skip(1).Select(d => (int)d).ToArray(), path);
        var reference = tensor(theirs).reshape(ours.shape);
        double diff = (ours - reference).abs().max().item<float>();
        double scale = reference.abs().max().item<float>();
        int agree = (int)ours.argmax(1).eq(reference.argmax(1)).sum().item<long>();
        return new OnnxRuntimeComparison((int)x.shape[0], diff, scale, agree, session.Signature.OutputName);
    }
}
