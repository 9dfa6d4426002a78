using System.Globalization;
using Robustness.Core;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks;

/// <summary>
/// The target label set of a targeted multi-label attack (Song et al. 2018, "Multi-label adversarial perturbations"):
/// the true set with some labels turned on or off and every other label unchanged. Either given by name
/// (<see cref="TurnOn"/>, <see cref="TurnOff"/>, e.g. parsed from "+Bag,-Trouser") or <see cref="FlipCount"/> labels
/// per sample chosen at random (seeded) and flipped. <see cref="Build"/> makes the goals (<see cref="MultiLabelTargets"/>);
/// the attack succeeds when every label is as in the goal — the targeted ones as wanted, the others unchanged.
/// </summary>
public sealed record LabelGoal
{
    public IReadOnlyList<int> TurnOn { get; init; } = [];
    public IReadOnlyList<int> TurnOff { get; init; } = [];
    /// <summary>Flip this many labels per sample, chosen uniformly without replacement.</summary>
    public int? FlipCount { get; init; }

    public static LabelGoal Flip(int k) =>
        k >= 1 ? new LabelGoal { FlipCount = k } : throw new ParameterException(nameof(FlipCount), $"must be ≥ 1, got {k}");

    /// <summary>"+Bag,-Trouser,Sneaker": '+' or no sign turns a label on, '-' turns it off; names or indices.</summary>
    public static LabelGoal Parse(string text, IReadOnlyList<string> classNames)
    {
        var on = new List<int>();
        var off = new List<int>();
        foreach (var raw in text.Split([',', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            bool turnOff = raw.StartsWith('-');
            var name = raw.TrimStart('+', '-').Trim();
            int index = Enumerable.Range(0, classNames.Count).FirstOrDefault(i => string.Equals(classNames[i], name, StringComparison.OrdinalIgnoreCase), -1);
            if (index < 0 && int.TryParse(name, NumberStyles.Integer, CultureInfo.InvariantCulture, out var i) && i >= 0 && i < classNames.Count) index = i;
            if (index < 0)
                throw new ParameterException("TargetLabels", $"unknown label '{name}' (valid: {string.Join(", ", classNames)}, or 0..{classNames.Count - 1})");
            if (on.Contains(index) || off.Contains(index))
                throw new ParameterException("TargetLabels", $"label '{classNames[index]}' is given twice");
            (turnOff ? off : on).Add(index);
        }
        if (on.Count + off.Count == 0) throw new ParameterException("TargetLabels", "no labels given (e.g. +Bag,-Trouser)");
        return new LabelGoal { TurnOn = on, TurnOff = off };
    }

    public string Describe(IReadOnlyList<string> classNames)
    {
        if (FlipCount is { } k) return FormattableString.Invariant($"flip {k} random label(s) per sample, others unchanged");
        string Name(int c) => c < classNames.Count ? classNames[c] : c.ToString(CultureInfo.InvariantCulture);
        return string.Join(",", TurnOn.Select(c => "+" + Name(c)).Concat(TurnOff.Select(c => "-" + Name(c)))) + ", others unchanged";
    }

    /// <summary>Goals [N, K] (float, 0/1 per label) for true multi-hot labels [N, K]; randomness from <paramref name="generator"/>.</summary>
    public Tensor Build(Tensor labels, Generator? generator)
    {
        if (labels.dim() != 2) throw new ParameterException("TargetLabels", "target label sets need a multi-label model (multi-hot labels)");
        long n = labels.shape[0], k = labels.shape[1];
        using var scope = NewDisposeScope();
        Tensor goal;
        if (FlipCount is { } count)
        {
            if (count > k) throw new ParameterException(nameof(FlipCount), $"cannot flip {count} labels of {k}");
            var order = rand([n, k], generator: generator).to(labels.device).argsort(1);
            var flip = zeros([n, k], ScalarType.Bool, labels.device).scatter(1, order.narrow(1, 0, count), ones([n, count], ScalarType.Bool, labels.device));
            goal = MultiLabelTargets.FlipGoal(labels, flip);
        }
        else
        {
            if (TurnOn.Concat(TurnOff).Any(c => c < 0 || c >= k))
                throw new ParameterException("TargetLabels", $"label indices must be in 0..{k - 1}");
            goal = MultiLabelTargets.On(labels).to(ScalarType.Float32).clone();
            if (TurnOn.Count > 0) goal.index_fill_(1, tensor(TurnOn.Select(c => (long)c).ToArray(), device: labels.device), Keep(1f));
            if (TurnOff.Count > 0) goal.index_fill_(1, tensor(TurnOff.Select(c => (long)c).ToArray(), device: labels.device), Keep(0f));
        }
        return goal.MoveToOuterDisposeScope();
    }
}
