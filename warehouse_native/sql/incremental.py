"""Render an incremental run: per-unit state in the warehouse, reprocess recent days only.

State kept per experiment (names from :func:`state_tables`):

* ``exposure_days``: per unit and day of the assignment log (rows, first time, variants, dims);
* ``exposure_base``: per unit, the roll-up of ``exposure_days`` before the *sealed* day;
* ``days__<source>``: per unit and day, post-window partial aggregates of every column;
* ``base__<source>``: per unit, the roll-up of ``days__<source>`` before the sealed day;
* ``values__<source>``: distinct (unit, column, value) for ``count_distinct`` columns, with the
  day each was first seen;
* ``vbase__<source>``: per unit, the count of each such column's values first seen before the
  sealed day;
* ``pre__<source>``: per unit, the pre-exposure covariate columns (fixed once exposed).

A run reprocesses days from ``since`` (the day after the last processed day minus the
lookback) and reads older days from the state.  A unit's value is its sealed base plus the
roll-up of the per-day rows after the seal (older kept days + reprocessed days), so the cost
of a daily run follows the new days and the units, not the length of the history.  The
base is re-sealed (moved up to the next run's ``since``) when it is missing, after a
backfill, and when ``RESEAL_DAYS`` or more kept days sit between it and ``since``.
Columns whose definition hash changed (or that are new) are backfilled over the whole
history, alone; the state is rebuilt from scratch when the experiment's exposure definition
changed.

A rebuild (first run, ``--full-refresh``) is *compact* unless the experiment keeps a daily
series (``daily_history``): the sealed bases are computed straight from the exposure log and
the sources for the days before the seal (with a source's pre-exposure covariates in the same
pass when it has few columns, :data:`COMBINED_PASS_COLUMNS`), and per-day rows are written only
for the days from the seal on, which the next run reprocesses.  Writing per-day rows for every
day and rolling them up again was most of a full refresh.  A later run that needs older days
(a longer lookback, a changed or new post-window column, a daily series) rebuilds instead
(:func:`warehouse_native.incremental.decide`); distinct-value rows are always kept for every day.

The run computes its aggregates from the unit metrics inline (one statement, no per-unit
write) and publishes ``unit_metrics__<experiment>`` as a *view* over the state
(:attr:`CompiledPlan.unit_view`): the state already holds every unit's numbers, and writing
them again as a wide table was the largest per-unit cost of a daily run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field, replace

from ..plan import AnalysisPlan, SourceScan, UnitColumn
from .expressions import date, literal, qualify, ts
from sqlglot import exp

from ..warehouse.publish import Part, StateWrite
from .daily import compile_daily
from .dialects import ARG_MIN_DIALECTS, write
from .render import (_ENV, ROLLUP, CompiledPlan, Statement, _aggregate, _aggregates_select, _condition, _create,
                     _finish, _parse, _post_days, inline_cte, merge_partials, prefilter, quantile_statements,
                     temp_name)

_ROLLUP = ROLLUP

# Re-seal the per-unit bases once this many kept days sit between the seal and ``since``: a
# re-seal rewrites every base (one pass over the units), not re-sealing rolls those days up
# again on every run.  Daily runs re-seal once a week.
RESEAL_DAYS = 7

# A compact build computes a source's pre-exposure covariates in the pass of its sealed base
# when the two hold at most this many columns together.  One pass saves a join of the source
# to the exposures but evaluates every column's FILTER on the rows of both windows; measured
# at 1M units (benchmarks/notes.md, eighth session): 25% faster at 2 columns, 10-60% slower at
# 14 and more.
COMBINED_PASS_COLUMNS = 4


def relation_definition(plan: AnalysisPlan, relation: str) -> list[str]:
    """A relation's text plus the SQL of every model it reads, directly or through other models,
    so that editing a model changes the hashes of what depends on it."""
    found: list[str] = [relation]
    models = dict(plan.models)
    pending = [relation]
    seen: set[str] = set()
    while pending:
        text = pending.pop()
        for name, sql in models.items():
            if name not in seen and re.search(rf"\.{re.escape(name)}\b", text):
                seen.add(name)
                found.append(f"{name}: {sql}")
                pending.append(sql)
    return found


def state_key(plan: AnalysisPlan) -> str:
    """Everything that, when changed, invalidates the whole state."""
    blob = json.dumps({"exposure": plan.exposure.__dict__, "start": str(plan.start), "unit": plan.unit_type,
                       "dims": plan.dimensions, "cuped_days": plan.cuped_days, "variants": plan.variants,
                       **({"unit_keys": plan.unit_keys} if plan.unit_keys else {}),
                       "exposure_sql": relation_definition(plan, plan.exposure.relation)},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# how a post-window count_distinct column is stored; a state stored otherwise (one row per unit,
# day and value, by an earlier wn) has other hashes, so its columns are backfilled once
VALUES_FORMAT = "first-seen rows + sealed counts"


def column_hash(plan: AnalysisPlan, scan: SourceScan, col: UnitColumn) -> str:
    parts = [relation_definition(plan, scan.relation), scan.unit_column, scan.timestamp, col.signature(), col.finish]
    if col.window == "post" and col.agg == "count_distinct":
        parts.append(VALUES_FORMAT)
    blob = json.dumps(parts, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def column_hashes(plan: AnalysisPlan) -> dict[str, dict[str, str]]:
    return {s.source: {c.name: column_hash(plan, s, c) for c in s.columns} for s in plan.scans}


def _short(name: str) -> str:
    if len(name) <= 60:
        return name
    return name[:45] + "_" + hashlib.sha256(name.encode()).hexdigest()[:10]


def state_tables(schema: str, experiment: str, sources: list[str]) -> dict[str, str]:
    out = {kind: f"{schema}.{_short(f'state__{experiment}__{kind}')}" for kind in ("exposure_days", "exposure_base")}
    for src in sources:
        for kind in ("days", "base", "values", "vbase", "pre"):
            out[f"{kind}:{src}"] = f"{schema}.{_short(f'state__{experiment}__{kind}__{src}')}"
    return out


@dataclass(frozen=True)
class IncrementalSpec:
    """What this run reprocesses, given the stored state (decided by ``runner``)."""

    since: dt.date                        # first reprocessed day
    exists: bool                          # False: build the state from scratch
    tables: dict[str, str]                # state tables by kind (see state_tables)
    present: dict[str, bool] = field(default_factory=dict)    # which state tables exist
    # the tables holding the state now, by kind (the names the last run left in the state row;
    # default: ``tables``)
    current: dict[str, str] = field(default_factory=dict)
    # None: this run rewrites the state tables in place (in the publish transaction); else the
    # tables it rewrites get new names ending in ``_<tag>`` (engines that publish by pointer)
    tag: str | None = None
    # wn.scorecard_daily: the first day this run adds (None: every day); the days before it are
    # kept as ``previous_run`` recorded them (None: the previous series was computed otherwise)
    series_from: dt.date | None = None
    previous_run: str | None = None
    fill: dict[str, tuple[str, ...]] = field(default_factory=dict)  # source -> columns to backfill
    sealed_before: dt.date | None = None  # the stored bases hold the days before this one (None: no usable base)
    seal_at: dt.date | None = None        # this run re-seals every base at this day (None: keeps them)
    # the per-day rows of exposures and post-window partials start on this day (None: on the
    # experiment's first day).  A rebuild with ``days_from == seal_at`` is a *compact* build:
    # the sealed bases come straight from the sources, per-day rows only for the days the next
    # run reprocesses (see the module docstring)
    days_from: dt.date | None = None

    @property
    def sealed_after(self) -> dt.date | None:
        """The seal the state has once this run is published."""
        return self.seal_at or self.sealed_before

    def table(self, kind: str) -> str:
        """The table holding ``kind`` of the state now."""
        return self.current.get(kind) or self.tables[kind]

    def target(self, kind: str) -> str:
        """Where this run writes ``kind`` of the state."""
        return self.table(kind) if self.tag is None else f"{self.tables[kind]}_{self.tag}"

    @property
    def since_ts(self) -> dt.datetime:
        return dt.datetime.combine(self.since, dt.time())

    @property
    def compact(self) -> bool:
        """A compact state build: a rebuild whose per-day rows start at the seal."""
        return not self.exists and self.days_from is not None and self.days_from == self.seal_at


def _at(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


@dataclass
class _Source:
    scan: SourceScan
    post_cols: list[UnitColumn]
    val_cols: list[UnitColumn]
    pre_cols: list[UnitColumn]
    base: str | None = None                 # the per-unit base the unit metrics merge
    inputs: list = field(default_factory=list)   # per-day rows after it: (relation, from day, to day)
    val_base: str | None = None             # per-unit counts of the values first seen before the seal
    val_rows: list = field(default_factory=list)   # value rows after it: (relation, from, to, columns or None)
    old_pre: str | None = None
    new_pre: str | None = None
    pre_table: str | None = None
    combined: str | None = None             # a compact build's base that also holds the covariates


def _day_partial(c: UnitColumn, plan: AnalysisPlan, scan_ts: str) -> str:
    """A column's aggregate within one day; an active day is a flag for that day."""
    return _aggregate(replace(c, agg="flag") if c.agg == "distinct_days" else c, plan, scan_ts)


