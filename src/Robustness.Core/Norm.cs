namespace Robustness.Core;

/// <summary>The L_p norm of a threat model.</summary>
public enum Norm { Linf, L2, L1 }

public static class NormNames
{
    public static readonly IReadOnlyList<string> All = ["linf", "l2", "l1"];

    public static string Name(this Norm norm) => norm switch
    {
        Norm.Linf => "linf",
        Norm.L2 => "l2",
        Norm.L1 => "l1",
        _ => throw new ArgumentOutOfRangeException(nameof(norm)),
    };

    public static Norm Parse(string text, string parameter = "Norm") => text.Trim().ToLowerInvariant() switch
    {
        "linf" or "l_inf" or "inf" or "l∞" => Norm.Linf,
        "l2" => Norm.L2,
        "l1" => Norm.L1,
        _ => throw new ParameterException(parameter, $"unknown norm '{text}' (valid: {string.Join(", ", All)})"),
    };

    /// <summary>The dual norm's exponent name: ‖·‖_* of Linf is L1, of L2 is L2, of L1 is Linf.</summary>
    public static Norm Dual(this Norm norm) => norm switch
    {
        Norm.Linf => Norm.L1,
        Norm.L2 => Norm.L2,
        Norm.L1 => Norm.Linf,
        _ => throw new ArgumentOutOfRangeException(nameof(norm)),
    };
}
