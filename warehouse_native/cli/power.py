"""``wn power``: units and days an experiment needs to detect a given lift on a metric."""

from __future__ import annotations

import click

from ..errors import ProjectError
from .console import console
from .flags import Flags, common_flags


def _floats(text: str, name: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"'{text}' is not a comma-separated list of numbers", param_hint=name) from None
    if not values:
        raise click.BadParameter("give at least one number", param_hint=name)
    return values


@click.command("power")
@click.option("--metric", "-m", required=True, help="Catalog metric to plan for.")
@click.option("--mde", default="0.01,0.02,0.05", show_default=True,
              help="Relative minimum detectable effects, comma-separated (0.02 = 2%).")
@click.option("--experiment", "-e", default=None,
              help="Take unit, weights and confidence from this experiment's YAML.")
@click.option("--weights", default=None, help="Traffic split, control first, e.g. 0.5,0.5 or 0.8,0.2.")
@click.option("--unit", default=None, help="Unit type (default: the experiment's, else user_id).")
@click.option("--days", "period", type=click.IntRange(min=1, max=365), default=14, show_default=True,
              help="Recent days of data to measure the metric on (also the planned duration basis).")
@click.option("--confidence", type=click.FloatRange(0.5, 1, min_open=True, max_open=True), default=None,
              help="Confidence level (default: the experiment's, else 0.95).")
@click.option("--power", "power_", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.8,
              show_default=True, help="Probability of detecting the effect.")
@common_flags
def command(flags: Flags, metric: str, mde: str, experiment: str | None, weights: str | None,
            unit: str | None, period: int, confidence: float | None, power_: float) -> None:
    """Estimate sample size and duration (traffic vs duration) from the metric's recent data."""
    from rich.table import Table

    from ..power_analysis import measure_population, power_report
    from ..stats import StatsInputError
    from ..warehouse import connect

    project = flags.load_project()
    target = flags.load_target()
    split: tuple[float, ...] = (0.5, 0.5)
    if experiment:
        exp = project.experiment(experiment)
        unit = unit or exp.unit
        split = tuple(v.weight for v in [exp.control] + exp.treatments)
        confidence = confidence or exp.analysis.confidence
    if weights:
        split = tuple(_floats(weights, "--weights"))
        if len(split) < 2 or any(w <= 0 for w in split):
            raise click.BadParameter("give at least two positive weights, control first", param_hint="--weights")
    if metric not in project.metrics:
        raise ProjectError(f"no metric named '{metric}' in the catalog (known: {', '.join(sorted(project.metrics))})")
    unit = unit or "user_id"
    mdes = _floats(mde, "--mde")
    with connect(target) as adapter, console.status(f"measuring {metric} over the last {period} days"):
        moments, days = measure_population(project, adapter, metric, unit=unit, as_of=flags.as_of,
                                           days=period, schema=target.schema)
    try:
        report = power_report(moments, metric=metric, unit=unit, days=days, mdes=mdes, weights=split,
                              confidence=confidence or 0.95, power=power_)
    except StatsInputError as exc:
        raise click.UsageError(str(exc)) from None
    console.print(f"[bold]{metric}[/bold] over {report.period_days} days to {flags.as_of}: "
                  f"{report.units:,} active {unit}s ({report.daily_new_units:,.0f} new per day), "
                  f"mean {report.mean:.4g}, sd {report.std:.4g}; split {', '.join(f'{w:g}' for w in split)}, "
                  f"confidence {report.confidence:g}, power {report.power:g} (without CUPED: conservative)")
    table = Table(header_style="bold")
    for col in ("relative MDE", "units per variant", "total units", "days at current traffic"):
        table.add_column(col, justify="right")
    for row in report.rows:
        table.add_row(f"{row.mde:.2%}", " / ".join(f"{u:,}" for u in row.units_per_variant),
                      f"{row.total_units:,}", "—" if row.days is None else f"{row.days:,}")
    console.print(table)
