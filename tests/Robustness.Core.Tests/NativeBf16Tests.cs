namespace Robustness.Core.Tests;

public class NativeBf16Tests
{
    private const string Avx2Only = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse sse2 avx avx2 fma bmi2\n\nprocessor\t: 1\nflags\t\t: fpu sse sse2 avx avx2 fma bmi2\n";

    [Fact]
    public void A_cpu_with_only_avx2_emulates_bf16()
    {
        Assert.False(NativeBf16.FromCpuInfo(Avx2Only));
    }

    [Theory]
    [InlineData("avx512_bf16")]
    [InlineData("amx_bf16")]
    public void Avx512_bf16_or_amx_is_native(string flag)
    {
        Assert.True(NativeBf16.FromCpuInfo(Avx2Only.Replace("fma bmi2", "fma " + flag + " bmi2")));
    }

    [Fact]
    public void A_flag_is_matched_whole_not_as_a_prefix()
    {
        Assert.False(NativeBf16.FromCpuInfo(Avx2Only.Replace("bmi2", "avx512_bf16x avx512f")));
    }

    [Fact]
    public void No_flags_lines_means_unknown()
    {
        Assert.Null(NativeBf16.FromCpuInfo(null));
        Assert.Null(NativeBf16.FromCpuInfo("Processor\t: ARMv7\nFeatures\t: half thumb\n"));
    }

    [Fact]
    public void Float32_never_warns_and_bf16_warns_only_where_emulated()
    {
        Assert.Null(NativeBf16.Warning(GradientPrecision.Float32, TorchSharp.torch.CPU, "--precision"));
        var warning = NativeBf16.Warning(GradientPrecision.Bf16, TorchSharp.torch.CPU, "--precision");
        Assert.Equal(NativeBf16.On(TorchSharp.torch.CPU) == false, warning is not null);
        if (warning is not null) Assert.StartsWith("--precision bf16:", warning);
    }
}
