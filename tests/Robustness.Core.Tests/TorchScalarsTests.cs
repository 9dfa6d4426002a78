using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Robustness.Analyzers;
using TorchSharp;
using static Robustness.Core.TorchScalars;
using static TorchSharp.torch;

namespace Robustness.Core.Tests;

public class TorchScalarsTests
{
    [Fact]
    public void Kept_scalars_survive_collections_on_another_thread()
    {
        // With the implicit conversion (t * 2.5) this test fails in a Release build, within ~10^4 operations (tiered-up
        // code lets the Scalar die during the native call); a kept Scalar must survive.
        using var stop = new CancellationTokenSource();
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested) { GC.Collect(); GC.WaitForPendingFinalizers(); }
        });
        collector.Start();
        try
        {
            using var t = ones(4);
            for (int i = 0; i < 50_000; i++)
            {
                using var product = t * Keep(2.5);
                using var clamped = product.clamp_max(Keep(2.0));
                if (i % 5_000 == 0) Assert.Equal(2.0f, clamped[0].ToSingle());
            }
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }
    }

    [Fact]
    public void A_scalar_is_disposed_only_after_a_full_ring_of_newer_ones()
    {
        var first = Keep(3.0);
        for (int i = 0; i < RingSize - 1; i++) Keep(i);
        using var t = ones(2);
        using (var stillAlive = t * first) Assert.Equal(3.0f, stillAlive[1].ToSingle());
        Keep(0.0);
        Assert.Equal(IntPtr.Zero, NativeHandle(first));
        Assert.NotEqual(IntPtr.Zero, NativeHandle(Keep(1.0)));
    }

    private static IntPtr NativeHandle(Scalar s) =>
        (IntPtr)typeof(Scalar).GetField("handle", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!.GetValue(s)!;

    [Fact]
    public void Nullable_numbers_map_to_null_or_a_kept_scalar()
    {
        Assert.Null(Keep((double?)null));
        using var t = zeros(3);
        using var clamped = t.clamp(Keep((double?)0.25), Keep((double?)null));
        Assert.Equal(0.25f, clamped[2].ToSingle());
    }

    private const string Snippet = """
        using TorchSharp;
        using static TorchSharp.torch;
        using static Robustness.Core.TorchScalars;
        static class S
        {
            static Tensor Bad(Tensor t, double a, int k) => (t * a).clamp_min(1e-12) + k;
            static Tensor Compound(Tensor t) { t *= 2.0; return t; }
            static Tensor Flipped(Tensor t) => 1 - t;
            static Tensor Good(Tensor t, double a) => (t * Keep(a)).clamp_min(Keep(1e-12)) + t * t - Keep(1) * t;
            static Scalar Explicit(double a) => a.ToScalar();
        }
        """;

    [Fact]
    public async Task The_analyzer_flags_every_implicit_scalar_and_nothing_else()
    {
        var refs = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Concat([typeof(torch).Assembly.Location, typeof(TorchScalars).Assembly.Location])
            .Distinct().Select(p => MetadataReference.CreateFromFile(p));
        var compilation = CSharpCompilation.Create("snippet", [CSharpSyntaxTree.ParseText(Snippet)], refs,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        Assert.Empty(compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error));

        var diagnostics = await compilation.WithAnalyzers(ImmutableArray.Create<DiagnosticAnalyzer>(new ImplicitScalarAnalyzer()))
            .GetAnalyzerDiagnosticsAsync();
        var flagged = diagnostics.Where(d => d.Id == ImplicitScalarAnalyzer.Id)
            .OrderBy(d => d.Location.SourceSpan.Start)
            .Select(d => d.Location.SourceTree!.GetText().ToString(d.Location.SourceSpan)).ToArray();
        Assert.Equal(["a", "1e-12", "k", "2.0", "1"], flagged);
    }
}
