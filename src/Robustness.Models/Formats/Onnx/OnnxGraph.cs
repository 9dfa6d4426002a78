using Robustness.Core;
using Onnx;
using Robustness.Models.Formats.Onnx.Operators;

namespace Robustness.Models.Formats.Onnx;

/// <summary>
/// The execution plan of an ONNX graph, checked before any tensor exists: one float input, one output, every
/// operator known, every value produced exactly once before it is read (a cycle is refused), no used output that we
/// do not compute. A final Softmax or Sigmoid is cut so that attacks see the logits.
/// </summary>
internal sealed class OnnxGraph
{
    private OnnxGraph(OnnxFile file)
    {
        File = file;
    }

    public OnnxFile File { get; }
    public string InputName { get; private set; } = "";
    /// <summary>Declared input dimensions; null entries are symbolic (e.g. "batch") or unknown.</summary>
    public long?[] InputDims { get; private set; } = [];
    /// <summary>The value the module returns (the graph's output, or the input of a cut final Softmax/Sigmoid).</summary>
    public string OutputName { get; private set; } = "";
    /// <summary>The graph's own output (differs from <see cref="OutputName"/> when the head was cut).</summary>
    public string GraphOutputName { get; private set; } = "";
    /// <summary>The cut final node ("Softmax" or "Sigmoid") and its name, or null.</summary>
    public (string Op, string Node, long Axis)? CutHead { get; private set; }
    /// <summary>Nodes in execution order (Constant nodes excluded: they are values).</summary>
    public IReadOnlyList<(OnnxNode Node, OnnxOperator Op)> Steps { get; private set; } = [];
    public IReadOnlyList<OnnxNode> ConstantNodes { get; private set; } = [];
    public IReadOnlyDictionary<string, TensorProto> Initializers { get; private set; } = new Dictionary<string, TensorProto>();
    /// <summary>For each value name, the index of the last step that reads it (the output: int.MaxValue).</summary>
    public IReadOnlyDictionary<string, int> LastUse { get; private set; } = new Dictionary<string, int>();

    public static OnnxGraph Plan(OnnxFile file)
    {
        var plan = new OnnxGraph(file);
        plan.Build(executable: true);
        return plan;
    }

    /// <summary>The graph's interface only (one float input, one output, a cut final Softmax/Sigmoid), for ONNX
    /// Runtime: operators, domains and control flow are its business, so they are not checked and no steps are planned.</summary>
    public static OnnxGraph Signature(OnnxFile file)
    {
        var plan = new OnnxGraph(file);
        plan.Build(executable: false);
        return plan;
    }

    private ModelFormatException Error(string problem) => new($"{File.Path}: {problem}");

    private void Build(bool executable)
    {
        var g = File.Graph;
        if (g.SparseInitializer.Count > 0) throw Error("the graph has sparse initializers, which we do not read");
        var initializers = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        foreach (var t in g.Initializer)
        {
            if (!t.HasName || t.Name.Length == 0) throw Error("an initializer has no name");
            if (!initializers.TryAdd(t.Name, t)) throw Error($"initializer '{t.Name}' is defined twice");
        }
        Initializers = initializers;

        var inputs = g.Input.Where(i => !initializers.ContainsKey(i.Name)).ToList();
        if (inputs.Count != 1)
            throw Error($"the graph has {inputs.Count} inputs ({string.Join(", ", inputs.Select(i => i.Name))}); an image classifier has one");
        var input = inputs[0];
        InputName = input.Name;
        var tensorType = input.Type?.TensorType ?? throw Error($"graph input '{input.Name}' is not a tensor");
        if (tensorType.HasElemType && tensorType.ElemType != (int)TensorProto.Types.DataType.Float)
            throw Error($"graph input '{input.Name}' is {OnnxTensors.TypeName(tensorType.ElemType)}; we feed float32 images");
        InputDims = tensorType.Shape?.Dim.Select(d => d.HasDimValue ? d.DimValue : (long?)null).ToArray() ?? [];
        if (InputDims.Any(d => d is < 0)) throw Error($"graph input '{input.Name}' has a negative dimension");

        if (g.Output.Count != 1)
            throw Error($"the graph has {g.Output.Count} outputs ({string.Join(", ", g.Output.Select(o => o.Name))}); a classifier has one, the logits");
        GraphOutputName = OutputName = g.Output[0].Name;

        var nodes = g.Node.Select((n, i) => new OnnxNode(n, i, File)).ToList();
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in nodes)
        {
            if (executable && node.Proto.HasDomain && node.Proto.Domain is not ("" or "ai.onnx"))
                throw node.Error($"the operator is from domain '{node.Proto.Domain}', which we do not execute");
            if (executable && node.Proto.Attribute.Any(a => a.G is not null || a.Graphs.Count > 0))
                throw node.Error("subgraphs (control flow) are not supported");
            if (executable && node.Op != "Constant" && !OnnxOperators.TryGet(node.Op, out _))
                throw node.Error("not supported (we execute: " + string.Join(", ", OnnxOperators.Names.Append("Constant").Order(StringComparer.Ordinal)) + ")");
            foreach (var output in node.Proto.Output.Where(o => o.Length > 0))
            {
                if (initializers.ContainsKey(output) || output == InputName || !producer.TryAdd(output, node.Index))
                    throw node.Error($"value '{output}' is produced more than once");
            }
        }