def compile_incremental(plan: AnalysisPlan, spec: IncrementalSpec, *, dialect: str,
                        stage_prefix: str) -> CompiledPlan:
    """Statements of an incremental run, and the publish statements that update the state."""
    stmts: list[Statement] = []
    writes: list[StateWrite] = []
    since, since_ts = spec.since, spec.since_ts

    def old(name: str) -> str | None:
        return spec.table(name) if spec.exists and spec.present.get(name) else None

    def add(step: str, sql: str, relation: str, temp: bool = False) -> str:
        """Stage a table: ``temp`` for one only read in this session (at most copied into the
        state by INSERT at publish), persistent for one renamed into the state or published."""
        if temp:
            relation = temp_name(relation)
        stmts.append(_create(step, relation, _parse(sql, step), dialect, temp=temp))
        return relation

    def state(kind: str, *parts: Part) -> None:
        """After publishing, the ``kind`` table of the state holds the rows of ``parts``."""
        before = spec.table(kind) if spec.present.get(kind) else None
        writes.append(StateWrite(kind, spec.target(kind), parts, replaces=before))

    # -- exposures ---------------------------------------------------------------------
    log = _ENV.get_template("incremental/exposure_days.sql.j2")
    compact = spec.compact
    first = spec.seal_at if compact else since   # the first day of per-day rows this run writes
    new_exp_days = add("exposure_days", log.render(
        plan=plan, exposure=plan.exposure, literal=literal, ts=ts, since=first, since_ts=_at(first),
        until=plan.end, per_unit=False, arg_min=dialect in ARG_MIN_DIALECTS),
        f"{stage_prefix}_exposure_days", temp=bool(old("exposure_days")))   # else it becomes the state
    old_exp = old("exposure_days")
    exp_base = old("exposure_base") if spec.sealed_before else None
    inputs = ([(old_exp, spec.sealed_before if exp_base else None, since)] if old_exp else [])
    inputs = _clip(inputs + [(new_exp_days, None, None)], None, None)
    merge = _ENV.get_template("incremental/exposures_merge.sql.j2")

    def exposures_sql(base: str | None, base_before: dt.date | None, rows: list, form: str) -> str:
        return merge.render(plan=plan, base=base, base_before=base_before, inputs=rows, form=form,
                            describe=_describe(rows), date=date, arg_min=dialect in ARG_MIN_DIALECTS)

    base_before = spec.sealed_before
    if compact:   # the base straight from the log: no per-day rows before the seal
        exp_base = add("exposure_base", log.render(
            plan=plan, exposure=plan.exposure, literal=literal, ts=ts, since=since, since_ts=since_ts,
            until=_at(spec.seal_at), per_unit=True, arg_min=dialect in ARG_MIN_DIALECTS),
            f"{stage_prefix}_exposure_base")
        state("exposure_base", Part(exp_base))
        base_before = spec.seal_at
    elif spec.seal_at:
        sealed = add("exposure_base", exposures_sql(exp_base, base_before, _clip(inputs, None, spec.seal_at), "base"),
                     f"{stage_prefix}_exposure_base")
        state("exposure_base", Part(sealed))
        exp_base, base_before, inputs = sealed, spec.seal_at, _clip(inputs, spec.seal_at, None)
    # read by every scan of this run, published through unit_metrics (wn.exposures is a view)
    exposures = add("exposures", exposures_sql(exp_base, base_before, inputs, "published"),
                    f"{stage_prefix}_exposures", temp=True)
    if old_exp:   # the reprocessed days are replaced
        state("exposure_days", Part(old_exp, keep=f"day < {date(since)}"), Part(new_exp_days))
    else:
        state("exposure_days", Part(new_exp_days))

    # -- per source: new days, backfills, pre-exposure covariates ------------------------
    sources: list[_Source] = []
    for i, scan in enumerate(plan.scans):
        src = _Source(scan=scan,
                      post_cols=[c for c in scan.columns if c.window == "post" and c.agg != "count_distinct"],
                      val_cols=[c for c in scan.columns if c.window == "post" and c.agg == "count_distinct"],
                      pre_cols=[c for c in scan.columns if c.window == "pre"])
        fill = set(spec.fill.get(scan.source, ()))
        prefix = f"{stage_prefix}_{i}"
        ctx = _Ctx(plan, spec, exposures, add, state, old, dialect)
        _post_state(ctx, src, fill, prefix)
        _value_state(ctx, src, fill, prefix)
        _pre_state(ctx, src, fill, prefix)
        sources.append(src)

    # this run's unit metrics, inline in the aggregates statement: nothing per unit is written
    unit_metrics = _parse(_unit_metrics_sql(plan, sources, since, since_ts, exposures), "unit_metrics")
    aggregates = inline_cte(_parse(_aggregates_select(plan, {"unit_metrics": "unit_metrics"}), "aggregates"),
                            "unit_metrics", unit_metrics)
    # the exposures LEFT JOIN each per-unit state relation: build the hash tables on the state
    stmts.append(Statement("aggregates", "query", write(aggregates, dialect, "aggregates"), joins_as_written=True))
    # percentile metrics keep no state: each is recomputed from its source's post window (exact)
    stmts += quantile_statements(plan, exposures, dialect)
    after = {kind: spec.table(kind) for kind in spec.tables if spec.exists and spec.present.get(kind)}
    after.update({w.kind: w.target for w in writes})
    view = write(_published_unit_metrics(plan, spec, sources, exposures_sql, after), dialect, "unit_metrics_view")
    return CompiledPlan(plan.experiment, dialect, "incremental", tuple(stmts),
                        {"unit_metrics": "inline; published as a view over the state"},
                        relations={"exposures": exposures}, unit_view=view,
                        state_writes=tuple(writes), state_tables=after,
                        daily=compile_daily(plan, after, dialect, first=spec.series_from, seal=spec.sealed_after)
                        if plan.daily_history else None)


