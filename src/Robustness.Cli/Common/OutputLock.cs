using System.Diagnostics;
using Robustness.Core;

namespace Robustness.Cli.Common;

/// <summary>
/// Claims an output directory for one run: `DIR/.robust.lock` holds the owner's PID. A second run pointed at the
/// same directory stops with a clear message instead of interleaving files; a lock left by a dead process is taken over.
/// </summary>
public sealed class OutputLock : IDisposable
{
    public const string FileName = ".robust.lock";
    private readonly FileStream _stream;
    private readonly string _path;

    private OutputLock(FileStream stream, string path)
    {
        _stream = stream;
        _path = path;
    }

    public static OutputLock Acquire(string directory, string option = "--out")
    {
        var dir = Path.GetFullPath(directory);
        try { Directory.CreateDirectory(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new InputException($"{option}: cannot create {dir} ({e.Message})"); }
        var path = Path.Combine(dir, FileName);
        for (int attempt = 0; attempt < 2; attempt++)
        {
            try
            {
                var fs = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
                using (var w = new StreamWriter(fs, leaveOpen: true)) w.Write(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
                fs.Flush(true);
                return new OutputLock(fs, path);
            }
            catch (UnauthorizedAccessException e)
            {
                throw new InputException($"{option}: {dir} is not writable ({e.Message})");
            }
            catch (IOException) when (File.Exists(path))
            {
                var owner = ReadOwner(path);
                if (owner is { } pid && IsAlive(pid))
                    throw new InputException($"{option}: {dir} is in use by another robust run (pid {pid}); wait for it or choose another directory");
                TryDelete(path); // stale lock of a killed run
            }
            catch (IOException e)
            {
                throw new InputException($"{option}: {dir} is not writable ({e.Message})");
            }
        }
        throw new InputException($"{option}: could not lock {dir}");
    }

    private static int? ReadOwner(string path)
    {
        try { return int.TryParse(File.ReadAllText(path).Trim(), out var pid) ? pid : null; }
        catch (IOException) { return null; }
    }

    private static bool IsAlive(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        if (IsZombie(pid)) return false;
        try { using var p = Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>
    /// A run killed with SIGKILL stays a zombie until its parent reaps it (forever, if the parent is gone and init does
    /// not reap); .NET still reports it as running, but it will never write again, so its lock is stale.
    /// </summary>
    private static bool IsZombie(int pid)
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var afterName = stat.LastIndexOf(')');
            return afterName >= 0 && afterName + 2 < stat.Length && stat[afterName + 2] is 'Z' or 'X';
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public void Dispose()
    {
        _stream.Dispose();
        TryDelete(_path);
    }
}
