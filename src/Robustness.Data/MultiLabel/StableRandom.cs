namespace Robustness.Data;

/// <summary>
/// A pseudo-random generator whose sequence is fixed by its definition, not by a runtime version: xoshiro256**
/// (Blackman &amp; Vigna 2018) seeded through SplitMix64, with unbiased integers by rejection. Generated datasets use it
/// so the same seed gives the same bytes on every machine and .NET version (System.Random's algorithms are not
/// specified across versions).
/// </summary>
public sealed class StableRandom
{
    private ulong _s0, _s1, _s2, _s3;

    public StableRandom(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x);
        _s1 = SplitMix(ref x);
        _s2 = SplitMix(ref x);
        _s3 = SplitMix(ref x);
    }

    private static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong Rotl(ulong x, int k) => (x << k) | (x >> (64 - k));

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = Rotl(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = Rotl(_s3, 45);
        return result;
    }

    /// <summary>Uniform on 0..<paramref name="bound"/>−1 (rejection sampling: no modulo bias).</summary>
    public int NextBelow(int bound)
    {
        if (bound <= 0) throw new ArgumentOutOfRangeException(nameof(bound), bound, "must be > 0");
        ulong b = (ulong)bound;
        ulong limit = ulong.MaxValue - ulong.MaxValue % b;
        ulong r;
        do r = NextUInt64(); while (r >= limit);
        return (int)(r % b);
    }

    /// <summary>Fisher–Yates shuffle in place.</summary>
    public void Shuffle<T>(T[] items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextBelow(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