def _unit_metrics_sql(plan: AnalysisPlan, sources: list[_Source], since: dt.date, since_ts: dt.datetime,
                      exposures: str, sealed: dt.date | None = None) -> str:
    """The unit metrics select: this run's (``sealed`` None) or the published view's."""
    return _ENV.get_template("incremental/unit_metrics.sql.j2").render(
        plan=plan, sources=sources, since=since, since_ts=since_ts, exposures=exposures, sealed=sealed,
        literal=literal, date=date, ts=ts, rollup=lambda c: _ROLLUP[c.agg],
        post_days=lambda: _post_days(plan), finish=lambda c: _finish(c, _unit_value(sources, c), plan,
                                 ref_of=lambda n: _unit_value(sources, _column(sources, n))))


def _published_unit_metrics(plan: AnalysisPlan, spec: IncrementalSpec, sources: list[_Source],
                            exposures_sql, t: dict[str, str]) -> exp.Expression:
    """The ``unit_metrics__<experiment>`` view: the same unit metrics, read from the state as
    this run leaves it (its sealed bases, every kept day after them, the covariates and the
    distinct values; ``t``: the state tables by kind), so it always matches the latest run's
    aggregates."""
    sealed = spec.sealed_after
    stored = []
    for src in sources:
        s = src.scan.source
        stored.append(_Source(scan=src.scan, post_cols=src.post_cols, val_cols=src.val_cols, pre_cols=src.pre_cols,
                              base=t[f"base:{s}"] if src.post_cols and sealed else None,
                              inputs=[(t[f"days:{s}"], sealed, None)] if src.post_cols else [],
                              val_base=t[f"vbase:{s}"] if src.val_cols and sealed else None,
                              val_rows=[(t[f"values:{s}"], sealed, None, None)] if src.val_cols else [],
                              pre_table=t[f"pre:{s}"] if src.pre_cols else None))
    rows = [(t["exposure_days"], sealed, None)]
    exposures = _parse(exposures_sql(t["exposure_base"] if sealed else None, sealed, rows, "published"),
                       "unit_metrics_view")
    units = _parse(_unit_metrics_sql(plan, stored, spec.since, spec.since_ts, "exposed_units", sealed),
                   "unit_metrics_view")
    return inline_cte(units, "exposed_units", exposures)


