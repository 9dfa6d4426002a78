using Robustness.Core;
using Robustness.Core.Attacking;
using TorchSharp;
using static TorchSharp.torch;
using static Robustness.Core.TorchScalars;

namespace Robustness.Attacks.Tests;

/// <summary>
/// Query-only models and the attacks that run on them: what each model access lets through, the hard query budget
/// (counted independently of the attacks' own ledgers), and decision-based minimum norms against the closed form of
/// linear classifiers (distance to the nearest other class's half-space, (z_y − z_j)/‖w_y − w_j‖_dual).
/// </summary>
public sealed class BlackBoxTests
{
    private static readonly ThreatModel Linf = ThreatModel.Linf(0.1);

    /// <summary>Counts every row the wrapped model answers (one query per sample), whatever the attack reports.</summary>
    private sealed class CountingClassifier(IClassifier inner, ModelAccess access) : IQueryClassifier
    {
        private readonly QueryOnlyClassifier _view = access == ModelAccess.Labels ? QueryOnlyClassifier.LabelOnly(inner) : QueryOnlyClassifier.ScoresOnly(inner);
        public ModelAccess Access => _view.Access;
        public long QueriesAnswered => _view.QueriesAnswered;
        public ModelSpec Spec => inner.Spec;
        public Device Device => inner.Device;
        public Tensor Logits(Tensor inputs) => _view.Logits(inputs);
    }

    [Fact]
    public void Label_only_view_gives_the_label_one_hot_and_nothing_else()
    {
        using var scope = NewDisposeScope();
        var model = Fixtures.RandomMlp(3);
        var (x, _) = Fixtures.RandomData(model, 32, 4);
        var view = QueryOnlyClassifier.LabelOnly(model);
        Assert.Equal(ModelAccess.Labels, ModelAccesses.Of(view));
        Assert.Equal(ModelAccess.Scores, ModelAccesses.Of(QueryOnlyClassifier.ScoresOnly(model)));
        var outputs = view.Logits(x.clone().requires_grad_(true));
        Assert.False(outputs.requires_grad);
        Assert.Equal(model.Logits(x).argmax(1).data<long>().ToArray(), outputs.argmax(1).data<long>().ToArray());
        Assert.True(outputs.sum(1).eq(Keep(1)).all().ToBoolean() && outputs.eq(Keep(0)).logical_or(outputs.eq(Keep(1))).all().ToBoolean(), "label-only outputs must be one-hot");
        Assert.Equal(32, view.QueriesAnswered);
    }

    [Fact]
    public void Attacks_that_need_more_than_the_model_gives_are_refused_naming_those_that_run()
    {
        using var scope = NewDisposeScope();
        var model = Fixtures.RandomMlp(5);
        var (x, y) = Fixtures.RandomData(model, 8, 6);
        var labels = QueryOnlyClassifier.LabelOnly(model);
        var error = Assert.Throws<ParameterException>(() => AttackRegistry.RequireRunnable([AttackRegistry.Create("pgd", Linf)], ModelAccess.Labels));
        Assert.Contains("hopskipjump", error.Problem);
        Assert.Contains("boundary", error.Problem);
        Assert.DoesNotContain("square", error.Problem);
        Assert.Contains("square", Assert.Throws<ParameterException>(() => AttackRegistry.RequireRunnable([AttackRegistry.Create("pgd", Linf)], ModelAccess.Scores)).Problem);
        Assert.Throws<ParameterException>(() => AttackRegistry.RequireRunnable([AttackRegistry.Create("square", Linf)], ModelAccess.Labels));
        // The sealed entry point refuses too, for callers that skip the registry.
        Assert.ThrowsAny<InputException>(() => AttackRegistry.Create("square", Linf).Run(labels, x, new AttackTargets(y)));
        Assert.ThrowsAny<InputException>(() => AttackRegistry.Create("apgd-ce", Linf).Run(labels, x, new AttackTargets(y)));
        Assert.Equal(["hopskipjump", "boundary"], AttackRegistry.RunnableOn(ModelAccess.Labels));
    }

