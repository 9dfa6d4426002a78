using System.Collections.Concurrent;
using System.Diagnostics;
using Robustness.Core;

namespace Robustness.Playground;

/// <summary>A message from a session to its page: JSON text, or a binary frame.</summary>
public readonly record struct Outgoing(string? Text, byte[]? Binary);

/// <summary>
/// One browser tab's playground. Its engine lives on one dedicated thread for its whole life (TorchSharp's dispose
/// scopes and grad mode are per thread): commands are queued to it, frames come out of it at a steady rate while
/// training. Messages for the page wait in its outbox: text in order, frames as "latest only" (a slow page
/// skips frames rather than queueing them).
/// </summary>
public sealed class Session : IDisposable
{
    private readonly PlaygroundOptions _options;
    private readonly ConcurrentQueue<PageCommand> _commands = new();
    private readonly AutoResetEvent _wake = new(false);
    private readonly ConcurrentQueue<string> _texts = new();
    private byte[]? _latestFrame;
    private readonly SemaphoreSlim _outboxSignal = new(0);
    private readonly Thread _thread;
    private volatile bool _stopping;
    private long _lastActivity;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Session(string id, PlaygroundOptions options)
    {
        Id = id;
        _options = options;
        AcceptedState = options.InitialState;
        Touch();
        _thread = new Thread(Run) { IsBackground = true, Name = $"playground-{id}" };
    }

    public string Id { get; }
    /// <summary>The state after the last accepted "state" command (the next one merges onto it).</summary>
    public PlaygroundState AcceptedState { get; private set; }
    public TimeSpan Idle => Stopwatch.GetElapsedTime(Interlocked.Read(ref _lastActivity));
    /// <summary>Why the session ended, for the page (null while it runs).</summary>
    public string? EndReason { get; private set; }
    public Task Stopped => _stopped.Task;
    /// <summary>Epochs trained so far (read by the load test and the status endpoint).</summary>
    public int Epoch { get; private set; }
    public long FramesSent;

    public void Start() => _thread.Start();

    private void Touch() => Interlocked.Exchange(ref _lastActivity, Stopwatch.GetTimestamp());

    /// <summary>Parses and queues a message from the page; a bad one gets a one-line error back and changes nothing.</summary>
    public void Receive(string json)
    {
        Touch();
        PageCommand command;
        try { command = PageCommand.Parse(json, AcceptedState); }
        catch (InputException e)
        {
            SendText(FrameWriter.Message("error", ("message", e.Message)));
            // The page shows the state the session really has, so a refused change snaps back.
            if (json.Contains("\"state\"", StringComparison.Ordinal)) SendText(StateMessage());
            return;
        }
        if (command is PageCommand.Ping) return;
        if (_commands.Count >= _options.MaxQueuedCommands)
        {
            SendText(FrameWriter.Message("error", ("message", $"too many commands queued (more than {_options.MaxQueuedCommands}); slow down")));
            return;
        }
        if (command is PageCommand.SetState s) AcceptedState = s.State;
        _commands.Enqueue(command);
        if (command is PageCommand.SetState) SendText(StateMessage());
        _wake.Set();
    }

    /// <summary>The accepted state, as the page's controls and URL show it.</summary>
    public string StateMessage() => FrameWriter.Message("state", ("state", AcceptedState.ToDictionary()));

    public void SendText(string text)
    {
        _texts.Enqueue(text);
        _outboxSignal.Release();
    }

    private void SendFrame(byte[] frame)
    {
        Interlocked.Exchange(ref _latestFrame, frame);
        _outboxSignal.Release();
    }

    /// <summary>The next message for the page: queued text first, then the latest frame; null once stopped and drained.</summary>
    public async Task<Outgoing?> NextOutgoingAsync(CancellationToken cancel)
    {
        while (true)
        {
            if (_texts.TryDequeue(out var text)) return new Outgoing(text, null);
            var frame = Interlocked.Exchange(ref _latestFrame, null);
            if (frame is not null) { Interlocked.Increment(ref FramesSent); return new Outgoing(null, frame); }
            if (_stopping && _stopped.Task.IsCompleted) return null;
            try { await _outboxSignal.WaitAsync(TimeSpan.FromSeconds(1), cancel).ConfigureAwait(false); }
            catch (OperationCanceledException) { return null; }
        }
    }

    /// <summary>Asks the thread to stop; the engine is disposed on it.</summary>
    public void Stop(string reason)
    {
        EndReason ??= reason;
        _stopping = true;
        _wake.Set();
        _outboxSignal.Release();
    }

