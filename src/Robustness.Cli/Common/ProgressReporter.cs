using Robustness.Evaluation;
using Spectre.Console;

namespace Robustness.Cli.Common;

/// <summary>Bridges the evaluator's progress reports to a Spectre.Console bar (silent when output is redirected).</summary>
public static class ProgressReporter
{
    public static void Run(string description, Action<IProgress<EvaluationProgress>?> work)
    {
        if (!JsonOutput.ProgressVisible)
        {
            work(null);
            return;
        }
        CommandRunner.Out.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(description), maxValue: 1);
                // Progress<T> would post to the thread pool; report synchronously instead.
                work(new SyncProgress(p =>
                {
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = p.Completed;
                    var what = p.Attack is null ? p.Phase : $"{p.Phase}: {p.Attack} ε={p.Epsilon}";
                    task.Description = Markup.Escape($"{description} — {what}");
                }));
            });
    }

    private sealed class SyncProgress(Action<EvaluationProgress> report) : IProgress<EvaluationProgress>
    {
        public void Report(EvaluationProgress value) => report(value);
    }
}
