using Robustness.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Robustness.Models.Zoo;

#pragma warning disable IDE1006 // naming: PyTorch attribute names

/// <summary>
/// lstm / gru: a sequence classifier that reads a C×H×W image row by row — H steps, each the C·W pixels of one row
/// (channel-major within the row) — through 1 or 2 stacked recurrent layers (PyTorch's nn.LSTM / nn.GRU with
/// batch_first), and maps the last step's hidden state of the top layer (= h_n[-1]) through (dropout and) a linear
/// layer. Keys: <c>lstm.weight_ih_l0</c> … (or <c>gru.…</c>), <c>fc.weight</c>, <c>fc.bias</c>. The attack sees pixels;
/// gradients flow back through every step of the recurrence.
/// </summary>
internal sealed class RecurrentNet : nn.Module<Tensor, Tensor>
{
    private readonly LSTM? _lstm;
    private readonly GRU? _gru;
    private readonly nn.Module _rnn;
    private readonly Linear _fc;
    private readonly double _dropout;

    public RecurrentNet(string kind, int channels, int width, int hidden, int layers, int classes, double dropout = 0) : base(kind)
    {
        Kind = kind;
        Hidden = hidden;
        Layers = layers;
        // No dropout between the recurrent layers: their train and eval modes compute the same function.
        if (kind == ModelZoo.LstmName)
        {
            _lstm = nn.LSTM(channels * width, hidden, layers, batchFirst: true);
            _rnn = _lstm;
        }
        else
        {
            _gru = nn.GRU(channels * width, hidden, layers, batchFirst: true);
            _rnn = _gru;
        }
        _fc = nn.Linear(hidden, classes);
        _dropout = dropout;
        register_module(kind, _rnn);
        register_module("fc", _fc);
    }

    public string Kind { get; }
    public int Hidden { get; }
    public int Layers { get; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        if (x.dim() != 4) throw new InputException($"{Kind}: expects [N, C, H, W] inputs, got [{string.Join(",", x.shape)}]");
        long n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var sequence = x.permute(0, 2, 1, 3).reshape(n, h, c * w);
        var output = _lstm is not null ? _lstm.call(sequence).Item1 : _gru!.call(sequence).Item1;
        var last = output.select(1, h - 1);
        return _fc.call(Head.Dropout(last, _dropout, training)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// cuDNN computes recurrent backward passes only in training mode, and attacks differentiate the model in eval
    /// mode. The recurrent layers have no dropout, so their mode does not change the function: on CUDA they stay in
    /// training mode; everything else (and every layer on the CPU) follows <paramref name="train"/>.
    /// </summary>
    public override void train(bool train = true)
    {
        base.train(train);
        if (!train && _fc.weight.device_type == DeviceType.CUDA) _rnn.train(true);
    }

    /// <summary>Trainable parameters of <paramref name="layers"/> stacked layers with <paramref name="gates"/> gates
    /// (LSTM 4, GRU 3), two bias vectors per layer as in PyTorch, plus the linear head.</summary>
    public static long ParameterCount(int gates, long inputs, long hidden, int layers, long classes)
    {
        long total = 0;
        for (int l = 0; l < layers; l++)
            total += gates * hidden * ((l == 0 ? inputs : hidden) + hidden + 2);
        return total + hidden * classes + classes;
    }
}
