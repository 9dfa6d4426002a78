using Robustness.Attacks;
using Robustness.Core;
using Robustness.Evaluation;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Evaluation.Tests;

/// <summary>A module computing <c>f(x)</c> around an inner network, for the wrapped models the sanity checks must catch.</summary>
internal sealed class Wrapped : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> inner;
    private readonly Func<Tensor, Tensor>? before;
    private readonly Func<Tensor, Tensor>? after;

    public Wrapped(string name, nn.Module<Tensor, Tensor> inner, Func<Tensor, Tensor>? before = null, Func<Tensor, Tensor>? after = null) : base(name)
    {
        this.inner = inner;
        this.before = before;
        this.after = after;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var h = before is null ? x : before(x);
        var y = inner.call(h);
        return after is null ? y : after(y);
    }
}

/// <summary>
/// Generated data and a quickly trained small classifier shared by the tests: 10 classes of 1×10×10 images, each a
/// fixed random prototype plus noise. An MLP learns it to ~100% in well under a second.
/// </summary>
internal static class Fixtures
{
    public const int Classes = 10;
    public const int Side = 10;
    public static readonly string[] ClassNames = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"];

    private static readonly Lazy<(nn.Module<Tensor, Tensor> Net, ImageDataset Data)> Trained = new(Train);

    public static ImageDataset Data => Trained.Value.Data;

    public static ImageDataset MakeData(int n, long seed, IReadOnlyList<string>? names = null, int channels = 1)
    {
        using var scope = NewDisposeScope();
        var g = new Generator((ulong)seed);
        var protoGen = new Generator(12345);
        var prototypes = rand([Classes, channels, Side, Side], generator: protoGen) * Keep(0.6) + Keep(0.2);
        var labels = randint(0, Classes, [n], generator: g, dtype: ScalarType.Int64);
        var images = (prototypes.index_select(0, labels) + randn([n, channels, Side, Side], generator: g) * Keep(0.08)).clamp(Keep(0), Keep(1));
        images.MoveToOuterDisposeScope();
        labels.MoveToOuterDisposeScope();
        return new ImageDataset("synthetic-prototypes", images, labels, names ?? ClassNames, Bounds.Unit, "generated in tests");
    }

    private static (nn.Module<Tensor, Tensor>, ImageDataset) Train()
    {
        random.manual_seed(7);
        var net = nn.Sequential(("flatten", nn.Flatten()), ("fc1", nn.Linear(Side * Side, 64)), ("relu", nn.ReLU()), ("fc2", nn.Linear(64, Classes)));
        var train = MakeData(1000, 1);
        using var opt = optim.Adam(net.parameters(), 0.01);
        for (int step = 0; step < 150; step++)
        {
            using var scope = NewDisposeScope();
            opt.zero_grad();
            var loss = nn.functional.cross_entropy(net.call(train.Images), train.Labels);
            loss.backward();
            opt.step();
        }
        net.eval();
        train.Dispose();
        return (net, MakeData(200, 2));
    }

    public static ModelSpec Spec(string arch) => new()
    {
        Arch = arch, InputShape = [1, Side, Side], NumClasses = Classes, Labels = ClassNames, Bounds = Bounds.Unit,
    };

    public static TorchClassifier Healthy() => new(Trained.Value.Net, Spec("test-mlp"));

    /// <summary>Outputs probabilities instead of logits.</summary>
    public static TorchClassifier SoftmaxOutput() =>
        new(new Wrapped("softmax", Trained.Value.Net, after: y => y.softmax(1)), Spec("test-mlp-softmax"));

    /// <summary>Adds input noise on every forward pass, eval mode or not (a randomised defence).</summary>
    /// <summary>Gaussian noise (σ 1, large enough to flip some of the 60 test points) on the input in every pass, from its own generator: what it draws does not depend
    /// on which other tests ran first and touched the global one.</summary>
    public static TorchClassifier Randomised()
    {
        var generator = new torch.Generator(20261201);
        return new(new Wrapped("noisy", Trained.Value.Net,
            before: x => x + torch.randn(x.shape, dtype: x.dtype, device: x.device, generator: generator) * Keep(1.0)), Spec("test-mlp-noisy"));
    }

    /// <summary>Quantises its input to steps of 1/4 first: round() has zero gradient, so gradients are masked.</summary>
    public static TorchClassifier Quantising() =>
        new(new Wrapped("quantise", Trained.Value.Net, before: x => (x * Keep(4)).round() / Keep(4)), Spec("test-mlp-quantised"));

    /// <summary>sqrt of the input first: the gradient at a zero pixel is infinite.</summary>
    public static TorchClassifier SqrtInput() =>
        new(new Wrapped("sqrt", Trained.Value.Net, before: x => x.sqrt()), Spec("test-mlp-sqrt"));

    public static IAttackSuite FgsmPgd() => new RegistryAttackSuite("fgsm,pgd");

    public static EvaluationOptions Options(IAttackSuite suite, double eps = 0.1, params double[] sweep) => new()
    {
        Norm = Norm.Linf,
        Epsilon = eps,
        SweepEpsilons = sweep,
        Attacks = suite,
        BatchSize = 64,
        Seed = 11,
        ImageCount = 6,
        SanitySubset = 60,
    };
}
