namespace Robustness.Certification.Tests;

/// <summary>
/// The statistics behind CERTIFY and PREDICT, against 40-digit references computed with mpmath (python3-mpmath: a
/// binomial tail summed exactly and bisected; √2·erfinv(2p − 1); the exact two-sided sum) and against a binomial
/// tail summed here independently of the incomplete beta function.
/// </summary>
public class StatisticsTests
{
    [Theory]
    [InlineData(100000, 100000, 0.001, 0.99993092483300939)]
    [InlineData(99000, 100000, 0.001, 0.98898934037747476)]
    [InlineData(60000, 100000, 0.001, 0.59520104729458455)]
    [InlineData(50600, 100000, 0.001, 0.50110899214207351)]
    [InlineData(51, 100, 0.001, 0.35415019865780394)]
    [InlineData(1, 10, 0.05, 0.0051161968918237011)]
    [InlineData(500, 1000, 0.01, 0.46277806676099752)]
    [InlineData(9990, 10000, 0.001, 0.99758830803256825)]
    [InlineData(97, 100, 0.001, 0.87577817121466218)]
    public void Clopper_pearson_lower_bound_matches_the_reference(long k, long n, double alpha, double expected)
    {
        var lower = Statistics.ClopperPearsonLower(k, n, alpha);
        Assert.True(Math.Abs(lower - expected) <= 2e-9 * expected, $"got {lower:R}, expected {expected:R}");
        Assert.True(lower <= expected, "the bound must not round above the exact value");
    }

    [Theory]
    [InlineData(100000, 100000, 0.001)]
    [InlineData(98765, 100000, 0.001)]
    [InlineData(70000, 100000, 0.001)]
    [InlineData(5100, 10000, 0.01)]
    [InlineData(37, 100, 0.05)]
    [InlineData(3, 7, 0.2)]
    public void At_the_lower_bound_the_binomial_tail_equals_alpha(long k, long n, double alpha)
    {
        // Defining property, checked with a tail summed term by term (no incomplete beta, no gamma function).
        var p = Statistics.ClopperPearsonLower(k, n, alpha);
        Assert.True(SummedUpperTail(k, n, p) <= alpha, "the returned bound must be conservative");
        Assert.Equal(1, SummedUpperTail(k, n, p / (1 - Statistics.SafetyMargin)) / alpha, 7);
        Assert.True(SummedUpperTail(k, n, p * (1 - 1e-6)) < alpha);
        Assert.True(SummedUpperTail(k, n, Math.Min(1, p * (1 + 1e-6))) > alpha);
    }

    [Fact]
    public void Edge_cases_of_the_lower_bound()
    {
        Assert.Equal(0, Statistics.ClopperPearsonLower(0, 100, 0.001));
        // k = n: P(X ≥ n) = pⁿ = α ⇒ p = α^(1/n).
        foreach (var n in new long[] { 1, 10, 1000, 100000 })
            Assert.Equal(Math.Pow(0.001, 1.0 / n), Statistics.ClopperPearsonLower(n, n, 0.001), 8);
        Assert.Throws<ArgumentOutOfRangeException>(() => Statistics.ClopperPearsonLower(5, 4, 0.01));
        Assert.Throws<ArgumentOutOfRangeException>(() => Statistics.ClopperPearsonLower(1, 4, 0));
        // More samples at the same rate give a tighter (higher) bound.
        Assert.True(Statistics.ClopperPearsonLower(9000, 10000, 0.001) < Statistics.ClopperPearsonLower(90000, 100000, 0.001));
    }

