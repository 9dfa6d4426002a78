using System.CommandLine;

namespace Robustness.Cli.Common;

/// <summary>Which model, and which samples of which dataset, an `attack` or `eval` run works on.</summary>
public sealed record ModelDataSelection
{
    public required string Model { get; init; }
    public string? Arch { get; init; }
    public string Data { get; init; } = "fashion-mnist";
    public string Split { get; init; } = "test";
    public string? DataDir { get; init; }
    public int? N { get; init; }
    public string SampleMode { get; init; } = "first";
    /// <summary>Input contract of an ONNX or TorchScript model.</summary>
    public Robustness.Models.InputContract Contract { get; init; } = Robustness.Models.InputContract.None;
    /// <summary>Image-folder preprocessing (shorter side resized, then center crop).</summary>
    public int? Resize { get; init; }
    public int? CenterCrop { get; init; }
    public bool AllowEmptyLabels { get; init; }
}

/// <summary>The model and sample-selection options shared by `attack` and `eval`, defined once.</summary>
public sealed class ModelDataOptionSet
{
    public Option<string> Model { get; } = SharedOptions.Model();
    public Option<string?> Arch { get; } = SharedOptions.Arch();
    public Option<string> Data { get; } = SharedOptions.Data();
    public Option<string> Split { get; } = new("--split") { Description = "train or test.", DefaultValueFactory = _ => "test" };
    public Option<string?> DataDir { get; } = SharedOptions.DataDir();
    public Option<int?> N { get; } = SharedOptions.N();
    public Option<string> Sample { get; } = SharedOptions.Sample();
    public ModelContractOptions Contract { get; } = new();
    public Option<int?> Resize { get; } = SharedOptions.Resize();
    public Option<int?> CenterCrop { get; } = SharedOptions.CenterCrop();
    public Option<bool> AllowEmptyLabels { get; } = SharedOptions.AllowEmptyLabels();

    public ModelDataSelection Read(ParseResult p) => new()
    {
        Model = p.GetValue(Model)!,
        Arch = p.GetValue(Arch),
        Data = p.GetValue(Data)!,
        Split = p.GetValue(Split)!,
        DataDir = p.GetValue(DataDir),
        N = p.GetValue(N),
        SampleMode = p.GetValue(Sample)!,
        Contract = Contract.Read(p),
        Resize = p.GetValue(Resize),
        CenterCrop = p.GetValue(CenterCrop),
        AllowEmptyLabels = p.GetValue(AllowEmptyLabels),
    };

    /// <summary>Adds the options in front of the command's others, so help and "required" errors list the model first.</summary>
    public void AddTo(Command command)
    {
        Option[] options = [Model, Arch, .. Contract.All, Data, Split, DataDir, Resize, CenterCrop, AllowEmptyLabels, N, Sample];
        for (int i = 0; i < options.Length; i++) command.Options.Insert(i, options[i]);
    }
}