def _column(sources: list[_Source], name: str) -> UnitColumn:
    return next(c for s in sources for c in s.post_cols + s.val_cols + s.pre_cols if c.name == name)


def _unit_value(sources: list[_Source], c: UnitColumn) -> str:
    """A column's raw per-unit value in the unit metrics statement: for post-window columns
    the sealed base (alias b<i>) plus the roll-up of the days after it (alias o<i>)."""
    for i, src in enumerate(sources):
        if c in src.post_cols:
            if not src.base:
                return f"o{i}.{c.name}"
            merged = merge_partials(c, f"b{i}.{c.name}", f"o{i}.{c.name}")
            return f"({merged})" if _ROLLUP[c.agg] == "sum" else merged
        if c in src.val_cols:
            if not src.val_base:
                return f"v{i}.{c.name}"
            return f"(coalesce(vb{i}.{c.name}, 0) + coalesce(v{i}.{c.name}, 0))"
        if c in src.pre_cols:
            return f"r{i}.{c.name}"
    raise ValueError(f"column {c.name} is in no source")


def _clip(inputs: list, lo: dt.date | None, hi: dt.date | None) -> list:
    """State inputs (relation, from day, to day[, value columns]) restricted to [lo, hi); inputs
    that are empty by their bounds alone are dropped (the last one, this run's new rows, is kept)."""
    out = []
    for i, (rel, a, b, *rest) in enumerate(inputs):
        a = max(a, lo) if a and lo else a or lo
        b = min(b, hi) if b and hi else b or hi
        if a and b and a >= b and i < len(inputs) - 1:
            continue
        out.append((rel, a, b, *rest))
    return out


