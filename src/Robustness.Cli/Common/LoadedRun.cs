using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Data;
using Robustness.Models;
using static TorchSharp.torch;

namespace Robustness.Cli.Common;

/// <summary>
/// The model, the samples and the device of an attack or evaluation run, checked against each other. The model is
/// what the attacks see: white-box (our loaders), query-only (ONNX Runtime), or either behind a label-only view; a
/// transfer surrogate, when given, is loaded white-box on the same device and must take the same inputs.
/// </summary>
public sealed class LoadedRun : IDisposable
{
    private readonly IDisposable _owned;

    private LoadedRun(IDisposable owned, IClassifier model, TorchClassifier? whiteBox, ModelDescription description, ImageDataset data, long[] indices,
        Device device, string modelPath, string modelSha256)
    {
        _owned = owned;
        Model = model;
        WhiteBox = whiteBox;
        Description = description;
        Data = data;
        Indices = indices;
        Device = device;
        ModelPath = modelPath;
        ModelSha256 = modelSha256;
    }

    /// <summary>The model under attack as the attacks see it (a label-only view with --label-only).</summary>
    public IClassifier Model { get; }
    /// <summary>The white-box classifier behind <see cref="Model"/>; null for a query-only backend.</summary>
    public TorchClassifier? WhiteBox { get; }
    /// <summary>What the model lets attacks see.</summary>
    public ModelAccess Access => ModelAccesses.Of(Model);
    /// <summary>Format, what was inferred and what assumed.</summary>
    public ModelDescription Description { get; }
    /// <summary>The whole split as read (indices refer to its rows).</summary>
    public ImageDataset Data { get; }
    public long[] Indices { get; }
    public Device Device { get; }
    public string ModelPath { get; }
    public string ModelSha256 { get; }
    /// <summary>The transfer surrogate (--transfer-from), or null.</summary>
    public Surrogate? Surrogate { get; private set; }
    private LoadedModel? _surrogate;

    public static LoadedRun Open(ModelDataSelection inputs, long seed, string deviceText, int threads)
    {
        var (modelPath, data, n, sampleMode) = (inputs.Model, inputs.Data, inputs.N, inputs.SampleMode);
        SharedOptions.ApplyThreads(threads);
        var device = Devices.Parse(deviceText);
        Seeding.Seed(seed);
        var (owned, classifier, whiteBox, description, dataset) = LoadModelAndData(inputs, device);
        LoadedRun? run = null;
        try
        {
            if (inputs.LabelOnly && classifier.Spec.MultiLabel)
                throw new InputException("--label-only: answers with the top-1 class; a multi-label model's answer is a label set (attack it white-box or with --transfer-from)");
            var model = inputs.LabelOnly ? QueryOnlyClassifier.LabelOnly(classifier) : classifier;
            CheckCompatible(dataset, model.Spec, data);
            var indices = SampleSelection.Indices(dataset.Count, n, sampleMode, seed);
            run = new LoadedRun(owned, model, whiteBox, description, dataset, indices, device, modelPath, ModelFile.Sha256(modelPath));
            if (inputs.TransferFrom is { } surrogate) run.LoadSurrogate(surrogate, inputs.Contract, device);
            return run;
        }
        catch
        {
            if (run is not null) run.Dispose();
            else
            {
                dataset.Dispose();
                owned.Dispose();
            }
            throw;
        }
    }

    /// <summary>The surrogate, white-box, on the run's device. An ONNX or TorchScript surrogate takes the model's
    /// input contract (shape, bounds, normalisation); our own files carry theirs. Both must agree with the model.</summary>
    private void LoadSurrogate(string path, InputContract contract, Device device)
    {
        var spec = Model.Spec;
        var given = ModelLoader.NeedsContract(path)
            ? contract with { Labels = null, FallbackInputShape = spec.InputShape, FallbackSource = "--model" }
            : InputContract.None;
        try { _surrogate = ModelLoader.Load(path, device, given); }
        catch (InputException e) { throw new InputException($"--transfer-from: {ParameterFlags.Message(e, null)}"); }
        var s = _surrogate.Classifier.Spec;
        if (s.MultiLabel != spec.MultiLabel)
            throw new InputException($"--transfer-from: {path} is {(s.MultiLabel ? "multi-label" : "single-label")} but --model is {(spec.MultiLabel ? "multi-label" : "single-label")}");
        if (!s.InputShape.SequenceEqual(spec.InputShape) || s.NumClasses != spec.NumClasses || s.Bounds != spec.Bounds)
            throw new InputException($"--transfer-from: {path} takes [{string.Join(",", s.InputShape)}] in [{s.Bounds}] with {s.NumClasses} classes, " +
                $"but --model takes [{string.Join(",", spec.InputShape)}] in [{spec.Bounds}] with {spec.NumClasses}");
        Surrogate = new Surrogate(_surrogate.Classifier, Path.GetFileName(path), ModelFile.Sha256(path));
    }

