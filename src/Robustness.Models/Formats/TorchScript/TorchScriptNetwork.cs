using Robustness.Core;
using System.IO.Compression;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Formats.TorchScript;

/// <summary>
/// A <c>torch.jit.save</c> archive (of <c>torch.jit.script</c> or <c>torch.jit.trace</c>) loaded by libtorch's
/// <c>torch::jit::load</c>. It runs the archive's own TorchScript code inside libtorch: no Python interpreter and no
/// pickled Python objects are involved, and TorchScript can only call operators registered in libtorch. Its
/// parameters are libtorch's, so autograd reaches the input and training updates the archive's own weights.
/// </summary>
public sealed class TorchScriptNetwork : nn.Module<Tensor, Tensor>
{
    private readonly jit.ScriptModule<Tensor, Tensor> script;

    private TorchScriptNetwork(jit.ScriptModule<Tensor, Tensor> module) : base("TorchScript")
    {
        script = module;
        RegisterComponents();
    }

    public override Tensor forward(Tensor input) => script.call(input);

    private bool _disposed;

    /// <summary>TorchSharp disposes submodules by listing them, which a script module whose handle failed cannot do:
    /// release the script module first, then whatever the base class still can.</summary>
    protected override void Dispose(bool disposing)
    {
        if (_disposed) return;
        _disposed = true;
        if (disposing) script.Dispose();
        try { base.Dispose(disposing); }
        catch (ObjectDisposedException) { }
    }

    /// <summary>Writes the archive back (<c>torch.jit.save</c>) with the current weights, atomically.</summary>
    public void Save(string path) => Core.AtomicFile.Write(path, stream =>
    {
        var temp = Path.Combine(Path.GetTempPath(), $"robustness-{Guid.NewGuid():N}.pt");
        try
        {
            jit.save(script, temp);
            using var source = File.OpenRead(temp);
            source.CopyTo(stream);
        }
        finally { File.Delete(temp); }
    });

    /// <summary>True when a zip archive holds TorchScript code (<c>code/</c>, <c>constants.pkl</c>) rather than a state dict.</summary>
    public static bool IsArchive(Stream stream)
    {
        stream.Position = 0;
        try
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            return zip.Entries.Any(e => e.FullName.EndsWith("/constants.pkl", StringComparison.Ordinal) || e.FullName.Contains("/code/", StringComparison.Ordinal));
        }
        catch (InvalidDataException) { return false; }
        finally { stream.Position = 0; }
    }

    /// <summary>Loads an archive on <paramref name="device"/>, in eval mode. A file libtorch cannot load as a
    /// module (a scripted function, damaged code) is a <see cref="ModelFormatException"/>.</summary>
    public static TorchScriptNetwork Load(string path, Device device)
    {
        jit.ScriptModule<Tensor, Tensor> module;
        try { module = jit.load<Tensor, Tensor>(path, device); }
        catch (Exception e) when (e is ExternalException or ArgumentException or InvalidOperationException or NotSupportedException or FileNotFoundException)
        { throw new ModelFormatException($"{path}: not a TorchScript module libtorch can load ({FirstLine(e.Message)})"); }
        int inputs;
        try { inputs = module.GetNumberOfInputs(); }
        catch (Exception e) when (e is ExternalException or InvalidOperationException)
        {
            module.Dispose();
            throw new ModelFormatException($"{path}: the TorchScript archive has no forward method ({FirstLine(e.Message)}); save a module, not a function");
        }
        if (inputs != 1)
        {
            module.Dispose();
            throw new ModelFormatException($"{path}: the TorchScript module's forward takes {inputs} inputs; an image classifier takes one batch tensor");
        }
        var network = new TorchScriptNetwork(module);
        network.eval();
        return network;
    }

    /// <summary>The informative line of a libtorch message: the last "...Error: ..." line (TorchScript tracebacks end
    /// with it), else the first line.</summary>
    internal static string FirstLine(string message)
    {
        var lines = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var error = lines.LastOrDefault(l => l.Contains("Error: ", StringComparison.Ordinal));
        var line = error is null ? lines.FirstOrDefault() ?? "failed" : error[(error.IndexOf("Error: ", StringComparison.Ordinal) + 7)..];
        return line.Length > 200 ? line[..200] + "…" : line;
    }
}
