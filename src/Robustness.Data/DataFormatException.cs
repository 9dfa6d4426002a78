using Robustness.Core;

namespace Robustness.Data;

/// <summary>
/// A dataset file exists but its contents are malformed (wrong magic number, truncated, counts that do not agree,
/// labels out of range, undecodable image). The message is one line: "&lt;file&gt;: &lt;problem&gt;".
/// </summary>
public sealed class DataFormatException : InputException
{
    public DataFormatException(string file, string problem) : base($"{file}: {problem}") { File = file; }
    public DataFormatException(string file, string problem, Exception inner) : base($"{file}: {problem}", inner) { File = file; }

    /// <summary>The file (or folder) the problem was found in, as the caller named it.</summary>
    public string File { get; }
}