    [Fact]
    public void Ledger_refuses_a_query_past_the_budget_before_the_model_is_asked()
    {
        var ledger = new QueryLedger(3, 5);
        ledger.Charge([0, 0, 1]);
        Assert.Equal(2, ledger.Used(0));
        Assert.Throws<QueryBudgetExceededException>(() => ledger.Charge([1, 0, 0, 0, 0]));
        Assert.Equal(2, ledger.Used(0)); // all or nothing
        Assert.Equal(1, ledger.Used(1));
        ledger.Charge([0, 0, 0]);
        Assert.False(ledger.CanAfford(0));
        ledger.MarkSuccess(1);
        ledger.MarkSuccess(1, 0);
        Assert.Equal(1, ledger.QueriesToSuccess(1));
        Assert.Equal(-1, ledger.QueriesToSuccess(2));
    }

    public static TheoryData<string, string, int> BudgetCases() => new()
    {
        { "square", "linf", 37 }, { "square", "l2", 150 },
        { "hopskipjump", "linf", 37 }, { "hopskipjump", "l2", 300 }, { "hopskipjump", "l2", 1 },
        { "boundary", "l2", 37 }, { "boundary", "l2", 400 },
        { "transfer:pgd", "linf", 1 },
    };

    /// <summary>No sample is ever asked about more than the budget: the counting model sees exactly the attack's
    /// reported queries plus the final verdict's one pass, and no sample's count exceeds the budget.</summary>
    [Theory]
    [MemberData(nameof(BudgetCases))]
    public void No_attack_asks_for_one_query_more_than_its_budget(string name, string norm, int budget)
    {
        using var scope = NewDisposeScope();
        var inner = Fixtures.RandomMlp(11);
        var (x, y) = Fixtures.RandomData(inner, 24, 12);
        var threat = new ThreatModel(NormNames.Parse(norm), norm == "linf" ? 0.05 : 0.5, Bounds.Unit);
        var attack = AttackRegistry.Create(name, threat, new AttackOptions { Queries = budget, Steps = 5, Surrogate = new Surrogate(Fixtures.RandomMlp(12), "other-mlp") });
        var model = new CountingClassifier(inner, attack.Needs == ModelAccess.Scores ? ModelAccess.Scores : ModelAccess.Labels);
        using var r = attack.Run(model, x, new AttackTargets(y), AttackContext.Seeded(7));
        var used = r.Queries!.data<long>().ToArray();
        var toSuccess = r.QueriesToSuccess!.data<long>().ToArray();
        var success = r.Success.data<bool>().ToArray();
        Assert.All(used, q => Assert.InRange(q, 0, name.StartsWith("transfer", StringComparison.Ordinal) ? 1 : budget));
        Assert.Equal(used.Sum() + x.shape[0], model.QueriesAnswered);
        for (int i = 0; i < used.Length; i++)
        {
            if (success[i]) Assert.InRange(toSuccess[i], 1, used[i]);
            else Assert.Equal(-1, toSuccess[i]);
        }
    }

    /// <summary>Square's successive halving: past each checkpoint h, 2h, 4h… at most half (rounded up) of the samples
    /// still standing there go on, so at most ⌈n/2^k⌉ samples use more than 2^(k−1)·h queries; no sample exceeds the
    /// budget; the counting model sees exactly the reported queries; the result stays inside the ε-ball.</summary>
    [Fact]
    public void Square_halving_spends_the_late_queries_on_a_shrinking_half()
    {
        using var scope = NewDisposeScope();
        var inner = Fixtures.RandomMlp(31);
        var (x, y) = Fixtures.RandomData(inner, 64, 32);
        var threat = new ThreatModel(Norm.Linf, 0.002, Bounds.Unit); // small: most samples stand to the end
        const int budget = 200, from = 20;
        var attack = (SquareAttack)AttackRegistry.Create("square", threat, new AttackOptions { Queries = budget, SquareHalvingFrom = from });
        Assert.Equal(from, attack.HalvingFrom);
        var model = new CountingClassifier(inner, ModelAccess.Scores);
        using var r = attack.Run(model, x, new AttackTargets(y), AttackContext.Seeded(5));
        var used = r.Queries!.data<long>().ToArray();
        Assert.Equal(used.Sum() + x.shape[0], model.QueriesAnswered);
        Assert.All(used, q => Assert.InRange(q, 1, budget));
        long n = x.shape[0];
        for (int k = 1, h = from; h < budget; k++, h *= 2)
            Assert.True(used.Count(q => q > h) <= (n + (1L << k) - 1) >> k, $"more than half went on past {h} queries");
        Assert.True(used.Count(q => q > from) > 0, "nobody went on after the first halving");
        // Without halving every standing sample takes the whole budget, so halving saves queries here.
        var plain = (SquareAttack)AttackRegistry.Create("square", threat, new AttackOptions { Queries = budget });
        using var all = plain.Run(new CountingClassifier(inner, ModelAccess.Scores), x, new AttackTargets(y), AttackContext.Seeded(5));
        Assert.True(used.Sum() < all.Queries!.data<long>().Sum());
        var delta = (r.Adversarial - x).abs().max().ToDouble();
        Assert.True(delta <= threat.Epsilon + 1e-7, $"‖δ‖∞ = {delta}");
    }

