namespace Robustness.Certification;

/// <summary>
/// The special functions randomized smoothing needs, in double precision: the regularized incomplete beta function
/// and its inverse (Clopper–Pearson bounds), the binomial test, and the normal CDF and quantile. Written from the
/// standard algorithms (Lanczos log-gamma; the incomplete beta continued fraction by modified Lentz iteration; Wichura's
/// AS 241 for the normal quantile) and tested against a binomial tail summed independently and 40-digit references.
/// </summary>
public static class Statistics
{
    private static readonly double[] Lanczos =
    [
        0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
        12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
    ];

    /// <summary>ln Γ(x) for x &gt; 0 (Lanczos, g = 7; relative error about 1e-15).</summary>
    public static double LogGamma(double x)
    {
        if (!(x > 0)) throw new ArgumentOutOfRangeException(nameof(x), x, "LogGamma needs x > 0");
        if (x < 0.5) return Math.Log(Math.PI / Math.Sin(Math.PI * x)) - LogGamma(1 - x);
        x -= 1;
        double a = Lanczos[0];
        double t = x + 7.5;
        for (int i = 1; i < 9; i++) a += Lanczos[i] / (x + i);
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(a);
    }

    /// <summary>ln B(a, b).</summary>
    public static double LogBeta(double a, double b) => LogGamma(a) + LogGamma(b) - LogGamma(a + b);

    /// <summary>
    /// The regularized incomplete beta function I_x(a, b) = P(Beta(a, b) ≤ x). For integer a = k, b = n − k + 1 it is
    /// P(Binomial(n, x) ≥ k).
    /// </summary>
    public static double RegularizedIncompleteBeta(double a, double b, double x)
    {
        if (!(a > 0) || !(b > 0)) throw new ArgumentOutOfRangeException(nameof(a), $"need a, b > 0, got {a}, {b}");
        if (double.IsNaN(x)) return double.NaN;
        if (x <= 0) return 0;
        if (x >= 1) return 1;
        double front = Math.Exp(a * Math.Log(x) + b * Math.Log(1 - x) - LogBeta(a, b));
        // The continued fraction converges fast for x < (a + 1)/(a + b + 2); use the symmetry otherwise.
        return x < (a + 1) / (a + b + 2)
            ? front * BetaContinuedFraction(a, b, x) / a
            : 1 - front * BetaContinuedFraction(b, a, 1 - x) / b;
    }

    /// <summary>The continued fraction of I_x(a, b) (Numerical Recipes §6.4), by the modified Lentz method.</summary>
    private static double BetaContinuedFraction(double a, double b, double x)
    {
        const double tiny = 1e-300, eps = 1e-16;
        double qab = a + b, qap = a + 1, qam = a - 1;
        double c = 1, d = 1 - qab * x / qap;
        if (Math.Abs(d) < tiny) d = tiny;
        d = 1 / d;
        double h = d;
        // O(√max(a, b)) terms are needed; a million covers every n a certification uses.
        for (int m = 1; m <= 1_000_000; m++)
        {
            int m2 = 2 * m;
            double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
            d = 1 + aa * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + aa / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            h *= d * c;
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
            d = 1 + aa * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + aa / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            double delta = d * c;
            h *= delta;
            if (Math.Abs(delta - 1) < eps) return h;
        }
        throw new ArithmeticException($"incomplete beta continued fraction did not converge (a = {a}, b = {b}, x = {x})");
    }

