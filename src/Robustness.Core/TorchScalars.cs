using TorchSharp;

namespace Robustness.Core;

/// <summary>
/// Numbers for libtorch calls, as <see cref="Scalar"/>s that stay alive until the call has returned.
/// <para>
/// TorchSharp 0.107's implicit number→Scalar conversions (<c>t * 0.5</c>, <c>t.clamp_min(1e-12)</c>) leave the
/// Scalar they create to the GC finalizer. Once its handle is passed to native code the managed object is
/// unreachable, so a collection on another thread can free the native scalar while libtorch still reads it: a
/// use-after-free that surfaces, rarely and under GC pressure, as libtorch's "Expected false to be true" from
/// <c>Scalar::toDouble</c> (dotnet/TorchSharp PR #1434 is open). It ended a test run here once, and would end a
/// user's four-hour evaluation just the same.
/// </para>
/// <para>
/// <see cref="Keep(double)"/> makes the Scalar explicitly and holds it in a per-thread ring; it is disposed on the
/// same thread only after <see cref="RingSize"/> newer ones were made, long after the synchronous libtorch call that
/// used it returned. Use it inline only (<c>t * Keep(alpha)</c>), never stored. The Robustness analyzer (RB0001)
/// rejects the implicit conversions in this repository's code.
/// </para>
/// </summary>
public static class TorchScalars
{
    /// <summary>Scalars held per thread before the oldest is disposed.</summary>
    public const int RingSize = 256;

    [ThreadStatic] private static Scalar?[]? ring;
    [ThreadStatic] private static int next;

    public static Scalar Keep(double value) => Hold(value.ToScalar());
    public static Scalar Keep(float value) => Hold(value.ToScalar());
    public static Scalar Keep(long value) => Hold(value.ToScalar());
    public static Scalar Keep(int value) => Hold(value.ToScalar());
    public static Scalar Keep(bool value) => Hold(value.ToScalar());
    public static Scalar? Keep(double? value) => value is { } v ? Keep(v) : null;
    public static Scalar? Keep(float? value) => value is { } v ? Keep(v) : null;
    public static Scalar? Keep(long? value) => value is { } v ? Keep(v) : null;
    public static Scalar? Keep(int? value) => value is { } v ? Keep(v) : null;

    private static Scalar Hold(Scalar scalar)
    {
        var r = ring ??= new Scalar?[RingSize];
        r[next]?.Dispose();
        r[next] = scalar;
        next = (next + 1) % RingSize;
        return scalar;
    }
}
