using Robustness.Attacks;
using Robustness.Core;
using Robustness.Core.Attacking;
using Robustness.Data.Toy;
using Robustness.Defenses;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Playground;

/// <summary>Loss curve point: epoch, training loss, test loss.</summary>
public readonly record struct LossPoint(int Epoch, double TrainLoss, double TestLoss);

/// <summary>The latest PGD attack and certificates on the test points of one network.</summary>
public sealed record AttackSnapshot(int Epoch, float[] Adversarial, bool[] Broken, bool[]? Certified, double? RobustAccuracy,
    double? CertifiedAccuracy, double? RobustLoss)
{
    /// <summary>Randomized smoothing (Gaussian-noise objective): the certified L2 radius of the smoothed classifier at each
    /// test point, 0 where it abstains or predicts the wrong class.</summary>
    public float[]? SmoothedRadius { get; init; }
    /// <summary>Share of test points whose smoothed prediction is right with a radius covering the threat model's ball.</summary>
    public double? SmoothedCertifiedAccuracy { get; init; }
    public string? SmoothingParameters { get; init; }
}

/// <summary>What is shown of one network: metrics, curves, weights, the latest attack.</summary>
public sealed record NetworkSnapshot(string Role, string Objective, double TrainLoss, double TestLoss, double? TrainAccuracy,
    double? TestAccuracy, bool Diverged, IReadOnlyList<LossPoint> History, float[][][] Weights, float[][] Biases,
    double[] GradientNorms, AttackSnapshot? Attack, int ForkedAtEpoch, int HistoryVersion);

/// <summary>
/// One playground: the toy data, the network (and its standard-trained twin when comparing), their optimizers and
/// objectives, training by epochs, evaluation, attacks and certificates. Not thread-safe and bound to the thread
/// that uses it (TorchSharp dispose scopes and grad mode are per thread): the server drives each engine from one
/// dedicated thread, the CLI from its main thread.
/// </summary>
public sealed class PlaygroundEngine : IDisposable
{
    /// <summary>Default heat-map resolution over [−6, 6]² while streaming (the page smooths it when scaling up;
    /// the TF Playground computes 100², which costs 2.4× as much per frame here).</summary>
    public const int DefaultGridSize = 64;
    /// <summary>Neuron thumbnail resolution.</summary>
    public const int ThumbnailSize = 24;
    private const int MaxHistory = 1000;

    private readonly IPointCertifier _certifier;
    private Tensor? _trainX, _trainY, _testX, _testY;
    private readonly Tensor _grid, _thumbGrid;
    private Trainee? _main, _twin;
    private Random _shuffle = new(0);
    private bool _disposed;

    public PlaygroundEngine(PlaygroundState state, IPointCertifier? certifier = null, int gridSize = DefaultGridSize)
    {
        if (gridSize < 8 || gridSize > 400) throw new ParameterException(nameof(gridSize), $"must be in [8, 400], got {gridSize}");
        GridSize = gridSize;
        _certifier = certifier ?? IntervalBoundCertifier.Instance;
        _grid = GridPoints(GridSize).DetachFromDisposeScope();
        _thumbGrid = GridPoints(ThumbnailSize).DetachFromDisposeScope();
        State = state.Validate();
        Rebuild();
    }

    public PlaygroundState State { get; private set; }
    /// <summary>Heat-map resolution of <see cref="OutputGrids"/>.</summary>
    public int GridSize { get; }
    public int Epoch { get; private set; }
    public long Iterations { get; private set; }
    public ToyPoint[] TrainPoints { get; private set; } = [];
    public ToyPoint[] TestPoints { get; private set; } = [];
    /// <summary>Bumped whenever the data or the network are rebuilt (the page clears its curves then).</summary>
    public int Generation { get; private set; }
    /// <summary>Bumped whenever a new attack or certificate result exists.</summary>
    public int AttackSequence { get; private set; }
    public PlaygroundModel Model => _main!.Model;
    public PlaygroundModel? Twin => _twin?.Model;

