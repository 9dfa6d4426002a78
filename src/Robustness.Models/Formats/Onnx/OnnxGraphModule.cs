using Robustness.Core;
using System.Runtime.InteropServices;
using System.Text;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Models.Formats.Onnx;

/// <summary>
/// Executes an ONNX graph with TorchSharp operations, so autograd differentiates it exactly like a native network.
/// Float initializers are parameters; float Constant nodes and large integer tensors are buffers; small integer
/// tensors stay on the host for shape arithmetic. Each node runs in its own dispose scope and every intermediate is
/// released after its last reader, so a pass leaves only its output behind.
/// </summary>
internal sealed class OnnxGraphModule : nn.Module<Tensor, Tensor>
{
    private readonly OnnxGraph _plan;
    /// <summary>Value name → how to get it in a pass.</summary>
    private readonly List<(string Value, string? Registered, bool IsParameter, long[]? Ints, double[]? Reals, long[] Shape, ScalarType DType)> _constants = [];

    public OnnxGraphModule(OnnxGraph plan) : base("OnnxGraph")
    {
        _plan = plan;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, proto) in plan.Initializers)
            AddConstant(name, OnnxTensors.Read(proto, $"initializer '{name}'", plan.File, CPU), names, parameter: true);
        foreach (var node in plan.ConstantNodes)
            AddConstant(node.Proto.Output[0], ConstantValue(node), names, parameter: false);
    }

    /// <summary>When the graph fixes its batch size and cannot run others, inputs are fed in chunks of this size.</summary>
    public long? FixedBatch { get; set; }

    public OnnxGraph Plan => _plan;

    /// <summary>Number of float values held as parameters (the initializers).</summary>
    public long ParameterCount => parameters().Sum(p => p.numel());

    public override Tensor forward(Tensor input)
    {
        if (FixedBatch is not { } b || input.shape[0] == b) return Run(input);
        var parts = new List<Tensor>();
        long n = input.shape[0];
        for (long start = 0; start < n; start += b)
        {
            long length = Math.Min(b, n - start);
            var chunk = input.narrow(0, start, length);
            if (length < b)
            {
                var filler = zeros([b - length, .. input.shape.Skip(1)], input.dtype, input.device);
                chunk = cat([chunk, filler], 0);
            }
            var y = Run(chunk);
            parts.Add(length < b ? y.narrow(0, 0, length) : y);
        }
        return cat(parts, 0);
    }

    private Tensor Run(Tensor input)
    {
        var device = input.device;
        var env = new Dictionary<string, OnnxValue>(_constants.Count + _plan.Steps.Count * 2, StringComparer.Ordinal);
        foreach (var c in _constants)
        {
            env[c.Value] = c.Registered is null
                ? OnnxValue.HostInts(c.Ints!, c.Shape, c.DType)
                : OnnxValue.Constant((c.IsParameter ? get_parameter(c.Registered) : get_buffer(c.Registered))!, c.Ints, c.Reals);
        }
        env[_plan.InputName] = OnnxValue.Constant(input, null, null);
        try
        {
            for (int step = 0; step < _plan.Steps.Count; step++)
            {
                var (node, op) = _plan.Steps[step];
                var inputs = node.Proto.Input.Select(name => name.Length == 0 ? null : env[name]).ToArray();
                bool host = op.HostCapable && inputs.Any(v => v is not null) && inputs.All(v => v is null || v.Ints is not null);
                node.Inputs = inputs;
                node.Device = host ? CPU : device;
                OnnxValue[] outputs;
                using (NewDisposeScope())
                {
                    try { outputs = op.Kernel(node); }
                    catch (ModelFormatException) { throw; }
                    catch (Exception e) when (e is ExternalException or ArgumentException or InvalidOperationException or IndexOutOfRangeException)
                    { throw node.Error(FirstLine(e.Message)); }
                    foreach (var o in outputs) o.DetachFromScope();
                }
                node.Inputs = [];
                for (int i = 0; i < outputs.Length && i < node.Proto.Output.Count; i++)
                {
                    var name = node.Proto.Output[i];
                    var value = host ? outputs[i].ToHostOr(device) : outputs[i];
                    if (name.Length == 0 || !_plan.LastUse.ContainsKey(name)) { value.Release(); continue; }
                    env[name] = value;
                }
                foreach (var name in node.Proto.Input)
                    if (name.Length > 0 && _plan.LastUse.TryGetValue(name, out var last) && last == step && env.Remove(name, out var done))
                        done.Release();
            }
            var result = env[_plan.OutputName];
            if (!result.IsFloat) throw new ModelFormatException($"{_plan.File.Path}: the graph output '{_plan.OutputName}' is {result.DType}, not scores");
            return result.Tensor(device).alias(); // the caller's dispose scope owns this handle
        }
        finally
        {
            foreach (var v in env.Values) v.Release();
        }
    }

    private void AddConstant(string value, OnnxValue v, HashSet<string> names, bool parameter)
    {
        using var tensor = v.Tensor(CPU);
        if (!v.IsFloat && v.Ints is not null)
        {
            _constants.Add((value, null, false, v.Ints, null, v.Shape, v.DType));
            return;
        }
        var registered = Unique(value, names);
        if (v.IsFloat && parameter)
            register_parameter(registered, new TorchSharp.Modules.Parameter(tensor.clone(), requires_grad: true));
        else
            register_buffer(registered, tensor.clone());
        _constants.Add((value, registered, v.IsFloat && parameter, v.Ints, v.Reals, v.Shape, v.DType));
    }

    /// <summary>Module attribute names cannot hold '.', and ONNX names hold anything: keep letters, digits and '_'.</summary>
    private static string Unique(string name, HashSet<string> taken)
    {
        var sb = new StringBuilder(name.Length + 2);
        foreach (var ch in name) sb.Append(char.IsAsciiLetterOrDigit(ch) ? ch : '_');
        var baseName = sb.Length == 0 || char.IsAsciiDigit(sb[0]) ? "v_" + sb : sb.ToString();
        var candidate = baseName;
        for (int i = 2; !taken.Add(candidate); i++) candidate = $"{baseName}_{i}";
        return candidate;
    }

    private static OnnxValue ConstantValue(OnnxNode node)
    {
        if (node.Proto.Output.Count != 1) throw node.Error("a Constant has exactly one output");
        var given = node.AttributeNames.ToList();
        if (given.Count != 1) throw node.Error($"needs exactly one value attribute, has {given.Count}");
        var what = $"the value of Constant node '{node.Name}'";
        switch (given[0])
        {
            case "value":
                return OnnxTensors.Read(node.TensorAttribute("value")!, what, node.File, CPU);
            case "value_float":
                return FromTensor(tensor(node.Float("value_float", 0f)), [], null, [node.Float("value_float", 0f)]);
            case "value_floats":
                var floats = node.Floats("value_floats")!;
                return FromTensor(tensor(floats), [floats.Length], null, floats.Select(f => (double)f).ToArray());
            case "value_int":
                var i = node.Int("value_int");
                return FromTensor(tensor(i), [], [i], null);
            case "value_ints":
                var ints = node.Ints("value_ints")!;
                return FromTensor(tensor(ints), [ints.Length], ints, null);
            default:
                throw node.Error($"attribute '{given[0]}' (sparse or string constants) is not supported");
        }
    }

    private static OnnxValue FromTensor(Tensor t, long[] shape, long[]? ints, double[]? reals)
    {
        var shaped = t.reshape(shape);
        t.Dispose();
        return OnnxValue.Constant(shaped, ints, reals);
    }

    private static string FirstLine(string message)
    {
        var line = message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "failed";
        return line.Length > 200 ? line[..200] + "…" : line;
    }
}
