using System.Globalization;
using Robustness.Core;
using Robustness.Evaluation;
using Robustness.Models;

namespace Robustness.Cli.Common;

/// <summary>
/// What `attack` and `eval` put around the loaded model: Gaussian input noise (--input-noise, a randomised model) and
/// a transfer surrogate (--transfer-from, the model the attacks are crafted on). Owns the surrogate.
/// </summary>
public sealed class ModelWrapping : IDisposable
{
    private readonly LoadedModel? _surrogate;
    private readonly string? _surrogateName;

    private ModelWrapping(IGradientClassifier model, LoadedModel? surrogate, string? surrogateName, Dictionary<string, string> notes)
    {
        Model = model;
        _surrogate = surrogate;
        _surrogateName = surrogateName;
        Notes = notes;
    }

    /// <summary>The model to evaluate (the noise wrapper around <c>model</c> when asked for).</summary>
    public IGradientClassifier Model { get; }
    /// <summary>For the report's provenance.</summary>
    public IReadOnlyDictionary<string, string> Notes { get; }

    public static ModelWrapping Open(ModelDataSelection inputs, IGradientClassifier model, GradientPrecision precision, LoadedRun run)
    {
        var notes = new Dictionary<string, string>();
        if (inputs.InputNoise is { } sigma)
        {
            if (precision != GradientPrecision.Float32)
                throw new InputException("--input-noise: not with --precision bf16 (the bf16 view is checked against the float32 model; evaluate the noisy model in float32)");
            model = new NoisyInputClassifier(model, sigma);
            notes["input_noise_std"] = sigma.ToString("G", CultureInfo.InvariantCulture);
        }
        if (inputs.TransferFrom is not { } path) return new ModelWrapping(model, null, null, notes);
        var surrogate = ModelLoader.Load(path, run.Device, inputs.Contract, inputs.Arch);
        try
        {
            var (s, m) = (surrogate.Classifier.Spec, run.Model.Spec);
            if (s.NumClasses != m.NumClasses || !s.InputShape.SequenceEqual(m.InputShape) || s.Bounds != m.Bounds)
                throw new InputException($"--transfer-from {path}: the surrogate takes [{string.Join(",", s.InputShape)}] in [{s.Bounds}] to {s.NumClasses} classes, " +
                    $"the model [{string.Join(",", m.InputShape)}] in [{m.Bounds}] to {m.NumClasses}");
            notes["transfer_from"] = Path.GetFullPath(path);
            notes["transfer_from_sha256"] = ModelFile.Sha256(path);
            return new ModelWrapping(model, surrogate, Path.GetFileName(path), notes);
        }
        catch
        {
            surrogate.Dispose();
            throw;
        }
    }

    /// <summary>The suite, as transfer attacks from the surrogate when there is one.</summary>
    public IAttackSuite Suite(IAttackSuite suite) =>
        _surrogate is null ? suite : new TransferAttackSuite(suite, _surrogate.Classifier, _surrogateName!);

    public void Dispose() => _surrogate?.Dispose();
}
