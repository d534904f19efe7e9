"""``wn run``: compute and publish scorecards inside the warehouse."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..errors import WnError
from .console import console, err_console
from .flags import Flags, common_flags, experiment_option, strategy_option, unit_metrics_option

if TYPE_CHECKING:
    from ..runner import RunResult


@click.command("run")
@experiment_option
@click.option("--all", "all_", is_flag=True, help="Every experiment active at --as-of.")
@strategy_option
@click.option("--full-refresh", is_flag=True,
              help="Rebuild the incremental state from the whole history.")
@click.option("--no-state", is_flag=True,
              help="Scan the full history and keep no incremental state (ad-hoc runs).")
@unit_metrics_option
@click.option("--lookback-days", type=click.IntRange(min=0, max=365), default=2, show_default=True,
              help="Incremental runs reprocess this many days before the first new day (late data).")
@click.option("--quiet", "-q", is_flag=True, help="Print one summary line per experiment.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first failing experiment.")
@common_flags
def command(flags: Flags, experiments: tuple[str, ...], all_: bool, strategy: str, full_refresh: bool,
            no_state: bool, unit_metrics: str, lookback_days: int, quiet: bool, fail_fast: bool) -> None:
    """Run experiments: exposures -> unit metrics -> aggregates -> statistics -> scorecard."""
    project = flags.load_project()
    target = flags.load_target()
    if full_refresh and no_state:
        raise click.UsageError("--full-refresh rebuilds the state and --no-state keeps none: give one")
    if unit_metrics == "table" and not no_state:
        raise click.UsageError("--unit-metrics table applies to --no-state runs: an incremental run publishes "
                               "the unit metrics as a view over its state")
    mode = "stateless" if no_state else "full-refresh" if full_refresh else "incremental"
    if all_ and experiments:
        raise click.UsageError("give --experiment NAME or --all, not both")
    if all_:
        # an experiment stays in --all for the lookback days after its end, so that late data
        # and the rest of its last day are included in its final scorecard
        names = sorted(n for n, e in project.experiments.items()
                       if e.is_active(flags.as_of, grace_days=lookback_days))
        if not names:
            console.print(f"no experiment is active on {flags.as_of}; nothing to run")
            return
    elif experiments:
        names = list(experiments)
        for n in names:
            project.experiment(n)  # clear error for an unknown name before connecting
    else:
        raise click.UsageError("say which experiment: --experiment NAME (or --all)")
    # the runner, the warehouse driver and the display are imported once the command is sure
    # to run; the stats layer is imported by the runner when the first statistics are computed
    from rich.markup import escape

    from ..runner import run_experiment, write_run_results
    from ..warehouse import connect
    from .display import print_run

    results: list[RunResult] = []
    failures: list[tuple[str, WnError]] = []
    with connect(target) as adapter:
        for name in names:
            with console.status(f"[bold]{name}[/bold]: starting") as status:
                def progress(msg: str, _name: str = name) -> None:
                    status.update(f"[bold]{_name}[/bold]: {msg}")

                try:
                    # runs of one experiment take turns; stages of killed runs are swept
                    with adapter.run_guard(name, on_wait=progress):
                        result = run_experiment(project, target, adapter, name, as_of=flags.as_of,
                                                strategy=strategy, mode=mode, lookback_days=lookback_days, unit_metrics=unit_metrics,
                                                target_dir=flags.target_dir, progress=progress)
                except WnError as exc:
                    failures.append((name, exc))
                    err_console.print(f"[bold red]✗ {name} failed[/bold red] — previous results are "
                                      f"unchanged\n  {escape(exc.render())}")
                    if fail_fast:
                        break
                    continue
            results.append(result)
            print_run(result, quiet=quiet)
    write_run_results(flags.target_dir, results + [getattr(e, 'run_result', None) or _failed(n, e) for n, e in failures], target)
    if failures:
        raise SystemExit(1)


def _failed(name: str, exc: WnError) -> RunResult:
    import datetime as dt

    from ..runner import RunResult

    return RunResult(run_id="", experiment=name, status="error", strategy="", started_at=dt.datetime.now(),
                     error=exc.render())
