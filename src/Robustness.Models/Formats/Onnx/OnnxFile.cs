using Robustness.Core;
using Google.Protobuf;
using Onnx;

namespace Robustness.Models.Formats.Onnx;

/// <summary>
/// An ONNX file read and checked before anything is built from it: the protobuf parses completely, the model has
/// a graph and a default-domain opset we execute (11–17), and every path it names for external data stays inside
/// the model's folder.
/// </summary>
internal sealed class OnnxFile
{
    public const int MinOpset = 11;
    public const int MaxOpset = 17;
    /// <summary>protobuf messages cannot exceed 2 GiB; bigger ONNX models keep their weights in external files.</summary>
    private const long MaxFileBytes = int.MaxValue;

    private OnnxFile(string path, ModelProto model, int opset)
    {
        Path = path;
        Model = model;
        Opset = opset;
        Folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? ".";
    }

    /// <summary>The file as the user named it (for messages).</summary>
    public string Path { get; }
    /// <summary>The folder external data must stay inside.</summary>
    public string Folder { get; }
    public ModelProto Model { get; }
    public GraphProto Graph => Model.Graph;
    /// <summary>The version of the default ONNX operator set the graph uses.</summary>
    public int Opset { get; }

    public static bool LooksLikeOnnx(string path) =>
        path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase);

    /// <param name="forExecutor">Check what our executor runs (opsets 11–17, no local functions); ONNX Runtime,
    /// which runs every opset and function it knows, reads the file with the other checks only.</param>
    public static OnnxFile Read(string path, bool forExecutor = true)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) throw new ModelFormatException($"{path}: file not found");
            if (info.Length > MaxFileBytes)
                throw new ModelFormatException($"{path}: {info.Length} bytes is above protobuf's 2 GiB limit; keep the weights as external data");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new ModelFormatException($"{path}: cannot read ({e.Message})"); }
        return Parse(bytes, path, forExecutor);
    }

    public static OnnxFile Parse(byte[] bytes, string path, bool forExecutor = true)
    {
        if (bytes.Length == 0) throw new ModelFormatException($"{path}: empty file, not an ONNX model");
        ModelProto model;
        try { model = ModelProto.Parser.ParseFrom(bytes); }
        catch (InvalidProtocolBufferException e)
        { throw new ModelFormatException($"{path}: not a complete ONNX protobuf (truncated or damaged: {FirstLine(e.Message)})"); }
        if (!model.HasIrVersion || model.IrVersion < 3)
            throw new ModelFormatException($"{path}: no ONNX IR version (ir_version {(model.HasIrVersion ? model.IrVersion : "missing")}); truncated or not an ONNX model");
        if (model.Graph is null)
            throw new ModelFormatException($"{path}: the ONNX model has no graph (truncated or not an ONNX model)");
        if (forExecutor && model.Functions.Count > 0)
            throw new ModelFormatException($"{path}: the model defines {model.Functions.Count} local functions, which we do not execute");
        var defaults = model.OpsetImport.Where(o => !o.HasDomain || o.Domain is "" or "ai.onnx").ToList();
        if (defaults.Count != 1 && (forExecutor || defaults.Count > 1))
            throw new ModelFormatException($"{path}: the model imports the default ONNX operator set {defaults.Count} times; expected once (truncated file?)");
        var version = defaults.Count == 0 ? 0 : defaults[0].Version;
        if (forExecutor && (version < MinOpset || version > MaxOpset))
            throw new ModelFormatException($"{path}: opset {version} is outside the supported {MinOpset}–{MaxOpset}; re-export it, e.g. torch.onnx.export(..., opset_version=13)");
        return new OnnxFile(path, model, (int)version);
    }

    /// <summary>
    /// Resolves an external-data location against the model's folder, refusing absolute paths, paths that climb out
    /// of it, and symbolic links anywhere on the way that lead out of it. Nothing is opened here.
    /// </summary>
    public string ResolveExternal(string location, string tensorName)
    {
        string Refuse(string why) =>
            throw new ModelFormatException($"{Path}: initializer '{tensorName}' keeps its data in '{location}', {why}; external data must stay inside the model's folder");
        if (string.IsNullOrWhiteSpace(location)) Refuse("an empty path");
        if (location.Contains('\0')) Refuse("a path with a NUL character");
        if (System.IO.Path.IsPathRooted(location) || location.Contains(':')) Refuse("an absolute path");
        var root = RealPath(Folder);
        var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(root, location));
        if (!IsInside(full, root)) Refuse("outside the model's folder");
        // Walk every component below the folder: a symbolic link must also resolve inside it.
        var relative = System.IO.Path.GetRelativePath(root, full).Split(System.IO.Path.DirectorySeparatorChar);
        var current = root;
        foreach (var part in relative)
        {
            current = System.IO.Path.Combine(current, part);
            FileSystemInfo info = Directory.Exists(current) ? new DirectoryInfo(current) : new FileInfo(current);
            if (info.LinkTarget is null) continue;
            var target = info.ResolveLinkTarget(returnFinalTarget: true);
            if (target is null || !IsInside(System.IO.Path.GetFullPath(target.FullName), root))
                Refuse("a symbolic link that leads outside the model's folder");
        }
        return full;
    }

    private static string RealPath(string folder)
    {
        var info = new DirectoryInfo(folder);
        var target = info.LinkTarget is null ? null : info.ResolveLinkTarget(returnFinalTarget: true);
        return System.IO.Path.GetFullPath(target?.FullName ?? info.FullName).TrimEnd(System.IO.Path.DirectorySeparatorChar);
    }

    private static bool IsInside(string path, string root) =>
        path.StartsWith(root + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal);

    private static string FirstLine(string text)
    {
        var line = text.ReplaceLineEndings(" ");
        return line.Length > 160 ? line[..160] + "…" : line;
    }
}
