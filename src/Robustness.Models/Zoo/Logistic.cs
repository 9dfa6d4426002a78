using Robustness.Core.Graphs;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Models.Zoo;

#pragma warning disable IDE1006 // naming: PyTorch attribute names

/// <summary>
/// logistic: one linear layer on the flattened input, logits = W·x + b (keys fc.weight [K, d], fc.bias [K]). Trained
/// with softmax cross-entropy it is multinomial logistic regression; with K independent sigmoids (binary
/// cross-entropy, <c>output = sigmoid</c>) one-vs-rest logistic regression, the multi-label model of the lecture.
/// Linear scores make the worst case over an ε-ball exact: each moves by at most ε·‖w_ℓ‖_dual.
/// </summary>
internal sealed class Logistic : nn.Module<Tensor, Tensor>, IDescribedNetwork
{
    private readonly Linear fc;

    public Logistic(long inputs, int classes) : base("logistic")
    {
        fc = nn.Linear(inputs, classes);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return fc.call(x.flatten(1)).MoveToOuterDisposeScope();
    }

    public NetworkGraph Describe()
    {
        var g = new NetworkGraphBuilder();
        g.Then("flatten", FlattenOp.Instance);
        g.Then("fc", Layers.Linear(fc));
        return g.Build();
    }
}

/// <summary>
/// Subtracts a constant from every logit: the decision threshold τ of a multi-label model folded into its outputs
/// (decision logit = raw logit − logit(τ)), so that "predicted" is "decision logit &gt; 0" everywhere. No parameters.
/// </summary>
internal sealed class DecisionShift : nn.Module<Tensor, Tensor>
{
    private readonly double _offset;

    public DecisionShift(double offset) : base("decision_shift") => _offset = offset;

    public override Tensor forward(Tensor logits) => logits - Keep(_offset);
}