    /// <summary>
    /// The model, then the data; a model that does not fix its input shape (TorchScript, an ONNX graph with symbolic
    /// sizes) and was given none takes the dataset's.
    /// </summary>
    private static (IDisposable Owned, IClassifier Model, TorchClassifier? WhiteBox, ModelDescription Description, ImageDataset Data) LoadModelAndData(
        ModelDataSelection inputs, Device device)
    {
        // Image folders are decoded as they are (channels and size from the files, after --resize/--center-crop): a
        // mismatch with the model is reported by CheckCompatible, never silently converted.
        ImageDataset LoadData() => DatasetCatalog.Load(inputs.Data, inputs.Split, inputs.DataDir, new ImageFolderOptions
        {
            Resize = inputs.Resize,
            CenterCrop = inputs.CenterCrop,
            AllowEmptyLabels = inputs.AllowEmptyLabels,
        });
        bool ort = inputs.Backend == "onnxruntime";
        if (ort && inputs.Arch is not null) throw new InputException("--arch: is for state dicts; --backend onnxruntime runs an ONNX graph");
        (IDisposable, IClassifier, TorchClassifier?, ModelDescription) Load(InputContract contract)
        {
            if (ort)
            {
                var q = ModelLoader.LoadOnnxRuntime(inputs.Model, contract);
                return (q, q.Classifier, null, q.Description);
            }
            var m = ModelLoader.Load(inputs.Model, device, contract, inputs.Arch);
            return (m, m.Classifier, m.Classifier, m.Description);
        }
        (IDisposable, IClassifier, TorchClassifier?, ModelDescription) model;
        try { model = Load(inputs.Contract); }
        catch (ParameterException e) when (e.Parameter == nameof(InputContract.InputShape) && inputs.Contract.InputShape is null)
        {
            var data = LoadData();
            try
            {
                var loaded = Load(inputs.Contract with { FallbackInputShape = data.SampleShape, FallbackSource = $"--data {inputs.Data}" });
                return (loaded.Item1, loaded.Item2, loaded.Item3, loaded.Item4, data);
            }
            catch
            {
                data.Dispose();
                throw;
            }
        }
        try { return (model.Item1, model.Item2, model.Item3, model.Item4, LoadData()); }
        catch
        {
            model.Item1.Dispose();
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

    /// <summary>The attack options with the surrogate: transfer:NAME crafts on it, and so does any gradient attack
    /// when the model gives no gradients (the only way such an attack can run on it).</summary>
    public AttackOptions WithSurrogate(AttackOptions options) =>
        options with { Surrogate = Surrogate, TransferGradientAttacks = Surrogate is not null && Access < ModelAccess.Gradients };

    /// <summary>A surrogate no attack uses is a mistake worth saying (a white-box model attacked directly).</summary>
    public void CheckSurrogateUsed(IEnumerable<IAttack> attacks)
    {
        if (Surrogate is not null && !attacks.Any(a => a is TransferAttack))
            throw new InputException("--transfer-from: no attack uses the surrogate; the model gives gradients, so plain attack names attack it directly: name transfer attacks transfer:NAME");
    }

    /// <summary>What the attacks run on: the model, or with bf16 a reduced-precision gradient view of it (disposed
    /// with the returned scope). bf16 is for white-box gradient passes only.</summary>
    public (IClassifier Model, IDisposable? View) AttackModel(GradientPrecision precision)
    {
        if (precision == GradientPrecision.Float32) return (Model, null);
        if (Access != ModelAccess.Gradients || WhiteBox is null)
            throw new InputException($"--precision: {precision.Name()} runs the gradient passes of white-box attacks, but the model gives no gradients, only {Access.Describe()}");
        if (NativeBf16.Warning(precision, Model.Device, "--precision") is { } warning) Console.Error.WriteLine($"robust: warning: {warning}");
        var view = Bf16Views.ViewOf(WhiteBox, precision)!;
        return (view, view);
    }

    /// <summary>Class names for display: the model's labels when it has them, else the dataset's.</summary>
    public IReadOnlyList<string> ClassNames => Model.Spec.Labels.Count == Model.Spec.NumClasses ? Model.Spec.Labels : Data.ClassNames;

    public void Dispose()
    {
        _owned.Dispose();
        _surrogate?.Dispose();
        Data.Dispose();
    }
}