    /// <summary>The x with I_x(a, b) = p (the Beta(a, b) quantile), by bisection to full double precision.</summary>
    public static double InverseRegularizedIncompleteBeta(double a, double b, double p)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "need 0 ≤ p ≤ 1");
        if (p == 0) return 0;
        if (p == 1) return 1;
        double lo = 0, hi = 1;
        // I_x is increasing in x; bisect until the interval cannot shrink (≤ 1100 halvings reach the smallest doubles).
        for (int i = 0; i < 1100; i++)
        {
            double mid = 0.5 * (lo + hi);
            if (mid <= lo || mid >= hi) break;
            if (RegularizedIncompleteBeta(a, b, mid) < p) lo = mid; else hi = mid;
        }
        return lo;
    }

    /// <summary>
    /// The one-sided Clopper–Pearson lower confidence bound at level 1 − α on the success probability after
    /// <paramref name="successes"/> of <paramref name="trials"/>: the p with P(Binomial(n, p) ≥ k) = α, i.e. the α
    /// quantile of Beta(k, n − k + 1); 0 when k = 0. (Cohen et al.'s LowerConfBound; statsmodels'
    /// proportion_confint(k, n, alpha=2α, method="beta")[0].) The result is lowered by a relative 10⁻⁹, more than the
    /// evaluation error of I_x in double precision (about 10⁻¹¹ for n = 10⁵), so rounding never puts it above the exact
    /// bound; in radius terms the cost is below 10⁻⁵·σ.
    /// </summary>
    public static double ClopperPearsonLower(long successes, long trials, double alpha)
    {
        CheckCounts(successes, trials);
        if (!(alpha > 0 && alpha < 1)) throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "need 0 < α < 1");
        if (successes == 0) return 0;
        return InverseRegularizedIncompleteBeta(successes, trials - successes + 1, alpha) * (1 - SafetyMargin);
    }

    /// <summary>Relative amount <see cref="ClopperPearsonLower"/> lowers the computed bound by.</summary>
    public const double SafetyMargin = 1e-9;

    /// <summary>P(X ≥ k) for X ~ Binomial(n, p).</summary>
    public static double BinomialUpperTail(long k, long n, double p)
    {
        CheckCounts(Math.Max(k, 0), n);
        if (k <= 0) return 1;
        if (k > n) return 0;
        return RegularizedIncompleteBeta(k, n - k + 1, p);
    }

    /// <summary>
    /// The two-sided binomial test of H₀: p = ½ after <paramref name="successes"/> of <paramref name="trials"/>
    /// (scipy's binom_test(k, n, 0.5)): 2·P(X ≥ max(k, n − k)), capped at 1 (exactly 1 when k = n/2).
    /// </summary>
    public static double BinomialTestHalf(long successes, long trials)
    {
        CheckCounts(successes, trials);
        if (trials == 0 || 2 * successes == trials) return 1;
        long m = Math.Max(successes, trials - successes);
        return Math.Min(1, 2 * RegularizedIncompleteBeta(m, trials - m + 1, 0.5));
    }

    private static void CheckCounts(long k, long n)
    {
        if (n < 0 || k < 0 || k > n) throw new ArgumentOutOfRangeException(nameof(k), $"need 0 ≤ k ≤ n, got k = {k}, n = {n}");
    }

    /// <summary>Φ⁻¹(p), the standard normal quantile (Wichura 1988, AS 241 PPND16; relative error about 1e-16).</summary>
    public static double NormalQuantile(double p)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "need 0 ≤ p ≤ 1");
        if (p == 0) return double.NegativeInfinity;
        if (p == 1) return double.PositiveInfinity;
        double q = p - 0.5;
        if (Math.Abs(q) <= 0.425)
        {
            double r = 0.180625 - q * q;
            return q * (((((((2509.0809287301226727 * r + 33430.575583588128105) * r + 67265.770927008700853) * r
                        + 45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r + 133.14166789178437745) * r
                        + 3.387132872796366608)
                   / (((((((5226.495278852545925 * r + 28729.085735721942674) * r + 39307.89580009271061) * r
                        + 21213.794301586595867) * r + 5394.1960214247511077) * r + 687.1870074920579083) * r + 42.313330701600911252) * r + 1);
        }
        double rr = q < 0 ? p : 1 - p;
        rr = Math.Sqrt(-Math.Log(rr));
        double value;
        if (rr <= 5)
        {
            rr -= 1.6;
            value = (((((((7.7454501427834140764e-4 * rr + 0.0227238449892691845833) * rr + 0.24178072517745061177) * rr
                        + 1.27045825245236838258) * rr + 3.64784832476320460504) * rr + 5.7694972214606914055) * rr + 4.6303378461565452959) * rr
                        + 1.42343711074968357734)
                  / (((((((1.05075007164441684324e-9 * rr + 5.475938084995344946e-4) * rr + 0.0151986665636164571966) * rr
                        + 0.14810397642748007459) * rr + 0.68976733498510000455) * rr + 1.6763848301838038494) * rr + 2.05319162663775882187) * rr + 1);
        }
        else
        {
            rr -= 5;
            value = (((((((2.01033439929228813265e-7 * rr + 2.71155556874348757815e-5) * rr + 0.0012426609473880784386) * rr
                        + 0.026532189526576123093) * rr + 0.29656057182850489123) * rr + 1.7848265399172913358) * rr + 5.4637849111641143699) * rr
                        + 6.6579046435011037772)
                  / (((((((2.04426310338993978564e-15 * rr + 1.4215117583164458887e-7) * rr + 1.8463183175100546818e-5) * rr
                        + 7.868691311456132591e-4) * rr + 0.0148753612908506148525) * rr + 0.13692988092273580531) * rr + 0.59983220655588793769) * rr + 1);
        }
        return q < 0 ? -value : value;
    }

    /// <summary>Φ(x), the standard normal CDF, via the regularized incomplete gamma function: Φ(x) = ½·erfc(−x/√2).</summary>
    public static double NormalCdf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double z = x / Math.Sqrt(2);
        double erfcAbs = UpperIncompleteGammaHalf(z * z); // erfc(|z|) = Q(½, z²)
        return z >= 0 ? 1 - 0.5 * erfcAbs : 0.5 * erfcAbs;
    }

    /// <summary>Q(½, t), the regularized upper incomplete gamma function at a = ½ (series or continued fraction).</summary>
    private static double UpperIncompleteGammaHalf(double t)
    {
        const double a = 0.5;
        if (t <= 0) return 1;
        double logFront = -t + a * Math.Log(t) - LogGamma(a);
        if (t < a + 1)
        {
            double sum = 1 / a, term = 1 / a;
            for (int n = 1; n < 10_000; n++)
            {
                term *= t / (a + n);
                sum += term;
                if (Math.Abs(term) < Math.Abs(sum) * 1e-17) break;
            }
            return 1 - sum * Math.Exp(logFront);
        }
        const double tiny = 1e-300;
        double b = t + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
        for (int i = 1; i < 10_000; i++)
        {
            double an = -i * (i - a);
            b += 2;
            d = an * d + b; if (Math.Abs(d) < tiny) d = tiny;
            c = b + an / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            double delta = d * c;
            h *= delta;
            if (Math.Abs(delta - 1) < 1e-16) break;
        }
        return Math.Exp(logFront) * h;
    }
}
