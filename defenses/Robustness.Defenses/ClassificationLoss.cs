using Robustness.Core;
using static TorchSharp.torch;

namespace Robustness.Defenses;

/// <summary>
/// The supervised loss a model is trained with, chosen by its outputs (<see cref="ClassificationLosses.For"/>): softmax
/// cross-entropy for class labels, binary cross-entropy with logits for K sigmoid outputs — against multi-hot rows for
/// a multi-label model, against one-hot rows for a one-vs-rest single-label model. Every training objective (standard,
/// PGD-AT, FGSM-RS, TRADES, noise) takes its supervised term from here.
/// </summary>
public interface IClassificationLoss
{
    /// <summary>"cross-entropy", "bce" or "one-vs-rest-bce".</summary>
    string Name { get; }
    /// <summary>Batch mean of the per-sample loss (BCE summed over the K outputs, so each logit gets the gradient
    /// σ(z) − y, as softmax cross-entropy gives p − y).</summary>
    Tensor Mean(Tensor logits, Tensor labels);
    /// <summary>Per-sample loss [N].</summary>
    Tensor PerSample(Tensor logits, Tensor labels);
    /// <summary>Number of correctly classified samples (int64 scalar on the device; multi-label: exact matches).</summary>
    Tensor Correct(Tensor logits, Tensor labels);
}

public static class ClassificationLosses
{
    public static IClassificationLoss CrossEntropy { get; } = new SoftmaxCrossEntropyLoss();
    public static IClassificationLoss MultiLabel { get; } = new MultiLabelBceLoss();
    public static IClassificationLoss OneVsRest { get; } = new OneVsRestBceLoss();

    public static IClassificationLoss For(ModelSpec spec) =>
        spec.MultiLabel ? MultiLabel : spec.SigmoidOutputs ? OneVsRest : CrossEntropy;

    private sealed class SoftmaxCrossEntropyLoss : IClassificationLoss
    {
        public string Name => "cross-entropy";
        public Tensor Mean(Tensor logits, Tensor labels) => nn.functional.cross_entropy(logits, Check(labels));
        public Tensor PerSample(Tensor logits, Tensor labels) => nn.functional.cross_entropy(logits, Check(labels), reduction: nn.Reduction.None);
        public Tensor Correct(Tensor logits, Tensor labels) => logits.argmax(1).eq(labels).sum();
    }

    private sealed class MultiLabelBceLoss : IClassificationLoss
    {
        public string Name => "bce";
        public Tensor Mean(Tensor logits, Tensor labels) => PerSample(logits, labels).mean();
        public Tensor PerSample(Tensor logits, Tensor labels)
        {
            if (labels.dim() != 2)
                throw new InputException("multi-label training needs multi-hot labels [N,K]; the data has class labels (a single-label dataset)");
            return nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction: nn.Reduction.None).sum([1L]);
        }
        public Tensor Correct(Tensor logits, Tensor labels) => MultiLabelTargets.Flipped(logits, labels).any(1).logical_not().sum();
    }

    private sealed class OneVsRestBceLoss : IClassificationLoss
    {
        public string Name => "one-vs-rest-bce";
        public Tensor Mean(Tensor logits, Tensor labels) => PerSample(logits, labels).mean();
        public Tensor PerSample(Tensor logits, Tensor labels)
        {
            var oneHot = nn.functional.one_hot(Check(labels), logits.shape[1]).to(logits.dtype);
            return nn.functional.binary_cross_entropy_with_logits(logits, oneHot, reduction: nn.Reduction.None).sum([1L]);
        }
        public Tensor Correct(Tensor logits, Tensor labels) => logits.argmax(1).eq(labels).sum();
    }

    private static Tensor Check(Tensor labels) => labels.dim() == 1 ? labels
        : throw new InputException("this model has a single-label head but the data has multi-hot labels; train it as a multi-label model");
}
