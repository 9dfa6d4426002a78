using static TorchSharp.torch;

namespace Robustness.Core.Attacking;

/// <summary>An attack asked for a query beyond its budget: a bug in the attack, never bad input. The ledger throws
/// before the model is asked, so the budget holds even then.</summary>
public sealed class QueryBudgetExceededException(string message) : Exception(message);

/// <summary>
/// Per-sample query accounting of one attack run on one batch, with a hard budget. Query-based attacks ask the model
/// only through <see cref="Scores"/>, which charges one query per row to the sample that row belongs to and refuses
/// (throws <see cref="QueryBudgetExceededException"/>) any call that would take a sample past the budget, before the
/// model sees it. The counts and the queries each sample took until the attack first held an adversarial for it go
/// into the <see cref="AttackResult"/>. Host arrays: charging never synchronises with the device.
/// </summary>
public sealed class QueryLedger
{
    private readonly long[] _used;
    private readonly long[] _toSuccess;

    public QueryLedger(int samples, long budget)
    {
        if (samples < 0) throw new ArgumentOutOfRangeException(nameof(samples));
        if (budget < 0) throw new ParameterException("Queries", $"must be ≥ 0, got {budget}");
        Budget = budget;
        _used = new long[samples];
        _toSuccess = new long[samples];
        Array.Fill(_toSuccess, -1L);
    }

    public long Budget { get; }
    public int Count => _used.Length;
    public long Used(int sample) => _used[sample];
    public long Remaining(int sample) => Budget - _used[sample];
    public bool CanAfford(int sample, long queries = 1) => _used[sample] + queries <= Budget;
    /// <summary>Queries the sample took until <see cref="MarkSuccess(int)"/> was first called for it, −1 if never.</summary>
    public long QueriesToSuccess(int sample) => _toSuccess[sample];
    public long Total => _used.Sum();

    /// <summary>Charges <paramref name="perSample"/> queries to each entry of <paramref name="owners"/> (an entry per
    /// model row; repeated entries add up). All or nothing: throws, charging none, when any sample would exceed the budget.</summary>
    public void Charge(ReadOnlySpan<int> owners, long perSample = 1)
    {
        if (perSample < 0) throw new ArgumentOutOfRangeException(nameof(perSample));
        var add = new Dictionary<int, long>();
        foreach (var o in owners)
        {
            if ((uint)o >= (uint)_used.Length) throw new ArgumentOutOfRangeException(nameof(owners), $"sample {o} is not in 0..{_used.Length - 1}");
            add[o] = add.GetValueOrDefault(o) + perSample;
        }
        foreach (var (o, n) in add)
            if (_used[o] + n > Budget)
                throw new QueryBudgetExceededException($"sample {o} would take {_used[o] + n} queries, above the budget of {Budget}");
        foreach (var (o, n) in add) _used[o] += n;
    }

    /// <summary>The model's scores for <paramref name="inputs"/> (no gradients), row r belonging to sample
    /// <paramref name="owners"/>[r]; charged before the model is asked.</summary>
    public Tensor Scores(IClassifier model, Tensor inputs, ReadOnlySpan<int> owners)
    {
        if (inputs.shape[0] != owners.Length)
            throw new ArgumentException($"{inputs.shape[0]} rows but {owners.Length} owners");
        Charge(owners);
        if (owners.Length == 0) return empty([0, model.Spec.NumClasses], device: inputs.device);
        using var _ = no_grad();
        return model.Logits(inputs).detach();
    }

    /// <summary>Records, for samples not yet marked, that the attack now holds an adversarial for them.</summary>
    public void MarkSuccess(int sample) => MarkSuccess(sample, _used[sample]);

    /// <summary>As <see cref="MarkSuccess(int)"/> for an adversarial found when the sample had used
    /// <paramref name="atQueries"/> queries (at most what it has used now).</summary>
    public void MarkSuccess(int sample, long atQueries)
    {
        if (atQueries < 0 || atQueries > _used[sample])
            throw new ArgumentOutOfRangeException(nameof(atQueries), $"sample {sample} has used {_used[sample]} queries, not {atQueries}");
        if (_toSuccess[sample] < 0) _toSuccess[sample] = atQueries;
    }

    /// <summary>The counts as int64 tensors [N] on the CPU: queries used, and queries to success (−1 where none).</summary>
    public (Tensor Used, Tensor ToSuccess) ToTensors() => (tensor(_used), tensor(_toSuccess));
}
