using Robustness.Core.Formats;
using Robustness.Models;
using Robustness.Models.Formats;
using static TorchSharp.torch;

namespace Robustness.Cli.Tests;

/// <summary>
/// Broken and hostile model files through `robust info FILE` and `robust attack --model FILE`: exit 2, one line naming
/// the file and the problem, nothing written, and nothing in a pickle ever executed.
/// </summary>
[Collection("cli")]
public sealed class ModelErrorTests : IDisposable
{
    private readonly TempDir _temp = new();
    public void Dispose() => _temp.Dispose();

    private string BothVerbsFail(string model, string[] extraArgs, params string[] fragments)
    {
        var line = Expect.BadInput(Cli.Run(["info", model, .. extraArgs]), fragments);
        var outDir = _temp.Sub("out-" + Guid.NewGuid().ToString("N"));
        var attack = Cli.Run(["attack", "--model", model, .. extraArgs, "--n", "4", "--attack", "fgsm", "--eps", "0.1", "--out", outDir, "--threads", "1"]);
        Expect.BadInput(attack, fragments);
        Expect.NoPartialOutput(outDir);
        return line;
    }

    private string BothVerbsFail(string model, params string[] fragments) => BothVerbsFail(model, [], fragments);

    private static readonly byte[] SixteenBytes = new byte[16];

    [Fact]
    public void NotASafetensorsFile()
    {
        var path = _temp.File("text.safetensors", "this is a README, not a model\n"u8.ToArray());
        BothVerbsFail(path, path);
    }

    [Fact]
    public void HeaderLengthLargerThanTheFile()
    {
        var path = _temp.File("long.safetensors", Make.SafeTensorsRaw("{}", SixteenBytes, declaredHeaderLength: 10_000));
        BothVerbsFail(path, path, "header");
    }

    [Fact]
    public void AbsurdlyLargeHeaderLength()
    {
        var path = _temp.File("absurd.safetensors", Make.SafeTensorsRaw("{}", SixteenBytes, declaredHeaderLength: 1UL << 62));
        BothVerbsFail(path, path, "header");
    }

    [Fact]
    public void MalformedJsonHeader()
    {
        var path = _temp.File("json.safetensors", Make.SafeTensorsRaw("{\"w\": {\"dtype\": \"F32\", \"shape\": [2,2", SixteenBytes));
        BothVerbsFail(path, path);
    }

    [Fact]
    public void InvalidUtf8InHeader()
    {
        var bytes = Make.SafeTensorsRaw("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", SixteenBytes);
        bytes[10] = 0xFF;
        var path = _temp.File("utf8.safetensors", bytes);
        BothVerbsFail(path, path);
    }

    [Fact]
    public void TensorOffsetsOutOfRange()
    {
        var path = _temp.File("range.safetensors",
            Make.SafeTensorsRaw("{\"w\":{\"dtype\":\"F32\",\"shape\":[250],\"data_offsets\":[0,1000]}}", SixteenBytes));
        BothVerbsFail(path, path, "w");
    }