    private void Run()
    {
        PlaygroundEngine? engine = null;
        try
        {
            // One intra-op thread per session: the networks are tiny, and sessions run side by side.
            TorchSharp.torch.set_num_threads(1);
            engine = new PlaygroundEngine(AcceptedState);
            Loop(engine);
        }
        catch (Exception e)
        {
            // A bug must end this session with a message, never the server.
            EndReason ??= $"the session failed: {e.Message}";
        }
        finally
        {
            engine?.Dispose();
            _stopping = true;
            _stopped.TrySetResult();
            _outboxSignal.Release();
        }
    }

    private void Loop(PlaygroundEngine engine)
    {
        var cursor = new FrameWriter.HistoryCursor();
        var frameInterval = TimeSpan.FromSeconds(1.0 / _options.FramesPerSecond);
        bool playing = false, dirty = true, dataDirty = true, attackDue = true;
        var clock = Stopwatch.StartNew();
        var nextFrame = TimeSpan.Zero;
        TimeSpan lastAttackCost = TimeSpan.Zero, lastAttackAt = TimeSpan.FromDays(-1), epochCost = TimeSpan.Zero;
        int generation = engine.Generation;

        while (!_stopping)
        {
            while (_commands.TryDequeue(out var command))
            {
                try
                {
                    switch (command)
                    {
                        case PageCommand.SetState s:
                            engine.Apply(s.State);
                            attackDue = true;
                            break;
                        case PageCommand.Play: playing = true; break;
                        case PageCommand.Pause: playing = false; attackDue = true; break;
                        case PageCommand.StepOnce: playing = false; engine.RunEpoch(); attackDue = true; break;
                        case PageCommand.Reset: engine.Reset(); attackDue = true; break;
                        case PageCommand.RunAttack: attackDue = true; break;
                        case PageCommand.SetWeight w: engine.SetWeight(w.Layer, w.To, w.From, w.Value); attackDue = true; break;
                        case PageCommand.SetBias b: engine.SetBias(b.Layer, b.Neuron, b.Value); attackDue = true; break;
                    }
                }
                catch (InputException e)
                {
                    SendText(FrameWriter.Message("error", ("message", e.Message)));
                }
                dirty = true;
            }
            if (engine.Generation != generation) { generation = engine.Generation; dataDirty = true; }
            if (dataDirty) { SendText(FrameWriter.Data(engine)); dataDirty = false; }

            if (playing)
            {
                // Train batch by batch until the next frame is due: at least one batch, and no batch that would likely
                // end after the frame time (a running mean of batch durations), so frames keep their rate.
                do
                {
                    var t0 = clock.Elapsed;
                    engine.RunBatch();
                    var cost = clock.Elapsed - t0;
                    epochCost = epochCost == TimeSpan.Zero ? cost : (epochCost * 7 + cost) / 8;
                }
                while (clock.Elapsed + epochCost < nextFrame && _commands.IsEmpty && !_stopping);
                Epoch = engine.Epoch;
                dirty = true;
            }
            if (dirty && clock.Elapsed >= nextFrame)
            {
                engine.Evaluate();
                // PGD and certificates take at most AttackShare of the time while training; on every change when paused.
                var sinceAttack = clock.Elapsed - lastAttackAt;
                if (attackDue || (playing && sinceAttack.TotalSeconds * _options.AttackShare >= lastAttackCost.TotalSeconds))
                {
                    var t0 = clock.Elapsed;
                    engine.Attack();
                    lastAttackCost = clock.Elapsed - t0;
                    lastAttackAt = clock.Elapsed;
                    attackDue = false;
                }
                SendFrame(FrameWriter.Frame(engine, playing, cursor, engine.AttackSequence));
                dirty = false;
                // A steady rate: the next frame is due one interval after this one was (never in the past).
                nextFrame = nextFrame + frameInterval > clock.Elapsed ? nextFrame + frameInterval : clock.Elapsed;
                Epoch = engine.Epoch;
            }
            if (!playing && !dirty) _wake.WaitOne(TimeSpan.FromSeconds(1));
            else if (!playing && dirty)
            {
                var wait = nextFrame - clock.Elapsed;
                if (wait > TimeSpan.Zero) _wake.WaitOne(wait);
            }
        }
    }

    public void Dispose()
    {
        Stop("closed");
        if (_thread.IsAlive && !_thread.Join(TimeSpan.FromSeconds(10)))
            throw new TimeoutException($"session {Id} did not stop within 10 s");
        _wake.Dispose();
        _outboxSignal.Dispose();
    }
}