        var order = TopologicalOrder(nodes, producer, initializers);
        CutFinalActivation(nodes, producer);
        if (!executable) return;

        var used = new Dictionary<string, int>(StringComparer.Ordinal);
        var steps = new List<(OnnxNode, OnnxOperator)>();
        var constants = new List<OnnxNode>();
        foreach (var index in order)
        {
            var node = nodes[index];
            if (CutHead is { } cut && node.Name == cut.Node && node.Proto.Output.Contains(GraphOutputName)) continue;
            if (node.Op == "Constant")
            {
                constants.Add(node);
                continue;
            }
            OnnxOperators.TryGet(node.Op, out var op);
            foreach (var name in node.Proto.Input.Where(n => n.Length > 0)) used[name] = steps.Count;
            steps.Add((node, op));
        }
        used[OutputName] = int.MaxValue;
        // Outputs we do not compute (MaxPool indices, Dropout mask, training statistics) must be unused.
        foreach (var (node, op) in steps)
            for (int i = op.Outputs; i < node.Proto.Output.Count; i++)
                if (node.Proto.Output[i].Length > 0 && used.ContainsKey(node.Proto.Output[i]))
                    throw node.Error($"output {i} ('{node.Proto.Output[i]}') is used, and we compute only the first {op.Outputs}");
        if (!producer.ContainsKey(OutputName) && !initializers.ContainsKey(OutputName) && OutputName != InputName)
            throw Error($"nothing produces the graph output '{OutputName}'");
        Steps = steps;
        ConstantNodes = constants;
        LastUse = used;
    }

    /// <summary>Kahn's algorithm over the producer → consumer edges; what remains unsorted lies on a cycle.</summary>
    private List<int> TopologicalOrder(List<OnnxNode> nodes, Dictionary<string, int> producer, Dictionary<string, TensorProto> initializers)
    {
        var pending = new int[nodes.Count];
        var consumers = new List<int>[nodes.Count];
        for (int i = 0; i < nodes.Count; i++) consumers[i] = [];
        foreach (var node in nodes)
        {
            foreach (var name in node.Proto.Input.Where(n => n.Length > 0).Distinct(StringComparer.Ordinal))
            {
                if (producer.TryGetValue(name, out var from))
                {
                    consumers[from].Add(node.Index);
                    pending[node.Index]++;
                }
                else if (!initializers.ContainsKey(name) && name != InputName)
                    throw node.Error($"reads '{name}', which no node, initializer or graph input provides");
            }
        }
        var ready = new Queue<int>(Enumerable.Range(0, nodes.Count).Where(i => pending[i] == 0));
        var order = new List<int>(nodes.Count);
        while (ready.Count > 0)
        {
            var i = ready.Dequeue();
            order.Add(i);
            foreach (var c in consumers[i])
                if (--pending[c] == 0) ready.Enqueue(c);
        }
        if (order.Count != nodes.Count)
        {
            var stuck = nodes.First(n => pending[n.Index] > 0);
            throw Error($"the graph has a cycle: node '{stuck.Name}' ({stuck.Op}) depends, through other nodes, on its own output");
        }
        return order;
    }

    /// <summary>A graph whose output is Softmax/Sigmoid of the class scores hands attacks probabilities; we return
    /// the scores instead (the argmax is unchanged) and say so.</summary>
    private void CutFinalActivation(List<OnnxNode> nodes, Dictionary<string, int> producer)
    {
        if (!producer.TryGetValue(GraphOutputName, out var last)) return;
        var node = nodes[last];
        if (node.Op is not ("Softmax" or "Sigmoid") || node.Proto.Input.Count == 0) return;
        long axis = node.Op == "Sigmoid" ? 1 : node.Int("axis", node.Opset >= 13 ? -1 : 1);
        if (axis is not (1 or -1)) return;
        var scores = node.Proto.Input[0];
        if (scores == InputName) return;
        CutHead = (node.Op, node.Name, axis);
        OutputName = scores;
    }
}
