"""Incremental runs: read the stored state, decide what this run reprocesses.

The state's bookkeeping row lives in ``<schema>.incremental_state`` (one per experiment):
the state key (exposure definition, start, unit, dimensions, CUPED window, variants), the
last processed day, the day the per-unit bases are sealed before, and a hash per unit
column.  A run reprocesses from ``last processed day + 1 - lookback`` and backfills only
columns whose hash changed; it rebuilds everything when the key changed, ``--full-refresh``
is given, the state is missing, or ``--as-of`` went back before the last processed day.
It re-seals the bases (see :mod:`warehouse_native.sql.incremental`) at the next run's first
reprocessed day when they are missing or unusable (a longer lookback than when they were
sealed), after a backfill, or when ``RESEAL_DAYS`` kept days have piled up after the seal.
A state written by an earlier wn kept the per-day rows only before
``kept_before``; a run on such a state starts there at the latest.  A compact state (built by
a full refresh without ``daily_history``) keeps per-day rows only from ``days_from`` (its first
seal) on: a run that would read older ones rebuilds it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from .decision import Rule
from .plan import AnalysisPlan
from .sql.incremental import RESEAL_DAYS, IncrementalSpec, column_hashes, state_key, state_tables
from .warehouse import Adapter
from .warehouse.publish import STATE_TABLE


def last_day(plan: AnalysisPlan) -> dt.date:
    return (plan.end - dt.timedelta(days=1)).date()


def stored_state(adapter: Adapter, schema: str, experiment: str) -> dict[str, Any] | None:
    """The experiment's state row: the latest one (engines that publish by pointer append a
    row per run instead of replacing it)."""
    if not adapter.table_columns(schema, STATE_TABLE):
        return None
    rows = adapter.fetch(f"select * from {schema}.{STATE_TABLE} where experiment = {adapter.placeholder} "
                         "order by updated_at desc, run_id desc", [experiment])
    return rows[0] if rows else None


def decide(adapter: Adapter, schema: str, plan: AnalysisPlan, *, full_refresh: bool,
           lookback_days: int, tag: str | None = None) -> tuple[IncrementalSpec, str]:
    """The spec of this run and a one-line reason (for the run log).  ``tag``: None when the
    engine rewrites the state in place, else the suffix of the tables this run writes."""
    tables = state_tables(schema, plan.experiment, [s.source for s in plan.scans])
    row = stored_state(adapter, schema, plan.experiment)
    # a rebuild keeps the daily series the last run recorded (when the plan's statistics are the same)
    previous = row["run_id"] if row and row.get("series_key") == series_key(plan) else None
    current = dict(tables)
    if row and row.get("tables"):
        current.update({k: v for k, v in json.loads(row["tables"]).items() if k in tables})
    # one catalog query for every state table (names compared as the engine folds them)
    existing = {name.lower(): kind for name, kind in adapter.relations(schema).items()}
    present = {k: existing.get(v.split(".", 1)[1].lower()) == "table" for k, v in current.items()}
    start = plan.start.date()
    # the next daily run reprocesses from here: seal the bases there when this run re-seals
    seal_at = max(start, last_day(plan) + dt.timedelta(days=1) - dt.timedelta(days=lookback_days))

    # a compact build keeps per-day rows from the seal on only; the daily series reads every day's
    compact = seal_at > start and not plan.daily_history

    def rebuild(reason: str) -> tuple[IncrementalSpec, str]:
        return IncrementalSpec(since=start, exists=False, tables=tables, present=present, current=current,
                               tag=tag, seal_at=seal_at, previous_run=previous,
                               days_from=seal_at if compact else None), reason

    if full_refresh:
        return rebuild("full refresh requested")
    if not row:
        return rebuild("no incremental state yet: building it")
    if row["state_key"] != state_key(plan):
        return rebuild("the exposure definition, start, dimensions, variants or CUPED window changed")
    if not present.get("exposure_days"):
        return rebuild("state tables are missing")
    through = dt.date.fromisoformat(row["processed_through"])
    if last_day(plan) < through:
        return rebuild(f"the analysis now ends before the last processed day {through} "
                       "(an earlier --as-of or a shorter experiment)")
    since = max(start, through + dt.timedelta(days=1) - dt.timedelta(days=lookback_days))
    days_from = dt.date.fromisoformat(row["days_from"]) if row.get("days_from") else None
    if days_from and plan.daily_history:
        return rebuild(f"the daily series (daily_history) needs per-day rows from the start; the state keeps "
                       f"them from {days_from}")
    if days_from and since < days_from:
        return rebuild(f"a lookback of {lookback_days} days reprocesses from {since}; the state keeps per-day "
                       f"rows from {days_from} on")
    # an older state kept the per-day rows before ``kept_before`` only: start there at the latest
    kept = dt.date.fromisoformat(row["kept_before"]) if row.get("kept_before") else None
    if kept and kept < since:
        since = max(start, kept)
    stored: dict[str, dict[str, str]] = json.loads(row["columns"] or "{}")
    fill = {}
    for source, hashes in column_hashes(plan).items():
        old = stored.get(source, {})
        changed = tuple(name for name, h in hashes.items() if old.get(name) != h)
        if changed:
            fill[source] = changed
    sealed = dt.date.fromisoformat(row["sealed_before"]) if row.get("sealed_before") else None
    post = {s.source: [c.name for c in s.columns if c.window == "post" and c.agg != "count_distinct"]
            for s in plan.scans}    # the columns a source's base holds
    distinct = {s.source: [c.name for c in s.columns if c.window == "post" and c.agg == "count_distinct"]
                for s in plan.scans}   # the columns its sealed distinct counts hold
    # (a source's distinct counts are recounted from its value rows when all its columns are backfilled)
    bases = (["exposure_base"] + [f"base:{src}" for src, cols in post.items() if cols]
             + [f"vbase:{src}" for src, cols in distinct.items() if cols and not set(cols) <= set(fill.get(src, ()))])
    if days_from and sealed and sealed > since:
        return rebuild(f"a lookback of {lookback_days} days reprocesses from {since}, days the sealed per-unit "
                       f"bases hold; the state keeps per-day rows from {days_from} on")
    if sealed and (sealed > since or not all(present.get(b) for b in bases)):
        sealed = None   # the base holds days this run reprocesses (a longer lookback), or is gone
    if days_from and not sealed:
        return rebuild("state tables are missing")
    if days_from and any(set(post[src]) & set(cols) for src, cols in fill.items()):
        return rebuild("a changed or new column needs every day's rows; the state keeps per-day rows only "
                       f"from {days_from}")
    refilled = any(set(post[src] + distinct[src]) & set(cols) for src, cols in fill.items())
    reseal = sealed is None or refilled or (since - sealed).days >= RESEAL_DAYS
    # since <= seal_at always: a re-seal never covers a day this run does not reprocess
    spec = IncrementalSpec(since=since, exists=True, tables=tables, present=present, current=current, tag=tag,
                           fill=fill, sealed_before=sealed, seal_at=seal_at if reseal else None,
                           previous_run=previous, days_from=days_from,
                           series_from=None if fill else _series_recorded(adapter, schema, plan, row, through))
    note = f"reprocessing from {since} (last processed {through}, lookback {lookback_days} days)"
    if fill:
        note += "; backfilling " + ", ".join(f"{s}: {', '.join(c)}" for s, c in fill.items())
    if reseal:
        note += f"; sealing the per-unit bases before {seal_at}"
    return spec, note


def series_key(plan: AnalysisPlan) -> str:
    """Everything the daily series' statistics depend on, whatever the analysis's last day."""
    return dataclasses.replace(plan, end=plan.start, as_of=plan.start.date(), planned_end=None,
                               decision_rule=Rule(), freshness=()).fingerprint()


def _series_recorded(adapter: Adapter, schema: str, plan: AnalysisPlan, row: dict[str, Any],
                     through: dt.date) -> dt.date | None:
    """The first day of wn.scorecard_daily this run must add, when the previous run's series
    holds every day from the start through ``through`` (its last day) and was computed with the
    same metrics and settings: the days before it are kept as recorded.  None: compute every
    day again."""
    start = plan.start.date()
    if row.get("series_key") != series_key(plan) or through < start \
            or not adapter.table_columns(schema, "scorecard_daily"):
        return None
    kept = adapter.fetch(f"select count(distinct day) as days, min(day) as first from {schema}.scorecard_daily "
                         f"where run_id = {adapter.placeholder} and day <= {adapter.placeholder}",
                         [row["run_id"], through])
    first = kept[0]["first"] if kept else None
    if first is not None and not isinstance(first, dt.date):
        first = dt.date.fromisoformat(str(first)[:10])
    if not kept or kept[0]["days"] != (through - start).days + 1 or first != start:
        return None
    return min(through + dt.timedelta(days=1), last_day(plan))


def state_row(plan: AnalysisPlan, run_id: str, spec: IncrementalSpec, tables: dict[str, str]) -> list[Any]:
    """The bookkeeping row a run publishes; ``tables``: the state's tables by kind after it."""
    sealed = spec.sealed_after
    return [plan.experiment, state_key(plan), last_day(plan).isoformat(),
            json.dumps(column_hashes(plan), sort_keys=True), run_id, dt.datetime.now(),
            sealed.isoformat() if sealed else None, None,   # kept_before: every processed day is kept
            json.dumps(tables, sort_keys=True), series_key(plan),
            spec.days_from.isoformat() if spec.days_from else None]
