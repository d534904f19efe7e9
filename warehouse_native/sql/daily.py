"""Results as of each day of an experiment (``wn.scorecard_daily``), from the incremental state.

For every day D from the experiment's start to the run's last day, the sufficient statistics
a run with ``--as-of D`` would compute: the units first exposed by D (a unit seen in a second
variant only after D still counts in its first), each with its values over the per-day state
rows up to D, rates divided by the days up to D, winsorization caps of the units of D.

The run's last day is the run's own result.  Days before it that an earlier run of the series
recorded are kept as recorded; the others (every day before the last on a first run or a full
refresh, days a skipped daily run left out) come from one statement over the state's per-day
rows (running totals per unit, one row per unit and day it is exposed, grouped by day and
variant): nothing is re-scanned per day.  It reads the state as this run leaves it, so it runs
while publishing, after the state is written.  Its cost grows with units x days (see
benchmarks/RESULTS.md): a daily run that extends the series adds no statement at all.
"""

from __future__ import annotations

import datetime as dt

from ..plan import AnalysisPlan, UnitColumn
from .dialects import write
from .expressions import date, literal
from .render import _ENV, ROLLUP, _aggregates_select, _finish, _parse, inline_cte

_ROLLUP = ROLLUP

# the day column of the daily statement (and of wn.scorecard_daily: ``day``)
AS_OF = "as_of"


def last_day(plan: AnalysisPlan) -> dt.date:
    return (plan.end - dt.timedelta(days=1)).date()


def series_days(plan: AnalysisPlan, first: dt.date | None = None) -> list[dt.date]:
    """The days from ``first`` (default: the experiment's start) up to, not including, the
    analysis's last day: the days a run computes from the state."""
    first = first or plan.start.date()
    return [first + dt.timedelta(days=k) for k in range((last_day(plan) - first).days)]


def compile_daily(plan: AnalysisPlan, tables: dict[str, str], dialect: str, *, first: dt.date | None = None,
                  seal: dt.date | None = None) -> str | None:
    """One query: per day from ``first`` (default: the start) to the day before the analysis's
    last day, and per variant, every metric's sufficient statistics as of that day; None when
    there is no such day.  ``tables``: the incremental state's tables by kind, as the run
    leaves them.  ``seal``: read the sealed per-unit bases for the days before it instead of
    those days' rows (used only when ``first >= seal - 1``)."""
    days = series_days(plan, first)
    if not days:
        return None
    if seal is not None and days[0] < seal - dt.timedelta(days=1):
        seal = None   # a day before the base's last day needs the per-day rows
    sources, refs = [], {}
    for i, scan in enumerate(plan.scans):
        post = [c for c in scan.columns if c.window == "post" and c.agg != "count_distinct"]
        values = [c for c in scan.columns if c.window == "post" and c.agg == "count_distinct"]
        pre = [c for c in scan.columns if c.window == "pre"]
        refs.update({c.name: f"o{i}.{c.name}" for c in post + values})
        refs.update({c.name: f"r{i}.{c.name}" for c in pre})
        sources.append({"post": post, "distinct": values, "pre": pre, "columns": scan.columns,
                        "post_table": tables.get(f"days:{scan.source}"), "post_base": tables.get(f"base:{scan.source}"),
                        "distinct_base": tables.get(f"vbase:{scan.source}"),
                        "distinct_table": tables.get(f"values:{scan.source}"),
                        "pre_table": tables.get(f"pre:{scan.source}")})

    def finish(c: UnitColumn) -> str:
        return _finish(c, refs[c.name], plan, end=("e.end_date", "e.end_at"), ref_of=refs.__getitem__)

    units = _ENV.get_template("incremental/daily.sql.j2").render(
        plan=plan, days=days, exposure_days=tables["exposure_days"], sources=sources,
        seal=seal, base_day=seal - dt.timedelta(days=1) if seal else None, exposure_base=tables.get("exposure_base"),
        date=date, literal=literal, rollup=lambda c: _ROLLUP[c.agg], finish=finish)
    aggregates = _parse(_aggregates_select(plan, {"unit_metrics": "daily_units"}, by=AS_OF), "daily")
    return write(inline_cte(aggregates, "daily_units", _parse(units, "daily")), dialect, "daily")
