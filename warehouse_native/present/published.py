"""Read what wn published about one experiment, through any adapter (DESIGN §4 tables).

Nothing is recomputed: the scorecard and health checks of the experiment's latest successful
run, its row in ``runs``, new units per day from the ``exposures`` view, and the daily
time series (``scorecard_daily_latest``) when the warehouse has one.  Every query is plain SQL
that DuckDB, PostgreSQL and Spark all accept, with the adapter's placeholder.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import WarehouseError
from ..warehouse import Adapter

Row = dict[str, Any]


@dataclass
class Published:
    experiment: str
    run: Row                                  # the latest successful run (wn.runs)
    scorecard: list[Row]                      # wn.scorecard_latest rows of the experiment
    health: list[Row]                         # wn.health_checks rows of that run
    exposures_per_day: list[Row] | None       # day, variant, units; None: no exposures view
    daily: list[Row] | None                   # scorecard_daily_latest rows; None: no time series
    decision: Mapping[str, Any] | None = None  # the run's wn.decisions row (None: written by an older wn)
    notes: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])


def latest_runs(adapter: Adapter, schema: str) -> dict[str, Row]:
    """Each experiment's latest successful run ({} when wn has not written its tables)."""
    if not adapter.table_columns(schema, "runs"):
        return {}
    rows = adapter.fetch(f"select * from {schema}.runs where status = 'success'")
    latest: dict[str, Row] = {}
    for r in rows:
        key = (_sortable(r.get("finished_at")), str(r["run_id"]))
        have = latest.get(r["experiment"])
        if have is None or key > (_sortable(have.get("finished_at")), str(have["run_id"])):
            latest[r["experiment"]] = r
    return latest


def read_published(adapter: Adapter, schema: str, experiment: str, *, where: str) -> Published:
    """The published rows of ``experiment``'s latest successful run; ``where`` names the target
    in error messages."""
    p = adapter.placeholder
    if not adapter.table_columns(schema, "scorecard"):
        raise WarehouseError(f"no {schema}.scorecard table in {where}",
                             hint=f"run `wn run --experiment {experiment}` first")
    scorecard = adapter.fetch(f"select * from {schema}.scorecard_latest where experiment = {p}", [experiment])
    if not scorecard:
        raise WarehouseError(f"no successful run of '{experiment}' in {where}",
                             hint=f"run `wn run --experiment {experiment}`")
    run_id = scorecard[0]["run_id"]
    runs = adapter.fetch(f"select * from {schema}.runs where run_id = {p}", [run_id])
    run = runs[0] if runs else {"run_id": run_id}
    health = adapter.fetch(f"select * from {schema}.health_checks where run_id = {p} and experiment = {p}",
                           [run_id, experiment])
    notes: list[str] = []
    exposures = None
    if adapter.table_columns(schema, "exposures"):
        exposures = adapter.fetch(
            f"select cast(first_exposure_at as date) as day, variant, count(*) as units "
            f"from {schema}.exposures where experiment = {p} "
            f"group by cast(first_exposure_at as date), variant", [experiment])
    else:
        notes.append(f"no {schema}.exposures view in {where}: exposures per day are not shown")
    daily = None
    if adapter.table_columns(schema, "scorecard_daily_latest"):
        daily = adapter.fetch(f"select * from {schema}.scorecard_daily_latest where experiment = {p}",
                              [experiment])
    return Published(experiment, run, scorecard, health, exposures, daily, read_decision(adapter, schema, run_id),
                     notes)


def read_decision(adapter: Adapter, schema: str, run_id: str) -> Mapping[str, Any] | None:
    """The decision the run recorded in ``wn.decisions``; None for runs of a wn that wrote
    none (the report then shows the guardrail and health summary in its place)."""
    if not adapter.table_columns(schema, "decisions"):
        return None
    rows = adapter.fetch(f"select * from {schema}.decisions where run_id = {adapter.placeholder}", [run_id])
    return rows[0] if rows else None


def _sortable(value: Any) -> str:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return "" if value is None else str(value)
