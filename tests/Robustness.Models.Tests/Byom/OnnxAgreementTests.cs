using Robustness.Models.Backends.OnnxRuntime;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Tests.Byom;

/// <summary>Every ONNX fixture, executed by our TorchSharp graph executor, against ONNX Runtime and against the
/// PyTorch model it was exported from (logits recorded by make_models.py).</summary>
public sealed class OnnxAgreementTests
{
    private const double Tolerance = 1e-4; // relative to the logit scale

    [Theory]
    [MemberData(nameof(ByomFixtures.OnnxFiles), MemberType = typeof(ByomFixtures))]
    public void Matches_OnnxRuntime_and_PyTorch(string file)
    {
        var (_, modelName, inputsKey) = ByomFixtures.Onnx.Single(o => o.File == file);
        var path = ByomFixtures.File(file);
        using var inputs = ByomFixtures.Inputs();
        using var model = ModelLoader.Load(path, CPU);
        Assert.Equal(ModelFormat.Onnx, model.Format);
        Assert.Equal(ByomFixtures.ShapeOf(inputsKey), model.Classifier.Spec.InputShape);

        using var scope = NewDisposeScope();
        var x = inputs.Tensors[inputsKey];
        var check = OnnxRuntimeReference.Compare(model, path, x);
        Assert.True(check.Relative <= Tolerance, $"{file}: ours vs ONNX Runtime differ by {check.MaxAbsDifference} (scale {check.Scale})");
        Assert.Equal(check.Samples, check.PredictionsAgree);

        Tensor ours;
        using (no_grad()) ours = model.Classifier.Logits(x);
        var pytorch = inputs.Tensors[modelName + ".logits"];
        // PyTorch recorded the graph's own output; compare in the same space (a cut Softmax is re-applied).
        var head = model.Classifier.Spec.Extra["onnx_final_activation_removed"];
        var comparable = head == "Softmax" ? ours.softmax(1) : head == "Sigmoid" ? ours.sigmoid() : ours;
        double scale = Math.Max(1e-6, pytorch.abs().max().item<float>());
        double diff = (comparable - pytorch).abs().max().item<float>();
        Assert.True(diff / scale <= Tolerance, $"{file}: ours vs PyTorch differ by {diff}");
        Assert.Equal(pytorch.argmax(1).data<long>().ToArray(), ours.argmax(1).data<long>().ToArray());

        // Exact input gradients: autograd through the executed graph against PyTorch's autograd on the original model.
        if (head == "none")
            GradientCheck.AssertMatches(model.Classifier, x, inputs.Tensors[modelName + ".grad"], file);
    }
}
