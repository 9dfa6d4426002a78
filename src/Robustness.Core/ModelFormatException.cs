using Robustness.Core;

namespace Robustness.Core;

/// <summary>A model file that cannot be read: malformed, truncated, hostile, or not matching its architecture.</summary>
public sealed class ModelFormatException : InputException
{
    public ModelFormatException(string message) : base(message) { }
    public ModelFormatException(string message, Exception inner) : base(message, inner) { }
}
