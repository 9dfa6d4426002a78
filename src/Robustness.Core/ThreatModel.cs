namespace Robustness.Core;

/// <summary>An L_p ball of radius <see cref="Epsilon"/> around each input, intersected with <see cref="Bounds"/>.</summary>
public sealed record ThreatModel(Norm Norm, double Epsilon, Bounds Bounds)
{
    public static ThreatModel Linf(double eps) => new(Norm.Linf, eps, Bounds.Unit);

    /// <summary>Rejects ε that is negative, NaN, infinite, or (for L∞) beyond the bounds' range.</summary>
    public ThreatModel Validate(string parameter = "Epsilon")
    {
        Bounds.Validate();
        if (double.IsNaN(Epsilon) || double.IsInfinity(Epsilon) || Epsilon < 0)
            throw new ParameterException(parameter, $"ε must be a finite number ≥ 0, got {Epsilon}");
        if (Norm == Norm.Linf && Epsilon > Bounds.Range)
            throw new ParameterException(parameter, $"L∞ ε = {Epsilon} exceeds the input range {Bounds.Range} of bounds [{Bounds}]");
        return this;
    }

    public override string ToString() => FormattableString.Invariant($"{Norm.Name()} ε={Epsilon} in [{Bounds}]");
}
