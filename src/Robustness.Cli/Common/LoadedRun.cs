using Robustness.Core;
using Robustness.Data;
using Robustness.Models;
using static TorchSharp.torch;

namespace Robustness.Cli.Common;

/// <summary>The model, the samples and the device of an attack or evaluation run, checked against each other.</summary>
public sealed class LoadedRun : IDisposable
{
    private LoadedRun(TorchClassifier model, ImageDataset data, long[] indices, Device device, string modelPath, string modelSha256)
    {
        Model = model;
        Data = data;
        Indices = indices;
        Device = device;
        ModelPath = modelPath;
        ModelSha256 = modelSha256;
    }

    public TorchClassifier Model { get; }
    /// <summary>The whole split as read (indices refer to its rows).</summary>
    public ImageDataset Data { get; }
    public long[] Indices { get; }
    public Device Device { get; }
    public string ModelPath { get; }
    public string ModelSha256 { get; }

    public static LoadedRun Open(ModelDataSelection inputs, long seed, string deviceText, int threads)
    {
        var (modelPath, arch, data, split, dataDir, n, sampleMode) =
            (inputs.Model, inputs.Arch, inputs.Data, inputs.Split, inputs.DataDir, inputs.N, inputs.SampleMode);
        SharedOptions.ApplyThreads(threads);
        var device = Devices.Parse(deviceText);
        Seeding.Seed(seed);
        var model = ModelFile.Load(modelPath, device, arch);
        try
        {
            var dataset = DatasetCatalog.Load(data, split, dataDir);
            try
            {
                CheckCompatible(dataset, model.Spec, data);
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
    /// Refuses a dataset the model cannot take: another sample shape, more classes than outputs, or NaN/Inf pixels.
    /// No shipped reader can produce NaN (their formats hold bytes); the check guards datasets built in code.
    /// </summary>
    public static void CheckCompatible(ImageDataset dataset, ModelSpec spec, string data)
    {
        var expected = spec.InputShape;
        if (!dataset.SampleShape.SequenceEqual(expected))
            throw new InputException($"--data: {data} has samples of shape [{string.Join(",", dataset.SampleShape)}] but the model expects [{string.Join(",", expected)}]");
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
