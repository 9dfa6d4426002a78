namespace Robustness.Core;

/// <summary>The box that valid inputs live in (pixel space, usually [0,1]). ε is always in these units.</summary>
public readonly record struct Bounds(float Lower, float Upper)
{
    public static Bounds Unit => new(0f, 1f);

    public float Range => Upper - Lower;

    /// <summary>Throws <see cref="InputException"/> unless Lower &lt; Upper and both are finite.</summary>
    public Bounds Validate(string parameter = "Bounds")
    {
        if (!float.IsFinite(Lower) || !float.IsFinite(Upper) || Lower >= Upper)
            throw new ParameterException(parameter, $"[{Lower}, {Upper}] is not a valid range (need finite lower < upper)");
        return this;
    }

    /// <summary>Parses "lo,hi".</summary>
    public static Bounds Parse(string text, string parameter = "Bounds")
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length != 2
            || !float.TryParse(parts[0], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var lo)
            || !float.TryParse(parts[1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var hi))
            throw new ParameterException(parameter, $"'{text}' is not of the form lo,hi");
        return new Bounds(lo, hi).Validate(parameter);
    }

    public override string ToString() => FormattableString.Invariant($"{Lower},{Upper}");
}
