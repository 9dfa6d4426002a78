namespace Robustness.Core;

/// <summary>
/// Bad input from the user: a file, an option or a value. The message is one line that names the file
/// or option and what is wrong; the CLI prints it without a stack trace and exits with code 2.
/// </summary>
public class InputException : Exception
{
    public InputException(string message) : base(message) { }
    public InputException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// A library parameter with a bad value. Libraries name their own parameters (<c>Epsilon</c>, <c>Steps</c>,
/// <c>L1Sparsity</c>), never a command-line flag; a front end that maps parameters to its own names (the CLI maps
/// <c>Epsilon</c> to <c>--eps</c>) rewrites <see cref="Parameter"/> and keeps <see cref="Problem"/>.
/// </summary>
public sealed class ParameterException(string parameter, string problem) : InputException($"{parameter}: {problem}")
{
    /// <summary>The parameter's name in the library, e.g. "Epsilon" or "AttackOptions.Steps".</summary>
    public string Parameter { get; } = parameter;
    /// <summary>What is wrong with the value, e.g. "must be > 0, got -1".</summary>
    public string Problem { get; } = problem;
}

/// <summary>An attack produced a perturbation outside its threat model: a bug in the attack, never bad input.</summary>
public sealed class ThreatModelViolationException(string message) : Exception(message);
