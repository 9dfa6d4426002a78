using System.Globalization;
using Robustness.Core;
using Robustness.Models;

namespace Robustness.Cli.Common;

/// <summary>
/// What `attack` and `eval` put around the model the attacks run on: Gaussian input noise (--input-noise, a randomised
/// model). Transfer surrogates (--transfer-from) are the attacks' business (<see cref="LoadedRun.WithSurrogate"/>).
/// </summary>
public sealed record ModelWrapping(IClassifier Model, IReadOnlyDictionary<string, string> Notes)
{
    public static ModelWrapping Apply(ModelDataSelection inputs, IClassifier model, GradientPrecision precision)
    {
        var notes = new Dictionary<string, string>();
        if (inputs.InputNoise is not { } sigma) return new ModelWrapping(model, notes);
        if (precision != GradientPrecision.Float32)
            throw new InputException("--input-noise: not with --precision bf16 (the bf16 view is checked against the float32 model; evaluate the noisy model in float32)");
        if (model is not IGradientClassifier white)
            throw new InputException("--input-noise: needs a white-box model (the noise is added inside the forward pass); this one answers queries only");
        notes["input_noise_std"] = sigma.ToString("G", CultureInfo.InvariantCulture);
        return new ModelWrapping(new NoisyInputClassifier(white, sigma), notes);
    }
}
