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

/// <summary>An attack produced a perturbation outside its threat model: a bug in the attack, never bad input.</summary>
public sealed class ThreatModelViolationException(string message) : Exception(message);
