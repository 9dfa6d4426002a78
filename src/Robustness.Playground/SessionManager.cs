using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Robustness.Playground;

/// <summary>The live sessions, at most <see cref="PlaygroundOptions.MaxSessions"/>; ends idle ones.</summary>
public sealed class SessionManager : IDisposable
{
    private readonly PlaygroundOptions _options;
    private readonly ConcurrentDictionary<string, Session> _sessions = new();
    private readonly Timer _reaper;
    private readonly object _gate = new();
    private long _created, _refused;

    public SessionManager(PlaygroundOptions options)
    {
        _options = options.Validate();
        var period = TimeSpan.FromTicks(Math.Clamp(_options.IdleTimeout.Ticks / 2, TimeSpan.FromMilliseconds(200).Ticks, TimeSpan.FromSeconds(5).Ticks));
        _reaper = new Timer(_ => Reap(), null, period, period);
    }

    public PlaygroundOptions Options => _options;
    public int Count => _sessions.Count;
    public long Created => Interlocked.Read(ref _created);
    public long Refused => Interlocked.Read(ref _refused);
    public IReadOnlyCollection<Session> Sessions => _sessions.Values.ToList();

    /// <summary>A new started session, or null when the limit is reached.</summary>
    public Session? TryCreate()
    {
        lock (_gate)
        {
            if (_sessions.Count >= _options.MaxSessions) { Interlocked.Increment(ref _refused); return null; }
            var id = Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant();
            var session = new Session(id, _options);
            _sessions[id] = session;
            Interlocked.Increment(ref _created);
            session.Start();
            return session;
        }
    }

    /// <summary>Stops the session, waits for its thread to free its tensors, and forgets it.</summary>
    public void Remove(Session session)
    {
        if (_sessions.TryRemove(session.Id, out _)) session.Dispose();
    }

    private void Reap()
    {
        foreach (var s in _sessions.Values)
            if (s.Idle > _options.IdleTimeout) s.Stop($"the session ended after {_options.IdleTimeout.TotalMinutes:0} minutes without input; reload the page to start again");
    }

    public void Dispose()
    {
        _reaper.Dispose();
        foreach (var s in _sessions.Values) Remove(s);
    }
}