    [Fact]
    public void Transfer_from_the_model_itself_is_the_white_box_attack_with_one_query_each()
    {
        using var scope = NewDisposeScope();
        var model = Fixtures.RandomMlp(21);
        var (x, y) = Fixtures.RandomData(model, 64, 22);
        var options = new AttackOptions { Steps = 10, Surrogate = new Surrogate(model, "itself") };
        using var white = AttackRegistry.Create("pgd", Linf, options).Run(model, x, new AttackTargets(y), AttackContext.Seeded(3));
        var transfer = AttackRegistry.Create("pgd", Linf, options with { TransferGradientAttacks = true });
        Assert.Equal("transfer:pgd", transfer.Name);
        Assert.Equal(ModelAccess.Labels, transfer.Needs);
        using var moved = transfer.Run(QueryOnlyClassifier.LabelOnly(model), x, new AttackTargets(y), AttackContext.Seeded(3));
        Assert.Equal(white.Success.data<bool>().ToArray(), moved.Success.data<bool>().ToArray());
        Assert.True(white.Success.any().ToBoolean());
        Assert.All(moved.Queries!.data<long>().ToArray(), q => Assert.Equal(1, q));
        Assert.Throws<ParameterException>(() => AttackRegistry.Create("transfer:pgd", Linf));
    }

    /// <summary>A linear classifier on 20 features in a box far wider than the distances involved.</summary>
    private static (TorchClassifier Model, Tensor X, Tensor Y, double[] Exact) Linear(Norm norm, int points, long seed)
    {
        random.manual_seed(seed);
        var layer = nn.Linear(20, 10);
        var model = new TorchClassifier(layer, Fixtures.Spec([20], 10, new Bounds(-20, 20)));
        var x = randn([points, 20], generator: new Generator((ulong)seed));
        using var _ = no_grad();
        var logits = layer.call(x);
        var y = logits.argmax(1);
        var w = layer.weight!.to(ScalarType.Float64);
        var exact = new double[points];
        var z = logits.to(ScalarType.Float64);
        for (int i = 0; i < points; i++)
        {
            int label = (int)y[i].item<long>();
            exact[i] = Enumerable.Range(0, 10).Where(j => j != label).Min(j =>
            {
                var dw = w[label] - w[j];
                double dual = norm == Norm.L2 ? dw.norm().item<double>() : dw.abs().sum().item<double>();
                return (z[i, label] - z[i, j]).item<double>() / dual;
            });
        }
        return (model, x, y, exact);
    }

    [Theory]
    [InlineData("hopskipjump", "l2", 2000, 1.05)]
    [InlineData("hopskipjump", "linf", 3000, 1.1)]
    [InlineData("boundary", "l2", 3000, 1.3)]
    public void Decision_based_minimum_norms_approach_the_closed_form_of_a_linear_model(string name, string norm, int queries, double ratio)
    {
        using var scope = NewDisposeScope();
        var n = NormNames.Parse(norm);
        var (model, x, y, exact) = Linear(n, 40, 31);
        var attack = AttackRegistry.Create(name, new ThreatModel(n, 1e-3, model.Spec.Bounds), new AttackOptions { Queries = queries });
        using var r = attack.Run(QueryOnlyClassifier.LabelOnly(model), x, new AttackTargets(y), AttackContext.Seeded(5));
        var found = r.MinimumNorm!.data<double>().ToArray();
        var ratios = found.Zip(exact, (f, e) => f / e).Order().ToArray();
        // Never below the exact minimum (that would be a wrong verdict), and close to it.
        Assert.True(ratios[0] >= 1 - 1e-4, $"{name}: found {ratios[0]} × the exact minimum distance");
        Assert.True(ratios[ratios.Length / 2] <= ratio, $"{name} {norm}: median ratio to the exact minimum {ratios[ratios.Length / 2]:F3} > {ratio}");
    }
}
