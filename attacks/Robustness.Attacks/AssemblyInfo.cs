using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("Robustness.Attacks.Tests")]
