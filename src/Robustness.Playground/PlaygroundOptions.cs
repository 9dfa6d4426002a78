using Robustness.Core;

namespace Robustness.Playground;

/// <summary>How the playground server runs and what it allows each visitor.</summary>
public sealed record PlaygroundOptions
{
    public string Host { get; init; } = "127.0.0.1";
    public int Port { get; init; } = 8080;
    /// <summary>Sessions (browser tabs) served at once; a tab beyond that is told so and refused.</summary>
    public int MaxSessions { get; init; } = 32;
    /// <summary>A session without any command from its page for this long ends (its tab can start a new one).</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(30);
    /// <summary>Frames streamed per second while training.</summary>
    public int FramesPerSecond { get; init; } = 15;
    /// <summary>Largest message a page may send.</summary>
    public int MaxMessageBytes { get; init; } = 16 * 1024;
    /// <summary>Commands queued for a session before further ones are refused.</summary>
    public int MaxQueuedCommands { get; init; } = 64;
    /// <summary>The share of a session's time that PGD and certificates may take while training (the rest trains).</summary>
    public double AttackShare { get; init; } = 0.15;
    /// <summary>The state a new page starts from before it sends its own (from its URL).</summary>
    public PlaygroundState InitialState { get; init; } = new();

    public PlaygroundOptions Validate()
    {
        if (string.IsNullOrWhiteSpace(Host)) throw new ParameterException(nameof(Host), "must not be empty");
        if (Port < 0 || Port > 65535) throw new ParameterException(nameof(Port), $"must be in [0, 65535], got {Port}");
        if (MaxSessions < 1 || MaxSessions > 1000) throw new ParameterException(nameof(MaxSessions), $"must be in [1, 1000], got {MaxSessions}");
        if (IdleTimeout <= TimeSpan.Zero) throw new ParameterException(nameof(IdleTimeout), "must be positive");
        if (FramesPerSecond < 1 || FramesPerSecond > 60) throw new ParameterException(nameof(FramesPerSecond), $"must be in [1, 60], got {FramesPerSecond}");
        if (MaxMessageBytes < 1024) throw new ParameterException(nameof(MaxMessageBytes), $"must be ≥ 1024, got {MaxMessageBytes}");
        if (!(AttackShare > 0 && AttackShare <= 1)) throw new ParameterException(nameof(AttackShare), $"must be in (0, 1], got {AttackShare}");
        return this;
    }
}
