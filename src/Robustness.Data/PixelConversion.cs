namespace Robustness.Data;

/// <summary>Byte pixels (0..255) to float32 in [0,1], by one table lookup per pixel so every reader rounds identically.</summary>
internal static class PixelConversion
{
    private static readonly float[] ByteToUnit = Enumerable.Range(0, 256).Select(i => i / 255f).ToArray();

    public static float[] ToUnit(ReadOnlySpan<byte> bytes)
    {
        var result = new float[bytes.Length];
        ToUnit(bytes, result);
        return result;
    }

    public static void ToUnit(ReadOnlySpan<byte> bytes, Span<float> destination)
    {
        var table = ByteToUnit;
        for (int i = 0; i < bytes.Length; i++) destination[i] = table[bytes[i]];
    }

    public static float ToUnit(byte b) => ByteToUnit[b];
}
