using Robustness.Core;
namespace Robustness.Defenses;

/// <summary>The learning rate at each optimizer iteration (0-based, counted over the whole run).</summary>
public interface ILearningRateSchedule
{
    string Name { get; }
    double At(long iteration);
}

public static class LearningRateSchedules
{
    public static readonly IReadOnlyList<string> Names = ["constant", "step", "cosine", "one-cycle"];

    public static LearningRateScheduleKind Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "constant" => LearningRateScheduleKind.Constant,
        "step" or "multistep" => LearningRateScheduleKind.Step,
        "cosine" => LearningRateScheduleKind.Cosine,
        "one-cycle" or "onecycle" or "cyclic" => LearningRateScheduleKind.OneCycle,
        _ => throw new ParameterException("Schedule", $"unknown schedule '{text}' (valid: {string.Join(", ", Names)})"),
    };

    public static ILearningRateSchedule Create(TrainingOptions options, int iterationsPerEpoch)
    {
        long total = (long)options.Epochs * iterationsPerEpoch;
        return options.Schedule switch
        {
            LearningRateScheduleKind.Constant => new ConstantSchedule(options.LearningRate),
            LearningRateScheduleKind.Step => new StepSchedule(options.LearningRate, iterationsPerEpoch,
                options.StepMilestones.Count > 0 ? options.StepMilestones : [options.Epochs * 0.5, options.Epochs * 0.75], options.StepGamma),
            LearningRateScheduleKind.Cosine => new CosineSchedule(options.LearningRate, total),
            LearningRateScheduleKind.OneCycle => new OneCycleSchedule(options.LearningRate, total),
            _ => throw new ArgumentOutOfRangeException(nameof(options)),
        };
    }
}

public sealed record ConstantSchedule(double LearningRate) : ILearningRateSchedule
{
    public string Name => "constant";
    public double At(long iteration) => LearningRate;
}

/// <summary>Multiplies the LR by γ at each milestone epoch; the epoch of iteration i is i / iterationsPerEpoch.</summary>
public sealed record StepSchedule(double LearningRate, int IterationsPerEpoch, IReadOnlyList<double> MilestoneEpochs, double Gamma) : ILearningRateSchedule
{
    public string Name => "step";

    public double At(long iteration)
    {
        double epoch = (double)iteration / IterationsPerEpoch;
        int passed = MilestoneEpochs.Count(m => epoch >= m);
        return LearningRate * Math.Pow(Gamma, passed);
    }
}

/// <summary>Cosine annealing from the base LR to 0 over the run (per iteration, no restarts).</summary>
public sealed record CosineSchedule(double LearningRate, long TotalIterations) : ILearningRateSchedule
{
    public string Name => "cosine";
    public double At(long iteration) => 0.5 * LearningRate * (1 + Math.Cos(Math.PI * Math.Min(iteration, TotalIterations) / TotalIterations));
}

/// <summary>
/// The one-cycle ("cyclic") schedule of Wong, Rice &amp; Kolter (2020): linear from 0 to the peak LR over the first
/// 40% of the run, then linearly down to 0, evaluated at the end of each iteration (t = (i+1)/total), as np.interp
/// over [0, 0.4, 1] in their code.
/// </summary>
public sealed record OneCycleSchedule(double PeakLearningRate, long TotalIterations, double WarmupFraction = 0.4) : ILearningRateSchedule
{
    public string Name => "one-cycle";

    public double At(long iteration)
    {
        double t = Math.Clamp((iteration + 1.0) / TotalIterations, 0, 1);
        return t <= WarmupFraction
            ? PeakLearningRate * t / WarmupFraction
            : PeakLearningRate * (1 - t) / (1 - WarmupFraction);
    }
}

/// <summary>
/// ε of the adversarial objective at each iteration: 0 during the first <see cref="WarmupIterations"/> (Gowal et
/// al.'s warm-up for IBP training), then a linear ramp from 0 to the full ε over <see cref="RampIterations"/>
/// iterations (evaluated at the end of the iteration so it is never 0 after the warm-up), then constant.
/// </summary>
public sealed record EpsilonSchedule(double Epsilon, long RampIterations, long WarmupIterations = 0)
{
    public static EpsilonSchedule Create(double epsilon, double rampEpochs, int iterationsPerEpoch, double warmupEpochs = 0) =>
        new(epsilon, (long)Math.Round(rampEpochs * iterationsPerEpoch), (long)Math.Round(warmupEpochs * iterationsPerEpoch));

    public double At(long iteration)
    {
        if (iteration < WarmupIterations) return 0;
        long i = iteration - WarmupIterations;
        return RampIterations <= 0 ? Epsilon : Epsilon * Math.Min(1.0, (i + 1.0) / RampIterations);
    }
}