    /// <summary>Cells of an n×n grid over [−6, 6]², row 0 at the top (x₂ = +6), as [n², 2].</summary>
    public static Tensor GridPoints(int n)
    {
        var pts = new float[n * n * 2];
        double step = 2 * ToyDatasets.Extent / n;
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++)
            {
                pts[(r * n + c) * 2] = (float)(-ToyDatasets.Extent + (c + 0.5) * step);
                pts[(r * n + c) * 2 + 1] = (float)(ToyDatasets.Extent - (r + 0.5) * step);
            }
        return tensor(pts, [n * n, 2]);
    }

    /// <summary>Applies a new state: rebuilds data and network when the TF Playground would reset, refreshes the
    /// optimizer and objectives otherwise, and creates or drops the standard twin.</summary>
    public void Apply(PlaygroundState next)
    {
        next = next.Validate();
        var previous = State;
        State = next;
        if (next.NeedsRebuild(previous)) { Rebuild(); return; }
        if (next.NeedsNewOptimizer(previous)) { _main!.NewOptimizer(next); _twin?.NewOptimizer(next); }
        _main!.Objective = ObjectiveFor(next, next.Objective);
        if (next.HasTwin && _twin is null)
        {
            _twin = _main.Fork("standard", ObjectiveFor(next, "standard"), next, Epoch);
        }
        else if (!next.HasTwin && _twin is not null) { _twin.Dispose(); _twin = null; }
        if (next.Threat != previous.Threat || next.AttackSteps != previous.AttackSteps || next.AttackStepSize != previous.AttackStepSize)
        {
            _main.Attack = null;
            if (_twin is not null) _twin.Attack = null;
        }
    }

    /// <summary>Re-draws the network from the seed (the data stay).</summary>
    public void Reset() => Rebuild(regenerateData: false);

    private void Rebuild(bool regenerateData = true)
    {
        var s = State;
        if (regenerateData || _trainX is null)
        {
            var name = s.ActiveDataset;
            var points = ToyDatasets.Generate(name, ToyDatasets.DefaultCount(name), s.Noise / 100.0, s.Seed);
            (TrainPoints, TestPoints) = ToyDatasets.Split(points, s.PercTrainData, s.Seed);
            foreach (var t in new[] { _trainX, _trainY, _testX, _testY }) t?.Dispose();
            (_trainX, _trainY) = ToTensors(TrainPoints, s.IsClassification);
            (_testX, _testY) = ToTensors(TestPoints, s.IsClassification);
        }
        _main?.Dispose();
        _twin?.Dispose();
        _twin = null;
        _main = Trainee.Create("main", s, ObjectiveFor(s, s.Objective));
        if (s.HasTwin) _twin = Trainee.Create("standard", s, ObjectiveFor(s, "standard"));
        _shuffle = new Random(unchecked((int)s.Seed * 7919 + 17));
        _epochOrder?.Dispose();
        _epochOrder = null;
        Epoch = 0;
        Iterations = 0;
        Generation++;
        AttackSequence++;
    }

    private static (Tensor X, Tensor Y) ToTensors(ToyPoint[] points, bool classification)
    {
        var xs = new float[points.Length * 2];
        for (int i = 0; i < points.Length; i++) { xs[2 * i] = (float)points[i].X1; xs[2 * i + 1] = (float)points[i].X2; }
        var x = tensor(xs, [points.Length, 2]).DetachFromDisposeScope();
        var y = classification
            ? tensor(points.Select(p => p.Label > 0 ? 1L : 0L).ToArray()).DetachFromDisposeScope()
            : tensor(points.Select(p => (float)p.Label).ToArray()).DetachFromDisposeScope();
        return (x, y);
    }

    /// <summary>The toolkit's objective for the state: StandardObjective, PgdAdversarialObjective, TradesObjective,
    /// GaussianNoiseObjective, FgsmRsObjective (classification) or the squared-error versions (regression).</summary>
    public static ITrainingObjective ObjectiveFor(PlaygroundState s, string name)
    {
        if (!s.IsClassification)
            return new SquaredErrorTrainingObjective(name == "pgd" ? "pgd" : name == "gaussian" ? "gaussian" : "standard", s.Epsilon, s.Norm)
            { Steps = s.TrainSteps, Sigma = s.Sigma };
        return name switch
        {
            "standard" => new StandardObjective(),
            "pgd" => new PgdAdversarialObjective(s.Epsilon, s.Norm) { Steps = s.TrainSteps, CleanAccuracySample = 0 },
            "trades" => new TradesObjective(s.Epsilon, s.Norm) { Steps = s.TrainSteps, Beta = s.Beta },
            "gaussian" => new GaussianNoiseObjective(s.Sigma) { CleanAccuracySample = 0 },
            "fgsm-rs" => new FgsmRsObjective(s.Epsilon, s.Norm) { CleanAccuracySample = 0 },
            _ => throw new ParameterException("objective", $"'{name}' is not one of {string.Join(", ", PlaygroundState.ObjectiveNames)}"),
        };
    }

    private Tensor? _epochOrder;
    private int _epochPosition;

    /// <summary>One epoch: a pass over the training points in shuffled mini-batches; the twin sees the same batches.
    /// After <see cref="RunBatch"/> left an epoch half done, this finishes that epoch.</summary>
    public void RunEpoch()
    {
        while (!RunBatch()) { }
    }

    /// <summary>One update of every network on the next mini-batch of the current epoch (a new shuffled order at the
    /// start of each epoch). Returns true when the batch completed the epoch. The server trains batch by batch, so
    /// frames keep their rate when an epoch is slow (adversarial training).</summary>
    public bool RunBatch()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var s = State;
        int n = TrainPoints.Length;
        if (_epochOrder is null)
        {
            var order = new long[n];
            for (int i = 0; i < n; i++) order[i] = i;
            _shuffle.Shuffle(order);
            _epochOrder = tensor(order).DetachFromDisposeScope();
            _epochPosition = 0;
        }
        int batch = s.EffectiveBatchSize(n);
        using (var scope = NewDisposeScope())
        {
            var idx = _epochOrder.narrow(0, _epochPosition, Math.Min(batch, n - _epochPosition));
            var xb = _trainX!.index_select(0, idx);
            var yb = _trainY!.index_select(0, idx);
            _main!.Step(xb, yb, s, Epoch, Iterations);
            _twin?.Step(xb, yb, s, Epoch, Iterations);
        }
        Iterations++;
        _epochPosition += batch;
        if (_epochPosition < n) return false;
        _epochOrder.Dispose();
        _epochOrder = null;
        Epoch++;
        return true;
    }

    /// <summary>How far the current epoch is, in [0, 1).</summary>
    public double EpochProgress => _epochOrder is null || TrainPoints.Length == 0 ? 0 : (double)_epochPosition / TrainPoints.Length;

    /// <summary>Sets one weight: <paramref name="layer"/> 0 is features → first hidden layer.</summary>
    public void SetWeight(int layer, int to, int from, double value)
    {
        var l = CheckLayer(layer);
        var rows = l.weight!.shape[0];
        if (to < 0 || to >= rows) throw new ParameterException("to", $"neuron {to} is not in layer {layer + 1} (0–{rows - 1})");
        if (from < 0 || from >= l.weight.shape[1]) throw new ParameterException("from", $"input {from} is not in layer {layer} (0–{l.weight.shape[1] - 1})");
        CheckValue(value);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        l.weight[to, from] = (float)value;
    }

    public void SetBias(int layer, int neuron, double value)
    {
        var l = CheckLayer(layer);
        var count = l.bias!.shape[0];
        if (neuron < 0 || neuron >= count) throw new ParameterException("neuron", $"neuron {neuron} is not in layer {layer + 1} (0–{count - 1})");
        CheckValue(value);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        l.bias[neuron] = (float)value;
    }

    private TorchSharp.Modules.Linear CheckLayer(int layer)
    {
        var layers = _main!.Model.Network.Layers;
        if (layer < 0 || layer >= layers.Count) throw new ParameterException("layer", $"must be in [0, {layers.Count - 1}], got {layer}");
        return layers[layer];
    }

    private static void CheckValue(double value)
    {
        if (!double.IsFinite(value) || Math.Abs(value) > 100) throw new ParameterException("value", $"a weight must be a finite number in [-100, 100], got {value}");
    }

    /// <summary>Losses and accuracies of every network on the full training and test sets (one host read each);
    /// appends to the loss curves when the epoch moved on.</summary>
    public void Evaluate()
    {
        foreach (var t in Trainees) t.Evaluate(_trainX!, _trainY!, _testX!, _testY!, Epoch);
    }

    /// <summary>PGD on every test point (the toolkit's engine, final threat-model check included) and, for classifiers,
    /// interval certificates. Skipped for a network whose weights are no longer finite.</summary>
    public void Attack()
    {
        var s = State;
        foreach (var t in Trainees) t.RunAttack(_testX!, _testY!, s, _certifier, Epoch);
        AttackSequence++;
    }

    private IEnumerable<Trainee> Trainees => _twin is null ? [_main!] : [_main!, _twin];

    public IReadOnlyList<NetworkSnapshot> Snapshots() => Trainees.Select(t => t.Snapshot()).ToList();

    /// <summary>The output heat map (p(blue) − p(orange), or the regression value) of each network over the
    /// <see cref="GridSize"/>² grid, row-major from the top left, each value quantised to a byte: (v + 1)·127.5.</summary>
    public IReadOnlyList<byte[]> OutputGrids() => Trainees.Select(t => t.OutputGrid(_grid)).ToList();

    /// <summary>Thumbnails of the main network: every feature, every hidden neuron, then the output, each
    /// <see cref="ThumbnailSize"/>² bytes.</summary>
    public byte[][] Thumbnails() => _main!.Thumbnails(_thumbGrid);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _main?.Dispose();
        _twin?.Dispose();
        foreach (var t in new[] { _trainX, _trainY, _testX, _testY, _grid, _thumbGrid, _epochOrder }) t?.Dispose();
    }

    internal static byte[] Quantise(Tensor values)
    {
        using var scope = NewDisposeScope();
        var q = ((values.nan_to_num(0, 1, -1).clamp(Keep(-1), Keep(1)) + Keep(1)) * Keep(127.5)).round().to(ScalarType.Byte).contiguous();
        return q.data<byte>().ToArray();
    }

    /// <summary>A network with its optimizer, objective and generator, its curves and latest attack.</summary>
    private sealed class Trainee : IDisposable
    {
        private IParameterOptimizer _optimizer;
        private readonly Generator _generator;
        private readonly Tensor _gradSum;
        private int _gradCount;
        private double[]? _lastGradients;
        private readonly List<LossPoint> _history = [];
        private double _trainLoss = double.NaN, _testLoss = double.NaN;
        private double? _trainAcc, _testAcc;
        private bool _diverged;
        private int _lastEpoch = -1;
        private static int s_historyVersions;
        private int _historyVersion = Interlocked.Increment(ref s_historyVersions);

        private Trainee(string role, PlaygroundModel model, ITrainingObjective objective, PlaygroundState s, long seed, int forkedAt)
        {
            Role = role;
            Model = model;
            Objective = objective;
            ForkedAt = forkedAt;
            _generator = new Generator((ulong)seed);
            _optimizer = NewOptimizerFor(model, s);
            _gradSum = zeros(model.Network.Layers.Count, ScalarType.Float32).DetachFromDisposeScope();
        }

        public string Role { get; }
        public PlaygroundModel Model { get; }
        public ITrainingObjective Objective { get; set; }
        public AttackSnapshot? Attack { get; set; }
        public int ForkedAt { get; }

        public static Trainee Create(string role, PlaygroundState s, ITrainingObjective objective)
        {
            var network = new PlaygroundNetwork(s.Features, s.NetworkShape, s.Activation);
            using (var init = new Generator((ulong)s.Seed)) network.Initialise(s.Init, init);
            return new Trainee(role, new PlaygroundModel(network, s.IsClassification), objective, s, s.Seed + 1, 0);
        }

        /// <summary>A copy of this network's current weights (fresh optimizer) that trains on with another objective.</summary>
        public Trainee Fork(string role, ITrainingObjective objective, PlaygroundState s, int epoch)
        {
            var network = new PlaygroundNetwork(s.Features, s.NetworkShape, s.Activation);
            using (NewDisposeScope())
            using (no_grad())
            {
                var source = Model.Network.Layers;
                for (int i = 0; i < source.Count; i++)
                {
                    network.Layers[i].weight!.copy_(source[i].weight!);
                    network.Layers[i].bias!.copy_(source[i].bias!);
                }
            }
            var twin = new Trainee(role, new PlaygroundModel(network, s.IsClassification), objective, s, s.Seed + 1, epoch);
            twin._history.AddRange(_history);
            return twin;
        }

        private static IParameterOptimizer NewOptimizerFor(PlaygroundModel model, PlaygroundState s) =>
            new SgdOptimizer(model.Module.named_parameters().Where(p => p.parameter.requires_grad), s.EffectiveMomentum, s.WeightDecay);

        public void NewOptimizer(PlaygroundState s)
        {
            _optimizer.Dispose();
            _optimizer = NewOptimizerFor(Model, s);
        }

        /// <summary>One update on a batch (inside the caller's dispose scope): the objective's loss plus the L1/L2
        /// penalty on the weights, backward, gradient norms per layer accumulated on the device, SGD step.</summary>
        public void Step(Tensor xb, Tensor yb, PlaygroundState s, int epoch, long iteration)
        {
            var module = Model.Module;
            module.train();
            var result = Objective.Compute(Model, xb, yb, new TrainingStepContext(s.Epsilon, _generator, epoch, iteration));
            var loss = result.Loss;
            var layers = Model.Network.Layers;
            if (s.Regularization != "none" && s.RegularizationRate > 0)
            {
                Tensor penalty = zeros(1);
                foreach (var l in layers)
                    penalty = penalty + (s.Regularization == "l1" ? l.weight!.abs().sum() : l.weight!.square().sum() * Keep(0.5));
                loss = loss + penalty.squeeze() * Keep(s.RegularizationRate);
            }
            module.zero_grad();
            loss.backward();
            using (no_grad())
            {
                var norms = stack(layers.Select(l => l.weight!.grad is { } g ? g.norm() : zeros(1).squeeze()).ToArray());
                _gradSum.add_(norms);
                _gradCount++;
            }
            _optimizer.Step(s.LearningRate);
            module.eval();
        }

        public void Evaluate(Tensor trainX, Tensor trainY, Tensor testX, Tensor testY, int epoch)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var trainLogits = Model.Logits(trainX);
            var testLogits = Model.Logits(testX);
            Tensor[] values;
            if (Model.Classification)
                values =
                [
                    nn.functional.cross_entropy(trainLogits, trainY), nn.functional.cross_entropy(testLogits, testY),
                    trainLogits.argmax(1).eq(trainY).to(ScalarType.Float32).mean(), testLogits.argmax(1).eq(testY).to(ScalarType.Float32).mean(),
                ];
            else
                values = [nn.functional.mse_loss(trainLogits.squeeze(1), trainY), nn.functional.mse_loss(testLogits.squeeze(1), testY)];
            // The parameters' finiteness travels in the same host read as the metrics.
            var finite = stack(Model.Network.Layers.SelectMany(l => new[] { l.weight!.isfinite().all(), l.bias!.isfinite().all() }).ToArray()).all().to(ScalarType.Float32);
            var host = stack(values.Select(v => v.to(ScalarType.Float32)).Append(finite).ToArray()).data<float>().ToArray();
            _trainLoss = host[0];
            _testLoss = host[1];
            _trainAcc = Model.Classification ? host[2] : null;
            _testAcc = Model.Classification ? host[3] : null;
            _diverged = !double.IsFinite(_trainLoss) || !double.IsFinite(_testLoss) || host[^1] < 0.5f;
            if (epoch != _lastEpoch)
            {
                _lastEpoch = epoch;
                if (_history.Count > 0 && _history[^1].Epoch == epoch) _history[^1] = new LossPoint(epoch, _trainLoss, _testLoss);
                else _history.Add(new LossPoint(epoch, _trainLoss, _testLoss));
                if (_history.Count > MaxHistory)
                {
                    // Keep the curve's shape with bounded memory: drop every other point but the last.
                    var kept = _history.Where((_, i) => i % 2 == 0 || i == _history.Count - 1).ToList();
                    _history.Clear();
                    _history.AddRange(kept);
                    _historyVersion = Interlocked.Increment(ref s_historyVersions);
                }
            }
        }

        private bool ParametersFinite()
        {
            using var scope = NewDisposeScope();
            return Model.Network.Layers.All(l => l.weight!.isfinite().all().ToBoolean() && l.bias!.isfinite().all().ToBoolean());
        }

        public void RunAttack(Tensor testX, Tensor testY, PlaygroundState s, IPointCertifier certifier, int epoch)
        {
            if (!ParametersFinite()) { Attack = null; return; }
            using var scope = NewDisposeScope();
            var threat = s.Threat.Validate("epsilon");
            using var attackGenerator = new Generator((ulong)(s.Seed * 1_000_003 + epoch));
            var context = new AttackContext(attackGenerator);
            int n = (int)testX.shape[0];
            var pgd = new ProjectedGradientAttack(threat) { Steps = s.AttackSteps, RelativeStepSize = s.AttackStepSize, Start = Starts.Uniform };
            if (Model.Classification)
            {
                using var result = pgd.Run(Model, testX, new AttackTargets(testY), context);
                Tensor cleanCorrect;
                using (no_grad()) cleanCorrect = Model.Logits(testX).argmax(1).eq(testY);
                var robust = cleanCorrect.logical_and(result.Success.logical_not());
                var certified = certifier.Certify(Model, testX, testY, threat);
                // A certificate is a proof, so a certified point must survive the attack: anything else is a bug.
                if (certified.logical_and(robust.logical_not()).any().ToBoolean())
                    throw new InvalidOperationException("a certified test point was broken by PGD: the certificate or the attack is wrong");
                var brokenHost = result.Success.logical_or(cleanCorrect.logical_not()).data<bool>().ToArray();
                var certHost = certified.data<bool>().ToArray();
                Attack = new AttackSnapshot(epoch, result.Adversarial.contiguous().data<float>().ToArray(), brokenHost, certHost,
                    robust.to(ScalarType.Float32).mean().ToDouble(), certHost.Count(c => c) / (double)n, null);
                if (Objective is GaussianNoiseObjective { Sigma: > 0 } noise && s.ShowCertified) Attack = WithSmoothing(Attack, testX, testY, s, noise.Sigma, epoch);
            }
            else
            {
                var adv = pgd with { Objective = SquaredErrorObjective.Instance };
                var points = adv.Craft(Model, testX, new AttackTargets(testY), context);
                var distance = Core.Geometry.Geometries.For(threat.Norm).Distance(points.to(ScalarType.Float64) - testX.to(ScalarType.Float64));
                ThreatModelCheck.Verify(testX, points, distance, threat);
                Tensor cleanErr, advErr;
                using (no_grad())
                {
                    cleanErr = SquaredErrorObjective.Instance.Loss(Model.Logits(testX), new AttackTargets(testY));
                    advErr = SquaredErrorObjective.Instance.Loss(Model.Logits(points), new AttackTargets(testY));
                }
                // "Broken" for a regressor: the attack at least doubled the squared error and moved it by more than 0.01.
                var broken = advErr.gt(cleanErr * Keep(2)).logical_and((advErr - cleanErr).gt(Keep(0.01))).data<bool>().ToArray();
                Attack = new AttackSnapshot(epoch, points.contiguous().data<float>().ToArray(), broken, null, null, null, advErr.mean().ToDouble());
            }
        }

        /// <summary>Samples per test point for randomized smoothing: enough for radii up to ≈ 2.4σ at α = 0.001, cheap
        /// enough to refresh while training (the server keeps all attacks and certificates within its time share).</summary>
        public static readonly Certification.RandomizedSmoothing Smoothing = new(1) { N0 = 64, N = 1000, Alpha = 0.001, BatchSize = 1000 };

        /// <summary>CERTIFY (Cohen et al. 2019) of the Certification library at every test point, with the training σ.</summary>
        private AttackSnapshot WithSmoothing(AttackSnapshot a, Tensor testX, Tensor testY, PlaygroundState s, double sigma, int epoch)
        {
            var smoothing = Smoothing with { Sigma = sigma };
            using var generator = new Generator((ulong)(s.Seed * 7_000_003 + epoch));
            var labels = testY.data<long>().ToArray();
            var radii = new float[labels.Length];
            // An L2 radius R covers the L∞ ball of radius R/√2 in two dimensions.
            double needed = s.Norm == Norm.L2 ? s.Epsilon : s.Epsilon * Math.Sqrt(2);
            int certified = 0;
            for (int i = 0; i < labels.Length; i++)
            {
                using var scope = NewDisposeScope();
                var c = smoothing.Certify(Model, testX[i], generator);
                radii[i] = c.Prediction == labels[i] ? (float)c.Radius : 0f;
                if (c.Prediction == labels[i] && c.Radius >= needed) certified++;
            }
            return a with
            {
                SmoothedRadius = radii,
                SmoothedCertifiedAccuracy = certified / (double)labels.Length,
                SmoothingParameters = FormattableString.Invariant($"σ = {sigma}, n = {smoothing.N}, α = {smoothing.Alpha}"),
            };
        }

        public NetworkSnapshot Snapshot()
        {
            var layers = Model.Network.Layers;
            var weights = new float[layers.Count][][];
            var biases = new float[layers.Count][];
            for (int i = 0; i < layers.Count; i++)
            {
                var w = layers[i].weight!.data<float>().ToArray();
                int rows = (int)layers[i].weight!.shape[0], cols = (int)layers[i].weight!.shape[1];
                weights[i] = Enumerable.Range(0, rows).Select(r => w.AsSpan(r * cols, cols).ToArray()).ToArray();
                biases[i] = layers[i].bias!.data<float>().ToArray();
            }
            // Mean over the updates since the last snapshot; without updates (paused) the last mean stays on show.
            if (_gradCount > 0)
            {
                // In-place ops hand back a new handle to the same tensor: the scope frees that handle, not _gradSum.
                using var scope = NewDisposeScope();
                _lastGradients = _gradSum.data<float>().ToArray().Select(g => (double)g / _gradCount).ToArray();
                _gradSum.zero_();
                _gradCount = 0;
            }
            var grads = _lastGradients ?? new double[layers.Count];
            return new NetworkSnapshot(Role, Objective.Name, _trainLoss, _testLoss, _trainAcc, _testAcc, _diverged, _history.ToList(),
                weights, biases, grads, Attack, ForkedAt, _historyVersion);
        }

        public byte[] OutputGrid(Tensor grid)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            return Quantise(Model.DisplayValue(Model.Network.call(grid)).reshape(-1));
        }

        public byte[][] Thumbnails(Tensor grid)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var trace = Model.Network.Trace(grid);
            var result = new List<byte[]>();
            int cells = (int)grid.shape[0];
            for (int l = 0; l < trace.Count; l++)
            {
                var t = l == trace.Count - 1 ? Model.DisplayValue(trace[l]) : trace[l];
                // One quantisation per layer; neuron j's thumbnail is row j of the transposed layer output.
                var all = Quantise(t.t().contiguous().reshape(-1));
                for (int j = 0; j < t.shape[1]; j++) result.Add(all.AsSpan(j * cells, cells).ToArray());
            }
            return [.. result];
        }

        public void Dispose()
        {
            _optimizer.Dispose();
            _generator.Dispose();
            _gradSum.Dispose();
            Model.Dispose();
        }
    }
}
