using Robustness.Core;
using Robustness.Data;
using Robustness.Models;
using static TorchSharp.torch;

namespace Robustness.Cli.Common;

/// <summary>The model, the samples and the device of an attack or evaluation run, checked against each other.</summary>
public sealed class LoadedRun : IDisposable
{
    private LoadedRun(LoadedModel loaded, ImageDataset data, long[] indices, Device device, string modelPath, string modelSha256)
    {
        Loaded = loaded;
        Model = loaded.Classifier;
        Data = data;
        Indices = indices;
        Device = device;
        ModelPath = modelPath;
        ModelSha256 = modelSha256;
    }

    public TorchClassifier Model { get; }
    /// <summary>The model with its description (format, what was inferred and what assumed).</summary>
    public LoadedModel Loaded { get; }
    /// <summary>The whole split as read (indices refer to its rows).</summary>
    public ImageDataset Data { get; }
    public long[] Indices { get; }
    public Device Device { get; }
    public string ModelPath { get; }
    public string ModelSha256 { get; }

    public static LoadedRun Open(ModelDataSelection inputs, long seed, string deviceText, int threads)
    {
        var (modelPath, data, n, sampleMode) = (inputs.Model, inputs.Data, inputs.N, inputs.SampleMode);
        SharedOptions.ApplyThreads(threads);
        var device = Devices.Parse(deviceText);
        Seeding.Seed(seed);
        var (model, dataset) = LoadModelAndData(inputs, device);
        try
        {
            try
            {
                CheckCompatible(dataset, model.Classifier.Spec, data);
                var indices = SampleSelection.Indices(dataset.Count, n, sampleMode, seed);
                return new LoadedRun(model, dataset, indices, device, modelPath, ModelFile.Sha256(modelPath));
            }
            catch
            {
                dataset.Dispose();
                throw;
            }
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The model, then the data; a model that does not fix its input shape (TorchScript, an ONNX graph with symbolic
    /// sizes) and was given none takes the dataset's.
    /// </summary>
    private static (LoadedModel, ImageDataset) LoadModelAndData(ModelDataSelection inputs, Device device)
    {
        // Image folders are decoded as they are (channels and size from the files, after --resize/--center-crop): a
        // mismatch with the model is reported by CheckCompatible, never silently converted.
        ImageDataset LoadData() => DatasetCatalog.Load(inputs.Data, inputs.Split, inputs.DataDir, new ImageFolderOptions
        {
            Resize = inputs.Resize,
            CenterCrop = inputs.CenterCrop,
            AllowEmptyLabels = inputs.AllowEmptyLabels,
        });
        LoadedModel model;
        try { model = ModelLoader.Load(inputs.Model, device, inputs.Contract, inputs.Arch); }
        catch (ParameterException e) when (e.Parameter == nameof(InputContract.InputShape) && inputs.Contract.InputShape is null)
        {
            var data = LoadData();
            try
            {
                var contract = inputs.Contract with { FallbackInputShape = data.SampleShape, FallbackSource = $"--data {inputs.Data}" };
                return (ModelLoader.Load(inputs.Model, device, contract, inputs.Arch), data);
            }
            catch
            {
                data.Dispose();
                throw;
            }
        }
        try { return (model, LoadData()); }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Refuses a dataset the model cannot take: another sample shape, more classes than outputs, or NaN/Inf pixels.
    /// No shipped reader can produce NaN (their formats hold bytes); the check guards datasets built in code.
    /// </summary>
    public static void CheckCompatible(ImageDataset dataset, ModelSpec spec, string data)
    {
        if (dataset.MultiLabel != spec.MultiLabel)
            throw new InputException(spec.MultiLabel
                ? $"--data: the model is multi-label but {data} has one class per image (it needs label sets, e.g. fashion-mnist-multi or a folder with labels.csv)"
                : $"--data: {data} has label sets (multi-label) but the model has a single-label head (train one with --multi-label)");
        var expected = spec.InputShape;
        if (!dataset.SampleShape.SequenceEqual(expected))
        {
            var hint = dataset.SampleShape.Length == 3 && expected.Length == 3 && dataset.SampleShape[0] != expected[0]
                ? $" ({dataset.SampleShape[0]}-channel images for a {expected[0]}-channel model: use a dataset with {expected[0]}-channel images)"
                : dataset.SampleShape.Length == 3 && expected.Length == 3 ? " (for an image folder, --resize and --center-crop change the size)" : "";
            throw new InputException($"--data: {data} has samples of shape [{string.Join(",", dataset.SampleShape)}] but the model expects [{string.Join(",", expected)}]{hint}");
        }
        if (dataset.MultiLabel && dataset.NumClasses != spec.NumClasses)
            throw new InputException($"--data: {data} has {dataset.NumClasses} labels but the model outputs {spec.NumClasses}");
        if (dataset.NumClasses > spec.NumClasses)
            throw new InputException($"--data: {data} has {dataset.NumClasses} classes but the model outputs {spec.NumClasses}");
        using var scope = NewDisposeScope();
        if (!dataset.Images.isfinite().all().item<bool>())
            throw new InputException($"--data: {data} contains NaN or Inf pixels");
    }

    /// <summary>Class names for display: the model's labels when it has them, else the dataset's.</summary>
    public IReadOnlyList<string> ClassNames => Model.Spec.Labels.Count == Model.Spec.NumClasses ? Model.Spec.Labels : Data.ClassNames;

    public void Dispose()
    {
        Model.Dispose();
        Data.Dispose();
    }
}
