using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace Robustness.Analyzers;

/// <summary>
/// RB0001: a .NET number that becomes a TorchSharp <c>Scalar</c> implicitly, either by conversion
/// (<c>t.clamp_min(1e-12)</c>) or through a Tensor operator taking a number (<c>t * 0.5</c>). TorchSharp 0.107 leaves
/// such a Scalar to the GC finalizer, which can free it while libtorch still reads it (see
/// Robustness.Core.TorchScalars). The fix is <c>Keep(number)</c>, which holds the Scalar until the call returned.
/// </summary>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
public sealed class ImplicitScalarAnalyzer : DiagnosticAnalyzer
{
    public const string Id = "RB0001";

    private static readonly DiagnosticDescriptor Rule = new(
        Id,
        "Implicit TorchSharp Scalar",
        "'{0}' becomes a TorchSharp Scalar that the GC may free while libtorch reads it; write Keep({0}) (using static Robustness.Core.TorchScalars)",
        "Reliability",
        DiagnosticSeverity.Error,
        isEnabledByDefault: true,
        description: "TorchSharp's implicit number-to-Scalar conversions leave the Scalar to the finalizer: a rare use-after-free under GC pressure.");

    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics => ImmutableArray.Create(Rule);

    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            var scalar = start.Compilation.GetTypeByMetadataName("TorchSharp.Scalar");
            var tensor = start.Compilation.GetTypeByMetadataName("TorchSharp.torch+Tensor");
            if (scalar is null || tensor is null) return;
            start.RegisterOperationAction(c => CheckConversion(c, scalar), OperationKind.Conversion);
            start.RegisterOperationAction(c => CheckOperator(c, tensor), OperationKind.Binary, OperationKind.CompoundAssignment);
        });
    }

    private static void CheckConversion(OperationAnalysisContext c, INamedTypeSymbol scalar)
    {
        var conversion = (IConversionOperation)c.Operation;
        if (!conversion.IsImplicit || conversion.OperatorMethod is null
            || !SymbolEqualityComparer.Default.Equals(conversion.Type, scalar)
            || !IsNumber(conversion.Operand.Type))
            return;
        Report(c, conversion.Operand);
    }

    private static void CheckOperator(OperationAnalysisContext c, INamedTypeSymbol tensor)
    {
        var (method, operands) = c.Operation switch
        {
            IBinaryOperation b => (b.OperatorMethod, new[] { b.LeftOperand, b.RightOperand }),
            ICompoundAssignmentOperation a => (a.OperatorMethod, new[] { a.Target, a.Value }),
            _ => (null, new IOperation[0]),
        };
        if (method is null || !SymbolEqualityComparer.Default.Equals(method.ContainingType, tensor)) return;
        for (int i = 0; i < operands.Length && i < method.Parameters.Length; i++)
            if (IsNumber(method.Parameters[i].Type))
                Report(c, operands[i]);
    }

    private static bool IsNumber(ITypeSymbol? type)
    {
        if (type is INamedTypeSymbol { OriginalDefinition.SpecialType: SpecialType.System_Nullable_T } nullable)
            type = nullable.TypeArguments[0];
        return type?.SpecialType is SpecialType.System_Boolean or SpecialType.System_Byte or SpecialType.System_SByte
            or SpecialType.System_Int16 or SpecialType.System_Int32 or SpecialType.System_Int64
            or SpecialType.System_Single or SpecialType.System_Double;
    }

    private static void Report(OperationAnalysisContext c, IOperation operand)
    {
        var syntax = operand.Syntax;
        c.ReportDiagnostic(Diagnostic.Create(Rule, syntax.GetLocation(), syntax.ToString()));
    }
}
