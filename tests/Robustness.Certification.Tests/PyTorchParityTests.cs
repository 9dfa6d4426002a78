using System.Diagnostics;
using System.Text.Json;
using Robustness.Core;
using Robustness.Core.Graphs;
using Robustness.Models;
using Robustness.Core.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Certification.Tests;

/// <summary>A fact that needs Debian's python3-torch; reported as skipped (not passed) where it is absent.</summary>
public sealed class PythonTorchFactAttribute : FactAttribute
{
    public const string Python = "/usr/bin/python3";

    public PythonTorchFactAttribute()
    {
        if (!File.Exists(Python) || !File.Exists("/usr/lib/python3/dist-packages/torch/__init__.py"))
            Skip = $"needs {Python} with python3-torch";
    }
}

/// <summary>
/// Our IBP margins against an independent PyTorch implementation (tests/bench/pytorch_reference.py, ibp_margins: the
/// same arithmetic written in Python from the paper) on the same ibp-small weights and inputs, with and without the
/// float32 rounding slack.
/// </summary>
public class PyTorchParityTests
{
    [PythonTorchFact]
    public void Ibp_margins_agree_with_the_pytorch_reference()
    {
        using var scope = NewDisposeScope();
        manual_seed(31);
        using var model = ModelZoo.CreateClassifier("ibp-small", CPU);
        var dir = Path.Combine(Path.GetTempPath(), "robustness-cert-parity-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var pt = Path.Combine(dir, "ibp-small.pt");
            var io = Path.Combine(dir, "inputs.safetensors");
            ModelFile.ExportPt(model, pt);
            var x = rand(6, 1, 28, 28);
            var y = tensor(new long[] { 0, 3, 5, 7, 9, 2 });
            SafeTensors.Write(io, [KeyValuePair.Create("x", x), KeyValuePair.Create("y", y)]);
            var root = FindRepo();
            const string script = """
                import json, struct, sys, numpy as np, torch
                sys.path.insert(0, sys.argv[3] + '/tests/bench'); sys.path.insert(0, sys.argv[3] + '/tests/fixtures/pytorch')
                from pytorch_reference import ibp_margins
                from make_fixture import IbpSmall
                torch.set_num_threads(1)
                m = IbpSmall(); m.load_state_dict(torch.load(sys.argv[1])); m.eval()
                with open(sys.argv[2], 'rb') as f:
                    n = struct.unpack('<Q', f.read(8))[0]; h = json.loads(f.read(n)); data = f.read()
                def get(k, dt):
                    a, b = h[k]['data_offsets']; return torch.from_numpy(np.frombuffer(data[a:b], dtype=dt).copy()).reshape(h[k]['shape'])
                x, y = get('x', np.float32).double(), get('y', np.int64)
                with torch.no_grad():
                    out = {str(s): ibp_margins(m, x, y, 0.05, s).tolist() for s in (False, True)}
                print(json.dumps(out))
                """;
            var (exit, output) = RunPython(script, pt, io, root);
            Assert.True(exit == 0, output);
            using var doc = JsonDocument.Parse(output.Trim().Split('\n')[^1]);
            var graph = NetworkDescriptions.Of(model);
            var box = Interval.LinfBall(x.to(float64), 0.05, Bounds.Unit);
            foreach (var (key, slack) in new[] { ("False", FloatingPointSlack.None), ("True", FloatingPointSlack.Float32Network) })
            {
                var ours = new IntervalBoundPropagation { Slack = slack }.MarginLowerBounds(graph, box, y);
                var theirs = doc.RootElement.GetProperty(key).EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
                for (int i = 0; i < theirs.Length; i++)
                    for (int j = 0; j < theirs[i].Length; j++)
                        Assert.True(Math.Abs(ours[i, j].ToDouble() - theirs[i][j]) <= 1e-9 * (1 + Math.Abs(theirs[i][j])),
                            $"slack {key}, point {i}, class {j}: ours {ours[i, j].ToDouble():R}, PyTorch {theirs[i][j]:R}");
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static string FindRepo()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Robustness.sln"))) return d.FullName;
        throw new DirectoryNotFoundException("Robustness.sln not found");
    }

    private static (int, string) RunPython(string script, params string[] args)
    {
        var start = new ProcessStartInfo(PythonTorchFactAttribute.Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["OMP_NUM_THREADS"] = "1";
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