def _describe(inputs: list) -> str:
    def part(rel: str, a, b) -> str:
        name = rel.split(".")[-1]
        return f"{name} [{a or '...'}, {b or '...'})" if a or b else name
    return ", ".join(part(*i) for i in inputs)


@dataclass
class _Ctx:
    """What the per-source state helpers share."""

    plan: AnalysisPlan
    spec: IncrementalSpec
    exposures: str
    add: object
    state: object
    old: object
    dialect: str = "duckdb"


def _post_state(ctx: _Ctx, src: _Source, fill: set[str], prefix: str) -> None:
    if not src.post_cols:
        return
    plan, spec, scan, key = ctx.plan, ctx.spec, src.scan, f"days:{src.scan.source}"
    tmpl = _ENV.get_template("incremental/unit_days.sql.j2")

    def days(cols, lo, hi, step, relation, temp=True):
        return ctx.add(step, tmpl.render(plan=plan, scan=scan, cols=cols, lo=lo, hi=hi, lo_ts=lo, hi_ts=hi, ts=ts,
                                         exposures=ctx.exposures, prefilter=prefilter(cols),
                                         partial=lambda c: _day_partial(c, plan, scan.timestamp)), relation,
                       temp=temp)

    old_days = ctx.old(key)
    # a missing table in an existing state (a new source) is backfilled whole
    fill_cols = [c for c in src.post_cols if c.name in fill or (spec.exists and not old_days)]
    # a rebuild: the new days are the whole state
    rebuild = not old_days and not fill_cols
    first = _at(spec.seal_at) if spec.compact else spec.since_ts
    new_days = days(src.post_cols, first, plan.end, f"days__{scan.source}", f"{prefix}_days_new",
                    temp=not rebuild)
    if spec.compact:   # the base straight from the source, the per-day rows from the seal on
        # one pass for the base and the pre-exposure covariates (split off by _pre_state)
        pre_cols = src.pre_cols if len(src.post_cols) + len(src.pre_cols) <= COMBINED_PASS_COLUMNS else []
        base = ctx.add(f"base__{scan.source}", _ENV.get_template("incremental/unit_base.sql.j2").render(
            plan=plan, scan=scan, cols=src.post_cols, pre_cols=pre_cols, seal_at=spec.seal_at, seal_ts=first, ts=ts,
            exposures=ctx.exposures, prefilter=prefilter(src.post_cols + pre_cols),
            aggregate=lambda c: _aggregate(c, plan, scan.timestamp, ctx.dialect, before=ts(first))),
            f"{prefix}_base")
        src.combined = base if pre_cols else None
        ctx.state(key, Part(new_days))
        ctx.state(f"base:{scan.source}", Part(base))
        src.base, src.inputs = base, [(new_days, None, None)]
        return
    if rebuild:
        ctx.state(key, Part(new_days))
        src.base, src.inputs = None, [(new_days, None, None)]
    elif old_days and not fill_cols:
        src.base = ctx.old(f"base:{scan.source}") if spec.sealed_before else None
        src.inputs = _clip([(old_days, spec.sealed_before if src.base else None, spec.since),
                            (new_days, None, None)], None, None)
        names = ("unit_id", "day", *(c.name for c in src.post_cols))
        ctx.state(key, Part(old_days, keep=f"day < {date(spec.since)}", columns=names), Part(new_days, columns=names))
    else:
        fill_rel = (days(fill_cols, plan.start, spec.since_ts, f"backfill_days__{scan.source}", f"{prefix}_days_fill")
                    if fill_cols else None)
        merged = _ENV.get_template("incremental/merge_days.sql.j2").render(
            scan=scan, cols=src.post_cols, fill_cols=fill_cols, fill_names={c.name for c in fill_cols},
            old=old_days, fill=fill_rel, new=new_days, since=spec.since, date=date)
        days_all = ctx.add(f"state_days__{scan.source}", merged, f"{prefix}_days_all")
        ctx.state(key, Part(days_all))
        src.base, src.inputs = None, [(days_all, None, None)]
    if spec.seal_at:   # move the base up to the next run's first reprocessed day
        sealed = ctx.add(f"base__{scan.source}", _ENV.get_template("incremental/post_base.sql.j2").render(
            scan=scan, cols=src.post_cols, base=src.base, base_before=spec.sealed_before, seal_at=spec.seal_at,
            inputs=_clip(src.inputs, None, spec.seal_at), describe=_describe(_clip(src.inputs, None, spec.seal_at)),
            rollup=lambda c: _ROLLUP[c.agg], date=date), f"{prefix}_base")
        ctx.state(f"base:{scan.source}", Part(sealed))
        src.base, src.inputs = sealed, _clip(src.inputs, spec.seal_at, None)


