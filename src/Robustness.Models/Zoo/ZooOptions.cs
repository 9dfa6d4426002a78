namespace Robustness.Models;

/// <summary>How to build a zoo architecture. Unset values take the architecture's defaults.</summary>
public sealed record ZooOptions
{
    /// <summary>Per-sample input shape (C,H,W for the CNNs; any shape for mlp, which flattens it).</summary>
    public int[]? InputShape { get; init; }
    public int NumClasses { get; init; } = 10;
    /// <summary>mlp only: hidden layer widths (default 256,256).</summary>
    public IReadOnlyList<int>? Hidden { get; init; }
    /// <summary>mlp only: relu, tanh, sigmoid or linear between the layers.</summary>
    public string Activation { get; init; } = "relu";
}