    [Fact]
    public void OverlappingTensors()
    {
        var path = _temp.File("overlap.safetensors", Make.SafeTensorsRaw(
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[12,16]}}",
            SixteenBytes));
        var line = BothVerbsFail(path, path);
        Assert.Matches("(?i)overlap|gap|offset", line);
    }

    [Fact]
    public void UnknownDtype()
    {
        var path = _temp.File("dtype.safetensors",
            Make.SafeTensorsRaw("{\"w\":{\"dtype\":\"Q7\",\"shape\":[16],\"data_offsets\":[0,16]}}", SixteenBytes));
        BothVerbsFail(path, path, "Q7");
    }

    /// <summary>The shared tiny-cnn file rewritten by <paramref name="edit"/> (tensors and metadata).</summary>
    private string Edited(string name, Func<List<KeyValuePair<string, Tensor>>, Dictionary<string, string>, List<KeyValuePair<string, Tensor>>> edit)
    {
        using var state = SafeTensors.Read(Make.TinyCnn);
        var metadata = new Dictionary<string, string>(state.Metadata);
        var tensors = edit(state.Entries.ToList(), metadata);
        var path = _temp.Sub(name);
        SafeTensors.Write(path, tensors, metadata);
        return path;
    }

    [Fact]
    public void MissingTensorIsListed()
    {
        string? removed = null;
        var path = Edited("missing.safetensors", (t, _) =>
        {
            removed = t[^1].Key;
            return t.Take(t.Count - 1).ToList();
        });
        BothVerbsFail(path, path, removed!, "missing");
    }

    [Fact]
    public void ExtraTensorIsListed()
    {
        using var extra = zeros(3);
        var path = Edited("extra.safetensors", (t, _) => [.. t, new("backdoor.weight", extra)]);
        BothVerbsFail(path, path, "backdoor.weight");
    }

    [Fact]
    public void MisShapedTensorIsListed()
    {
        string? changed = null;
        using var wrong = zeros(7, 3);
        var path = Edited("shape.safetensors", (t, _) =>
        {
            changed = t[0].Key;
            t[0] = new(changed, wrong);
            return t;
        });
        BothVerbsFail(path, path, changed!, "7");
    }

    [Fact]
    public void UnknownArchListsTheValidOnes()
    {
        var path = Edited("arch.safetensors", (t, m) =>
        {
            m["arch"] = "resnet9000";
            return t;
        });
        BothVerbsFail(path, path, "resnet9000", "tiny-cnn", "preact-resnet18");
    }

    [Fact]
    public void UnknownArchOptionListsTheValidOnes()
    {
        var pt = Path.Combine(Repo.Root, "tests", "fixtures", "pytorch", "mlp-784-32-10.pt");
        BothVerbsFail(pt, ["--arch", "vgg99"], "vgg99", "mlp", "tiny-cnn");
    }

    private const string Marker = "/tmp/robustness-hostile-pickle-executed";

    [Theory]
    [InlineData("os-system.pt")]
    [InlineData("builtins-eval.pt")]
    [InlineData("stack-global-posix-system.pt")]
    [InlineData("builtin-getattr.pt")]
    public void HostilePickleIsRefusedAndNothingRuns(string fixture)
    {
        File.Delete(Marker);
        var path = Path.Combine(Repo.HostileFixtures, fixture);
        var line = BothVerbsFail(path, ["--arch", "mlp"], fixture, "refus");
        Assert.Matches("system|eval|getattr", line);
        Assert.False(File.Exists(Marker), "the pickle's payload ran");
    }
}

[Collection("cli")]
public sealed class NonFiniteModelTests
{
    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.NegativeInfinity)]
    public void ModelWithNonFiniteWeightsIsRefusedByAttackAndEval(float bad)
    {
        using var temp = new TempDir();
        string key;
        using (var state = SafeTensors.Read(Make.TinyCnn))
        {
            var tensors = state.Entries.ToList();
            key = tensors[0].Key;
            var poisoned = tensors[0].Value.clone();
            poisoned.view(-1)[3] = tensor(bad);
            tensors[0] = new(key, poisoned);
            SafeTensors.Write(temp.Sub("nan.safetensors"), tensors, state.Metadata);
        }
        var path = temp.Sub("nan.safetensors");
        var attackOut = temp.Sub("a");
        Expect.BadInput(Cli.Run("attack", "--model", path, "--n", "4", "--attack", "fgsm", "--eps", "0.1", "--threads", "1", "--out", attackOut), path, key, "NaN or Inf");
        Expect.NoPartialOutput(attackOut);
        var evalOut = temp.Sub("e");
        Expect.BadInput(Cli.Run("eval", "--model", path, "--n", "4", "--attacks", "fgsm", "--eps", "0.1", "--threads", "1", "--out", evalOut), key, "NaN or Inf");
        Expect.NoPartialOutput(evalOut);
    }
}
