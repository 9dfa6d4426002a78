using TorchSharp;
using static TorchSharp.torch;

namespace Robustness.Attacks;

/// <summary>The window-size schedule and the pseudo-Gaussian patterns of the Square Attack (Andriushchenko et al. 2020).</summary>
internal static class SquarePatterns
{
    /// <summary>The paper's piecewise-constant schedule, defined on a 10,000-query budget and rescaled.</summary>
    public static double PSchedule(double pInit, int iteration, int queries)
    {
        int it = (int)((long)iteration * 10000 / Math.Max(1, queries));
        double divisor = it switch
        {
            > 10 and <= 50 => 2,
            > 50 and <= 200 => 4,
            > 200 and <= 500 => 8,
            > 500 and <= 1000 => 16,
            > 1000 and <= 2000 => 32,
            > 2000 and <= 4000 => 64,
            > 4000 and <= 6000 => 128,
            > 6000 and <= 8000 => 256,
            > 8000 => 512,
            _ => 1,
        };
        return pInit / divisor;
    }

    /// <summary>The paper's "meta" pseudo-Gaussian pattern: two opposite-signed halves, unit L2 norm.</summary>
    public static Tensor Meta(int rows, int cols, bool transpose)
    {
        var values = new float[rows * cols];
        int top = rows / 2;
        if (top > 0) Add(values, cols, 0, PseudoGaussian(top, cols), 1);
        Add(values, cols, top, PseudoGaussian(rows - top, cols), top > 0 ? -1 : 1);
        var norm = Math.Sqrt(values.Sum(v => (double)v * v));
        for (int i = 0; i < values.Length; i++) values[i] = (float)(values[i] / Math.Max(norm, 1e-12));
        var t = tensor(values).reshape(rows, cols);
        return transpose ? t.t().contiguous() : t;
    }

    private static void Add(float[] target, int cols, int rowOffset, double[,] block, int sign)
    {
        for (int r = 0; r < block.GetLength(0); r++)
            for (int c = 0; c < cols; c++)
                target[(rowOffset + r) * cols + c] += (float)(sign * block[r, c]);
    }

    /// <summary>Concentric rectangles with weights 1/(k+1)², normalised to unit L2 norm.</summary>
    private static double[,] PseudoGaussian(int rows, int cols)
    {
        var delta = new double[rows, cols];
        int r0 = rows / 2, c0 = cols / 2;
        for (int k = 0; k < Math.Max(rows / 2 + 1, cols / 2 + 1); k++, r0--, c0--)
            for (int r = Math.Max(r0, 0); r < Math.Min(r0 + 2 * k + 1, rows); r++)
                for (int c = Math.Max(c0, 0); c < Math.Min(c0 + 2 * k + 1, cols); c++)
                    delta[r, c] += 1.0 / ((k + 1) * (k + 1));
        double norm = 0;
        foreach (var v in delta) norm += v * v;
        norm = Math.Sqrt(norm);
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) delta[r, c] /= Math.Max(norm, 1e-12);
        return delta;
    }
}
