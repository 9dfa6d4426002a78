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
    /// <summary>σ of Gaussian noise added to the input in every forward pass (a randomised model), or null.</summary>
    public double? InputNoise { get; init; }
    /// <summary>"torch" (our loaders, white-box) or "onnxruntime" (ONNX Runtime, query-only).</summary>
    public string Backend { get; init; } = "torch";
    /// <summary>Attack the model through its top-1 label only.</summary>
    public bool LabelOnly { get; init; }
    /// <summary>A white-box model that transfer attacks craft on.</summary>
    public string? TransferFrom { get; init; }
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
    public Option<double?> InputNoise { get; } = new("--input-noise")
    {
        Description = "Evaluate the model as a randomised defense: Gaussian noise of this σ (input units) added to the input in every forward pass, " +
            "eval mode included. Attack it with --preset rand or --eot K (gradients averaged over K passes).",
    };
    public Option<string> Backend { get; } = new("--backend")
    {
        Description = "How to run --model: torch (default: our loaders; white-box, every attack) or onnxruntime (an ONNX graph run by ONNX Runtime: " +
            "query-only, scores without gradients, for graphs with operators we do not translate; score-based, decision-based and transfer attacks).",
        DefaultValueFactory = _ => "torch",
    };
    public Option<bool> LabelOnly { get; } = new("--label-only")
    {
        Description = "Attack the model through its top-1 label only, as a deployed API answers (decision-based and transfer attacks: hopskipjump, boundary, --transfer-from).",
    };
    public Option<string?> TransferFrom { get; } = new("--transfer-from")
    {
        Description = "A white-box surrogate model file (zoo .safetensors, ONNX, TorchScript) to craft transfer attacks on: transfer:NAME in the attack list, " +
            "or any gradient attack when the model gives no gradients; each adversarial is tried once on --model. With the same file as --model and --input-noise: the baseline an EOT attack must beat.",
    };

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
        InputNoise = p.GetValue(InputNoise),
        Backend = p.GetValue(Backend)!.Trim().ToLowerInvariant() switch
        {
            "torch" => "torch",
            "onnxruntime" or "ort" => "onnxruntime",
            var b => throw new Core.InputException($"--backend: '{b}' is not torch or onnxruntime"),
        },
        LabelOnly = p.GetValue(LabelOnly),
        TransferFrom = p.GetValue(TransferFrom),
    };

    /// <summary>Adds the options in front of the command's others, so help and "required" errors list the model first.</summary>
    public void AddTo(Command command)
    {
        Option[] options = [Model, Arch, Backend, LabelOnly, TransferFrom, .. Contract.All, InputNoise, Data, Split, DataDir, Resize, CenterCrop, AllowEmptyLabels, N, Sample];
        for (int i = 0; i < options.Length; i++) command.Options.Insert(i, options[i]);
    }
}