def _value_state(ctx: _Ctx, src: _Source, fill: set[str], prefix: str) -> None:
    """``count_distinct`` columns.  The state keeps one row per unit, column and distinct value,
    dated the day it was first seen, and a sealed base of per-unit counts of the values first
    seen before the seal day.  A unit's count is its base + the rows first seen after the seal
    (kept rows + this run's values not seen before), so a run never re-counts the history."""
    if not src.val_cols:
        return
    plan, spec, scan, key = ctx.plan, ctx.spec, src.scan, f"values:{src.scan.source}"
    tmpl = _ENV.get_template("incremental/unit_values.sql.j2")

    def values(cols, lo, hi, step, relation, temp=True):   # temp: read in this session only
        return ctx.add(step, tmpl.render(plan=plan, scan=scan, cols=cols, lo=lo, hi=hi, lo_ts=lo, hi_ts=hi, ts=ts,
                                         exposures=ctx.exposures, literal=literal,
                                         condition=lambda c: _condition(c, plan, scan.timestamp),
                                         value=lambda c: qualify(c.value, "s")), relation, temp=temp)

    old_vals = ctx.old(key)
    fill_cols = [c for c in src.val_cols if c.name in fill or (spec.exists and not old_vals)]
    if not spec.exists:   # a rebuild: every value is first seen in this run's rows, which become the state
        prior: list = []
        unseen = values(src.val_cols, spec.since_ts, plan.end, f"values__{scan.source}", f"{prefix}_values_new",
                        temp=False)
        ctx.state(key, Part(unseen))
    else:
        new_vals = values(src.val_cols, spec.since_ts, plan.end, f"values__{scan.source}", f"{prefix}_values_new")
        fill_vals = (values(fill_cols, plan.start, spec.since_ts, f"backfill_values__{scan.source}",
                            f"{prefix}_values_fill") if fill_cols else None)
        kept_names = [c.name for c in src.val_cols if c.name not in {f.name for f in fill_cols}]
        # what was seen before this run's first day: kept rows of the state, backfilled rows
        prior = ([(old_vals, None, spec.since, kept_names)] if old_vals and kept_names else [])
        prior += [(fill_vals, None, None, None)] if fill_vals else []
        unseen = ctx.add(f"values_unseen__{scan.source}", _ENV.get_template("incremental/values_unseen.sql.j2").render(
            scan=scan, new=new_vals, prior=prior, date=date, literal=literal), f"{prefix}_values_unseen",
            temp=bool(old_vals))   # else it becomes the state
        # rows first seen on a reprocessed day, backfilled columns' rows and the rows of columns no
        # metric uses any more are replaced; with no values state yet, the unseen rows (and any
        # backfilled ones) become it
        kept = ([Part(old_vals, keep=f"day < {date(spec.since)} and col in ({', '.join(literal(n) for n in kept_names)})")]
                if old_vals and kept_names else [])
        ctx.state(key, *kept, *([Part(fill_vals)] if fill_vals else []), Part(unseen))
    rows = prior + [(unseen, None, None, None)]   # every value of each unit, once, after this run
    vbase = ctx.old(f"vbase:{scan.source}") if spec.sealed_before else None
    src.val_base, src.val_rows = vbase, _clip(rows, spec.sealed_before if vbase else None, None)
    if spec.seal_at:   # count the values first seen before the new seal day
        # on the old counts when they hold every column (no backfill), else from all the rows
        base = vbase if not fill_cols else None
        sealed = ctx.add(f"value_base__{scan.source}", _ENV.get_template("incremental/value_base.sql.j2").render(
            scan=scan, cols=src.val_cols, base=base, base_before=spec.sealed_before,
            rows=_clip(rows, spec.sealed_before if base else None, spec.seal_at), seal_at=spec.seal_at,
            date=date, literal=literal), f"{prefix}_vbase")
        ctx.state(f"vbase:{scan.source}", Part(sealed))
        src.val_base, src.val_rows = sealed, _clip(rows, spec.seal_at, None)