    [Theory]
    [InlineData(0.5, 0.0)]
    [InlineData(0.6, 0.2533471031357998)]
    [InlineData(0.9, 1.2815515655446005)]
    [InlineData(0.99, 2.3263478740408411)]
    [InlineData(0.999, 3.0902323061678135)]
    [InlineData(0.9999, 3.7190164854556806)]
    [InlineData(0.99993, 3.8081682644490196)]
    [InlineData(1e-10, -6.3613409024040562)]
    [InlineData(0.025, -1.9599639845400542)]
    public void Normal_quantile_matches_the_reference(double p, double expected)
    {
        // 1e-13: the decimal p itself is rounded to double (near p = 1 that moves the quantile by ~1e-14).
        Assert.True(Math.Abs(Statistics.NormalQuantile(p) - expected) <= 1e-13 * Math.Max(1, Math.Abs(expected)),
            $"Φ⁻¹({p}) = {Statistics.NormalQuantile(p):R}, expected {expected:R}");
        Assert.Equal(p, Statistics.NormalCdf(Statistics.NormalQuantile(p)), 1e-14 * Math.Max(1, 1 / p) * p + 1e-16);
    }

    [Theory]
    [InlineData(-3.0)]
    [InlineData(-0.7)]
    [InlineData(0.0)]
    [InlineData(0.3)]
    [InlineData(1.96)]
    [InlineData(4.5)]
    public void Normal_cdf_matches_numerical_integration_of_the_density(double x)
    {
        // Simpson's rule on [−12, x] with 200,000 intervals.
        const int steps = 200_000;
        double a = -12, h = (x - a) / steps, sum = 0;
        for (int i = 0; i <= steps; i++)
        {
            double t = a + i * h, f = Math.Exp(-t * t / 2) / Math.Sqrt(2 * Math.PI);
            sum += f * (i == 0 || i == steps ? 1 : i % 2 == 1 ? 4 : 2);
        }
        Assert.Equal(sum * h / 3, Statistics.NormalCdf(x), 12);
    }

    [Theory]
    [InlineData(60, 100, 0.056887933640980792)]
    [InlineData(40, 100, 0.056887933640980792)]
    [InlineData(50, 100, 1.0)]
    [InlineData(55, 100, 0.36820161732669624)]
    [InlineData(530, 1000, 0.062023195098363181)]
    [InlineData(9, 10, 0.021484375)]
    [InlineData(10, 10, 0.001953125)]
    [InlineData(5200, 10000, 6.5935155986724421e-5)]
    public void Two_sided_binomial_test_matches_the_reference(long k, long n, double expected)
    {
        Assert.True(Math.Abs(Statistics.BinomialTestHalf(k, n) - expected) <= 1e-9 * expected, $"got {Statistics.BinomialTestHalf(k, n):R}");
        if (n <= 1000) Assert.Equal(expected, Math.Min(1, 2 * SummedUpperTail(Math.Max(k, n - k), n, 0.5)), 12);
    }

    [Fact]
    public void Log_gamma_matches_factorials_and_the_half_integer_value()
    {
        double factorial = 1;
        for (int n = 1; n < 25; n++)
        {
            Assert.Equal(Math.Log(factorial), Statistics.LogGamma(n), 11);
            factorial *= n;
        }
        Assert.Equal(0.5 * Math.Log(Math.PI), Statistics.LogGamma(0.5), 13);
    }

    /// <summary>P(X ≥ k), X ~ Bin(n, p), from the pmf recursion pmf(i+1) = pmf(i)·(n−i)/(i+1)·p/(1−p) in log space.</summary>
    private static double SummedUpperTail(long k, long n, double p)
    {
        if (p >= 1) return 1;
        if (p <= 0) return k <= 0 ? 1 : 0;
        double logRatio = Math.Log(p) - Math.Log(1 - p);
        double logPmf = n * Math.Log(1 - p);  // pmf(0)
        var logs = new double[n + 1];
        logs[0] = logPmf;
        for (long i = 0; i < n; i++)
        {
            logPmf += Math.Log((double)(n - i) / (i + 1)) + logRatio;
            logs[i + 1] = logPmf;
        }
        double max = double.NegativeInfinity;
        for (long i = k; i <= n; i++) max = Math.Max(max, logs[i]);
        double sum = 0;
        for (long i = k; i <= n; i++) sum += Math.Exp(logs[i] - max);
        return Math.Exp(max) * sum;
    }
}
