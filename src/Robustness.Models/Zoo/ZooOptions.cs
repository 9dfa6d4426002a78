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
    /// <summary>Dropout probability on the classifier head (see <see cref="ModelZoo"/> for where each architecture
    /// puts it); 0 = none. Active only in train mode; it has no parameters, so the state-dict keys do not change.</summary>
    public double Dropout { get; init; }
    /// <summary>tiny-cnn/fmnist-cnn only: the classifier head looks at windows of this many pixels square (stride the
    /// same) and keeps each class's largest logit over them; 0 = the whole input. A presence detector for multi-label
    /// images made of items (global max pooling, Oquab et al. 2015), with one window's classifier parameters: on an
    /// input exactly one window large it is the plain network. Must be a multiple of 4 that divides the height and width.</summary>
    public int Window { get; init; }
    /// <summary>lstm/gru only: hidden units per recurrent layer (default 128).</summary>
    public int RecurrentHidden { get; init; } = ModelZoo.DefaultRecurrentHidden;
    /// <summary>lstm/gru only: stacked recurrent layers, 1 or 2 (default 1).</summary>
    public int RecurrentLayers { get; init; } = 1;
    /// <summary>How the weights start (<see cref="WeightInit"/>); loading a file overwrites them anyway.</summary>
    public WeightInit Init { get; init; } = WeightInit.Default;
}