def _pre_state(ctx: _Ctx, src: _Source, fill: set[str], prefix: str) -> None:
    if not src.pre_cols:
        return
    plan, spec, scan, key = ctx.plan, ctx.spec, src.scan, f"pre:{src.scan.source}"
    tmpl = _ENV.get_template("incremental/unit_pre.sql.j2")
    window = dt.timedelta(days=plan.cuped_days)

    def pre(cols, new_units, lo, hi, step, relation, temp=True):
        return ctx.add(step, tmpl.render(scan=scan, cols=cols, new_units=new_units, since=spec.since,
                                         since_ts=spec.since_ts, lo_ts=lo, hi_ts=hi, ts=ts, plan=plan,
                                         exposures=ctx.exposures, prefilter=prefilter(cols),
                                         aggregate=lambda c: _aggregate(c, plan, scan.timestamp, ctx.dialect)), relation,
                       temp=temp)

    old_pre = ctx.old(key)
    fill_cols = [c for c in src.pre_cols if c.name in fill or (spec.exists and not old_pre)]
    rebuild = not old_pre and not fill_cols   # the new units are all units: they are the state
    if rebuild and src.combined:   # computed with the base (compact build): split them off
        names = ", ".join(["unit_id", "first_exposure_at"] + [c.name for c in src.pre_cols])
        src.new_pre = ctx.add(f"pre__{scan.source}",
                              f"-- plan: pre-exposure covariates of source '{scan.source}', computed in the pass "
                              f"of its sealed base\nselect {names}\nfrom {src.combined}", f"{prefix}_pre_new")
        ctx.state(key, Part(src.new_pre))
        return
    src.new_pre = pre(src.pre_cols, True, spec.since_ts - window, plan.end, f"pre__{scan.source}",
                      f"{prefix}_pre_new", temp=not rebuild)
    if rebuild:
        ctx.state(key, Part(src.new_pre))
        return
    if old_pre and not fill_cols:
        src.old_pre = old_pre
        names = ("unit_id", "first_exposure_at", *(c.name for c in src.pre_cols))
        ctx.state(key, Part(old_pre, keep=f"first_exposure_at < {ts(spec.since_ts)}", columns=names),
                  Part(src.new_pre, columns=names))
        return
    fill_rel = (pre(fill_cols, False, plan.start - window, spec.since_ts, f"backfill_pre__{scan.source}",
                    f"{prefix}_pre_fill") if fill_cols else None)
    merged = _ENV.get_template("incremental/merge_pre.sql.j2").render(
        scan=scan, cols=src.pre_cols, fill_cols=fill_cols, fill_names={c.name for c in fill_cols},
        old=old_pre, fill=fill_rel, new=src.new_pre, since_ts=spec.since_ts, ts=ts)
    src.pre_table = ctx.add(f"state_pre__{scan.source}", merged, f"{prefix}_pre_all")
    ctx.state(key, Part(src.pre_table))
