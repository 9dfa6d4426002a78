using Robustness.Core.Geometry;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Core.Attacking;

/// <summary>
/// Where an iterative attack starts inside the threat model. The start is clamped to the input bounds; the attack's
/// iterations and its sealed final step keep it in the ε-ball.
/// </summary>
public interface IStartStrategy
{
    /// <summary>"uniform", "none", "gaussian", "given": recorded in the attack's parameters.</summary>
    string Name { get; }
    /// <summary>True when two calls can give different points (restarts only make sense then).</summary>
    bool IsRandom { get; }
    /// <summary>The starting points for <paramref name="inputs"/> (a new tensor, inside the bounds).</summary>
    Tensor Start(Tensor inputs, ThreatModel threat, IPerturbationGeometry geometry, Generator? generator);
}

/// <summary>The start strategies of the PGD engine.</summary>
public static class Starts
{
    /// <summary>Uniform in the ε-ball (Madry et al.): the geometry's random start.</summary>
    public static IStartStrategy Uniform { get; } = new UniformStart();
    /// <summary>The clean point itself (FGSM, BIM, MI-FGSM).</summary>
    public static IStartStrategy None { get; } = new NoStart();
    /// <summary>x + N(0, σ²I), e.g. TRADES' σ = 0.001 (its KL objective has a zero gradient at x itself).</summary>
    public static IStartStrategy Gaussian(double std) => new GaussianStart(std);
    /// <summary>A given point per sample (e.g. the perturbation carried over between minibatch replays).</summary>
    public static IStartStrategy Given(Tensor points) => new GivenStart(points);
}

internal sealed record UniformStart : IStartStrategy
{
    public string Name => "uniform";
    public bool IsRandom => true;
    public Tensor Start(Tensor inputs, ThreatModel threat, IPerturbationGeometry geometry, Generator? generator)
    {
        using var _ = no_grad();
        return (inputs + geometry.RandomStart(inputs, threat.Epsilon, generator)).clamp(Keep(threat.Bounds.Lower), Keep(threat.Bounds.Upper));
    }
}

internal sealed record NoStart : IStartStrategy
{
    public string Name => "none";
    public bool IsRandom => false;
    public Tensor Start(Tensor inputs, ThreatModel threat, IPerturbationGeometry geometry, Generator? generator) => inputs.detach().clone();
}

internal sealed record GaussianStart : IStartStrategy
{
    public GaussianStart(double std)
    {
        if (!(std > 0) || double.IsInfinity(std)) throw new ParameterException("StartStd", $"must be a finite number > 0, got {std}");
        Std = std;
    }

    public double Std { get; }
    public string Name => FormattableString.Invariant($"gaussian({Std})");
    public bool IsRandom => true;
    public Tensor Start(Tensor inputs, ThreatModel threat, IPerturbationGeometry geometry, Generator? generator)
    {
        using var _ = no_grad();
        var noise = randn(inputs.shape, dtype: inputs.dtype, generator: generator).to(inputs.device) * Keep(Std);
        return (inputs + noise).clamp(Keep(threat.Bounds.Lower), Keep(threat.Bounds.Upper));
    }
}

/// <summary>Starts from given points (projected into the ball and the bounds). Does not own the tensor.</summary>
internal sealed record GivenStart(Tensor Points) : IStartStrategy
{
    public string Name => "given";
    public bool IsRandom => false;
    public Tensor Start(Tensor inputs, ThreatModel threat, IPerturbationGeometry geometry, Generator? generator)
    {
        if (!Points.shape.SequenceEqual(inputs.shape))
            throw new ParameterException("Start", $"the given start has shape [{string.Join(",", Points.shape)}] but the inputs have [{string.Join(",", inputs.shape)}]");
        return ThreatModelCheck.Contain(inputs, Points.to(inputs.device), threat);
    }
}
