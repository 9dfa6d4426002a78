using Spectre.Console;

namespace Robustness.Cli.Common;

/// <summary>A Spectre.Console progress bar around a unit of work that reports ticks; plain when output is redirected.</summary>
public static class ProgressBar
{
    public static void Run(string description, int total, Action<Action> work)
    {
        if (!JsonOutput.ProgressVisible || total <= 1)
        {
            work(() => { });
            return;
        }
        CommandRunner.Out.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(description), maxValue: total);
                work(() => task.Increment(1));
            });
    }
}
