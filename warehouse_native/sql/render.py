"""Render an analysis plan into SQL steps for one dialect and one strategy.

Templates are written in the DuckDB dialect (Jinja), then sqlglot parses every statement
and writes it for the target dialect.  The result is a list of :class:`Statement` — pure
data, no connection — that the warehouse layer executes in order.

Steps of the plan::

    exposures (temporary table, read by every scan) -> scan__<source> (intermediate, one per
    source) -> unit_metrics -> aggregates (query, fetched)

``unit_metrics`` is a CTE of the aggregates statement, published as a view that recomputes it
from the sources (``unit_metrics="view"``, the default: no per-unit write), or a table the
aggregates read (``"table"``: a snapshot).  ``wn.exposures`` is a view over it either way.

``strategy``: ``cte`` inlines every intermediate as a CTE of the statement that reads it;
``temp`` materialises each intermediate as a temporary table; ``auto`` materialises an
intermediate only when more than one later step reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import statistics

import jinja2
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from ..errors import CompileError
from ..plan import AnalysisPlan, MetricPlan, QuantileQuery, UnitColumn
from ..warehouse.publish import StateWrite
from .dialects import (ARG_MIN_DIALECTS, BITMASK_DIALECTS, BITMASK_WORD, DIALECTS, ONE_STATEMENT_DIALECTS,
                       create_temp, write)
from .expressions import date, literal, qualify, ts
from .scan_shape import ScanShape

Strategy = Literal["cte", "temp", "auto"]
STRATEGIES = ("cte", "temp", "auto")

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    undefined=jinja2.StrictUndefined, trim_blocks=False, lstrip_blocks=False)
_ENV.filters["literal"] = literal


def unit_key(plan: AnalysisPlan, expr: str) -> str:
    """A unit id column as the join compares it: in its own type, unless the sources' unit
    columns differ in type (then as text on every side)."""
    return f"cast({expr} as varchar)" if plan.unit_keys == "text" else expr


_ENV.globals["unit_key"] = unit_key


@dataclass(frozen=True)
class Statement:
    """One SQL statement to execute.  ``action``: create_table | create_temp | query | drop."""

    step: str
    action: str
    sql: str
    relation: str | None = None
    note: str = ""
    # every join is a driver LEFT JOIN a relation with at most one row per key, so the written
    # build sides are the right ones (Adapter.joins_as_written)
    joins_as_written: bool = False


@dataclass(frozen=True)
class CompiledPlan:
    experiment: str
    dialect: str
    strategy: str
    statements: tuple[Statement, ...]
    choices: dict[str, str] = field(default_factory=dict)   # intermediate -> 'inline' | 'temp'
    relations: dict[str, str] = field(default_factory=dict)  # 'exposures', 'unit_metrics' -> staged relation
    # incremental modes: the SELECT published as the unit_metrics view (no staged unit_metrics table),
    # what publishing writes into the state, and the state's tables by kind afterwards
    unit_view: str | None = None
    state_writes: tuple[StateWrite, ...] = ()
    state_tables: dict[str, str] = field(default_factory=dict)
    # incremental modes: the query of the results as of each day, over the state as published
    daily: str | None = None
    # one statement (ONE_STATEMENT_DIALECTS): the aggregates query also returns the percentile
    # metrics' columns and the exposure counts per variant and day (see split_rows)
    combined: bool = False


# -- fragments -------------------------------------------------------------------------

def _condition(c: UnitColumn, plan: AnalysisPlan, scan_ts: str, before: str | None = None) -> str:
    """A column's row condition: its filter and window.  ``before``: a timestamp (SQL) that
    also ends a post window (a sealed base of the days before it)."""
    t = f"s.{scan_ts}"
    parts = []
    if c.filter:
        parts.append(f"({qualify(c.filter, 's')})")
    if c.window == "post":
        start = "e.first_exposure_at" if not c.start_day else \
            f"e.first_exposure_at + interval {c.start_day} day"
        parts.append(f"{t} >= {start}")
        if c.end_day:
            parts.append(f"{t} < e.first_exposure_at + interval {c.end_day} day")
        if before:
            parts.append(f"{t} < {before}")
    else:
        parts.append(f"{t} < e.first_exposure_at")
    return " and ".join(parts)


def _day_index(plan: AnalysisPlan, scan_ts: str) -> str:
    """The row's day, counted from the first day a scan reads (0, 1, ...)."""
    return f"date_diff('day', {date(plan.scan_start)}, cast(s.{scan_ts} as date))"


def _distinct_days(cond: str, plan: AnalysisPlan, scan_ts: str, dialect: str) -> str:
    """How many dates have a row matching ``cond``: a per-unit bitmask of day indexes, one
    bigint word per BITMASK_WORD days of the scanned period (exact), or COUNT(DISTINCT date)
    where the engine has no bit aggregates."""
    if dialect not in BITMASK_DIALECTS:
        return f"count(distinct cast(s.{scan_ts} as date)) filter (where {cond})"
    span = (plan.end.date() - plan.scan_start.date()).days
    idx = _day_index(plan, scan_ts)
    words = -(-span // BITMASK_WORD)
    if words <= 1:
        return f"bit_count(bit_or(cast(1 as bigint) << {idx}) filter (where {cond}))"
    parts = []
    for w in range(words):
        lo = w * BITMASK_WORD
        word = f"{idx} >= {lo} and {idx} < {lo + BITMASK_WORD}"
        # engines compute the shift for rows the FILTER then drops: keep it in 0..BITMASK_WORD-1
        # for every row (DuckDB refuses a negative or a 64+ shift)
        shift = f"{idx} - {lo}"
        if w > 0:
            shift = f"greatest({shift}, 0)"
        if w < words - 1:
            shift = f"least({shift}, {BITMASK_WORD - 1})"
        parts.append(f"coalesce(bit_count(bit_or(cast(1 as bigint) << {shift}) filter (where {cond} and {word})), 0)")
    return "(" + " + ".join(parts) + ")"


def _aggregate(c: UnitColumn, plan: AnalysisPlan, scan_ts: str, dialect: str = "duckdb",
               before: str | None = None) -> str:
    """The per-unit aggregate of one column, its filter and window tested inline; rows outside
    them are FILTERed out (NULL when no row matches: unit metrics coalesce to 0).  The benchmarks
    found this plain shape faster in DuckDB than pre-grouping rows by filter mask and bucket.
    ``before``: see :func:`_condition`."""
    cond = _condition(c, plan, scan_ts, before)
    if c.agg == "count":
        return f"count(*) filter (where {cond})"
    if c.agg == "flag":
        return f"max(1) filter (where {cond})"
    if c.agg == "sum":
        return f"sum({qualify(c.value, 's')}) filter (where {cond})"
    if c.agg == "count_distinct":
        return f"count(distinct {qualify(c.value, 's')}) filter (where {cond})"
    if c.agg == "distinct_days":
        return _distinct_days(cond, plan, scan_ts, dialect)
    if c.agg == "first_ts":
        return f"min(s.{scan_ts}) filter (where {cond})"
    raise CompileError(f"unknown aggregation '{c.agg}' in plan column {c.name}")


def prefilter(columns) -> str | None:
    """The union of the columns' filters, so the scan drops rows no column uses; None when
    some column takes every row.  Equalities of one column with literals are merged into one
    ``IN`` list, which engines push into the scan (DuckDB evaluates ``col IN (...)`` there,
    but not an ``OR`` of the same comparisons: about 10% of a scan at 8 metrics)."""
    filters: list[str] = []
    for c in columns:
        if not c.filter:
            return None
        text = qualify(c.filter, "s")
        if text not in filters:
            filters.append(text)
    if not filters:
        return None
    lists: dict[str, list[str]] = {}
    others: list[str] = []
    for text in filters:
        node = sqlglot.parse_one(text, read="duckdb")
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.EQ):
            col, lit = node.this, node.expression
            if isinstance(lit, exp.Column):
                col, lit = lit, col
            if isinstance(col, exp.Column) and isinstance(lit, exp.Literal):
                lists.setdefault(col.sql(dialect="duckdb"), []).append(lit.sql(dialect="duckdb"))
                continue
        others.append(f"({text})")
    parts = [f"{col} = {vals[0]}" if len(vals) == 1 else f"{col} in ({', '.join(dict.fromkeys(vals))})"
             for col, vals in lists.items()]
    return " or ".join(parts + others)


def _post_days(plan: AnalysisPlan, end_date: str | None = None) -> str:
    """Days from the exposure date to the analysis end (``end_date``: a SQL date expression
    instead of the plan's end, for results as of each day)."""
    return f"greatest(date_diff('day', cast(e.first_exposure_at as date), {end_date or date(plan.end)}), 1)"


def _dates_touched(lo: str, hi: str) -> str:
    """How many calendar dates the time range [lo, hi) touches (at least 1)."""
    return (f"greatest(date_diff('day', cast({lo} as date), cast({hi} as date)) + "
            f"case when cast(cast({hi} as date) as timestamp) = {hi} then 0 else 1 end, 1)")


# how per-day (or per-seal) partials of an aggregation combine into a longer period
ROLLUP = {"count": "sum", "sum": "sum", "flag": "max", "distinct_days": "sum", "first_ts": "min"}


def merge_partials(c: UnitColumn, a: str, b: str) -> str:
    """Two partial aggregates of one column (either NULL when it had no rows) combined."""
    how = ROLLUP[c.agg]
    if how == "min":
        return f"least(coalesce({a}, {b}), coalesce({b}, {a}))"   # NULL only when both are (some engines' least() is NULL with a NULL)
    if how == "max":
        return f"greatest(coalesce({a}, 0), coalesce({b}, 0))"
    return f"coalesce({a}, 0) + coalesce({b}, 0)"


_ENV.globals["merge_partials"] = merge_partials


def _finish(c: UnitColumn, ref: str, plan: AnalysisPlan, end: tuple[str, str] | None = None,
            ref_of=None) -> str:
    """A unit column's final value from its raw aggregate ``ref`` (NULL: no rows);
    daily_participation divides active dates by the dates its window touches, so the rate
    never exceeds 1.  ``end``: SQL (date, timestamp) expressions of the analysis end, when it
    is not the plan's (results as of each day).  ``ref_of``: the raw aggregate of another
    column of the same scan, by name (funnel steps read the earlier steps' times)."""
    value = f"cast(coalesce({ref}, 0) as double)"
    fe = "e.first_exposure_at"
    end_date, end_ts = end or (date(plan.end), ts(plan.end))
    if c.finish == "funnel":
        return _funnel_step(c, ref, ref_of)
    if c.complete_after is not None:
        eligible = f"{fe} + interval {c.complete_after} day <= {end_ts}"
        if c.finish == "eligible":
            return f"cast(case when {eligible} then 1 else 0 end as double)"
        return f"case when {eligible} then {value} else cast(0 as double) end"
    if c.finish == "per_post_day":
        if not c.start_day and not c.end_day:
            return f"{value} / {_post_days(plan, end_date)}"   # the common case: exposure date to analysis end
        lo = f"{fe} + interval {c.start_day} day" if c.start_day else fe
        hi = end_ts if not c.end_day else f"least({fe} + interval {c.end_day} day, {end_ts})"
        return f"{value} / {_dates_touched(lo, hi)}"
    if c.finish == "per_pre_day":
        return f"{value} / {_dates_touched(f'{fe} - interval {plan.cuped_days} day', fe)}"
    return value


def _funnel_step(c: UnitColumn, ref: str, ref_of) -> str:
    """1.0 when the unit completed this funnel step: it has a row of every step so far, each
    step's first row at or after the previous step's, the last within ``within_hours`` of the
    first step's."""
    times = [ref_of(name) for name in c.after] + [ref]
    parts = [f"{t} is not null" for t in times]
    parts += [f"{later} >= {earlier}" for earlier, later in zip(times, times[1:])]
    if c.within_hours is not None and len(times) > 1:
        seconds = round(c.within_hours * 3600)
        parts.append(f"{times[-1]} < {times[0]} + interval {seconds} second")
    return f"cast(case when {' and '.join(parts)} then 1 else 0 end as double)"


def _metric_inputs(m: MetricPlan) -> list[tuple[str, str, float | None, float | None]]:
    """(input key, unit-metrics column, winsorization quantiles) of each per-unit input of a
    metric: ``y``, ``d``, ``x``, ``xm``, capped as the metric says."""
    return [(key, col, m.winsor_lower, m.winsor_upper) for key, col in
            (("y", m.value_column), ("d", m.den_column), ("x", m.pre_column), ("xm", m.pre_den_column))
            if col is not None]


def _covariate_input(plan: AnalysisPlan, name: str) -> str:
    """The aggregates query's column of a further covariate (one for every metric using it)."""
    return f"cov{[c.name for c in plan.covariates].index(name)}"


def _moments(index: int, m: MetricPlan, plan: AnalysisPlan) -> list[tuple[str, str]]:
    y, d, x, xm = (f"m{index}_{k}" for k in ("y", "d", "x", "xm"))
    out = [("sum", y), ("sum_sq", f"{y} * {y}")]
    if m.is_ratio:
        out += [("den_sum", d), ("den_sum_sq", f"{d} * {d}"), ("num_den_sum", f"{y} * {d}")]
    if m.has_covariate:
        out += [("pre_sum", x), ("pre_sum_sq", f"{x} * {x}"), ("sum_cross", f"{y} * {x}")]
        if m.is_ratio:
            out += [("pre_den_sum", xm), ("pre_den_sum_sq", f"{xm} * {xm}"),
                    ("pre_num_den_sum", f"{x} * {xm}"), ("num_pre_den_sum", f"{y} * {xm}"),
                    ("den_pre_sum", f"{d} * {x}"), ("den_pre_den_sum", f"{d} * {xm}")]
    for name, a, cov in m.covariate_products():   # CUPAC: the metric's inputs times its covariates
        out.append((name, f"m{index}_{a} * {_covariate_input(plan, cov)}"))
    return out


def _covariate_moments(plan: AnalysisPlan) -> list[tuple[str, str]]:
    """The covariates' own sums and products, once per query (whatever metrics use them)."""
    return [(name, f"cov{j}" if l is None else f"cov{j} * cov{l}") for name, j, l in plan.covariate_products()]


# -- step selects (DuckDB dialect) -----------------------------------------------------

def _exposures_select(plan: AnalysisPlan, dialect: str = "duckdb") -> str:
    name = "population.sql.j2" if plan.exposure.population else "exposures.sql.j2"
    return _ENV.get_template(name).render(
        plan=plan, exposure=plan.exposure, literal=literal, ts=ts, arg_min=dialect in ARG_MIN_DIALECTS)


# Above this many unit columns a scan first groups its rows by unit x filter mask x window
# bucket and then pivots (sql/scan_shape.py); below it one GROUP BY with a FILTER per column
# is faster.  Measured in DuckDB at 1M units: plain wins at 8 metrics (~14 columns), grouped
# at 32 (~60 columns); see benchmarks/RESULTS.md.
GROUPED_SCAN_MIN_COLUMNS = 32


def scan_shape(scan) -> str:
    return "grouped" if len(scan.columns) >= GROUPED_SCAN_MIN_COLUMNS else "plain"


def _scan_select(plan: AnalysisPlan, scan, rel: dict[str, str], dialect: str = "duckdb") -> str:
    if scan_shape(scan) == "grouped":
        return _ENV.get_template("source_scan_grouped.sql.j2").render(
            plan=plan, scan=scan, rel=rel, ts=ts, prefilter=prefilter(scan.columns),
            shape=ScanShape(list(scan.columns), scan.timestamp))
    return _ENV.get_template("source_scan.sql.j2").render(
        plan=plan, scan=scan, rel=rel, ts=ts, prefilter=prefilter(scan.columns),
        aggregate=lambda c: _aggregate(c, plan, scan.timestamp, dialect))


def _unit_metrics_select(plan: AnalysisPlan, rel: dict[str, str]) -> str:
    aliases = {s.source: f"s{i}" for i, s in enumerate(plan.scans)}
    return _ENV.get_template("unit_metrics.sql.j2").render(
        plan=plan, rel=rel, scan_alias=aliases, date=date, literal=literal,
        post_days=lambda: _post_days(plan), finish=lambda c, a: _finish(c, f"{a}.{c.name}", plan, ref_of=lambda n: f"{a}.{n}"))


def _aggregates_select(plan: AnalysisPlan, rel: dict[str, str], by: str | None = None) -> str:
    """Sufficient statistics per variant and slice; with ``by`` (a column of the unit metrics,
    e.g. the day of results as of each day), per ``by`` and variant instead, without slices,
    winsorization caps computed per ``by``."""
    caps: list[dict] = []
    measure: list[str] = []
    exprs: dict[str, str] = {}
    metrics = plan.unit_level_metrics   # a percentile metric has its own statement (quantiles__<metric>)
    # (name in the query, stem of its caps' names, unit-metrics column, winsorization quantiles)
    inputs = [(f"m{i}_{key}", f"cap{i}_{key}", col, lower, upper)
              for i, m in enumerate(metrics) for key, col, lower, upper in _metric_inputs(m)]
    inputs += [(f"cov{j}", f"capcov{j}", c.name, c.winsor_lower, c.winsor_upper) for j, c in enumerate(plan.covariates)]
    for name, stem, col, lower, upper in inputs:
        lo = hi = None
        if lower is not None:
            lo = f"{stem}_lo"
            caps.append({"name": lo, "column": col, "quantile": lower})
        if upper is not None:
            hi = f"{stem}_hi"
            caps.append({"name": hi, "column": col, "quantile": upper})
        value = f"analysed.{col}"
        if hi:
            value = f"least({value}, caps.{hi})"
        if lo:
            value = f"greatest({value}, caps.{lo})"
        measure.append(name)
        exprs[name] = value
    limits = () if by else plan.dimension_limits
    return _ENV.get_template("aggregates.sql.j2").render(
        plan=plan, rel=rel, caps=caps, measure_columns=measure, literal=literal, by=by,
        dimensions=() if by else plan.dimensions, limits=limits,
        limited={d: i for i, (d, _, _) in enumerate(limits)},
        capped=lambda name: exprs[name],
        moments=lambda m: _moments(metrics.index(m), m, plan), covariate_moments=_covariate_moments(plan))


def outer_z(confidence: float) -> float:
    """The two-sided standard normal quantile of ``confidence``: the z of a percentile metric's
    outer interval (the standard library's, so that compiling needs no scipy)."""
    return statistics.NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def _interpolated(h: str, k: str) -> str:
    """The linearly interpolated order statistic at the (row-level) position ``h`` = (N − 1)·f,
    ``k`` = floor(h), aggregated over the rows of a group that hold ranks k + 1 and k + 2:
    x(k+1) + (h − k)·(x(k+2) − x(k+1)), with x(k+2) = x(k+1) past the last value."""
    lo = f"max(case when r.rk = {k} + 1 then r.v end)"
    hi = f"max(case when r.rk = {k} + 2 then r.v end)"
    return f"{lo} + max({h} - {k}) * (coalesce({hi}, {lo}) - {lo})"


def _double(value: float) -> str:
    return f"cast({value!r} as double)"


def quantiles_select(plan: AnalysisPlan, q: QuantileQuery, exposures: str) -> str:
    """One percentile metric's statement (DuckDB dialect): per variant and slice, the units,
    the quantile, the sufficient statistics of the share of events at or below it, and the
    bounds of its outer interval.  ``exposures``: the run's staged exposures."""
    column = UnitColumn(name=q.metric, metric=q.metric, agg="sum", window="post", filter=q.filter,
                        value=q.value, start_day=q.start_day, end_day=q.end_day)
    return _ENV.get_template("quantiles.sql.j2").render(
        plan=plan, q=q, exposures=exposures, dims=plan.dimensions, ts=ts, literal=literal,
        limits=plan.dimension_limits, limited={d: i for i, (d, _, _) in enumerate(plan.dimension_limits)},
        variants=", ".join(literal(v) for v in plan.variants), value=qualify(q.value, "s"),
        condition=_condition(column, plan, q.timestamp), p=_double(q.percentile),
        z=_double(outer_z(plan.confidence)), z_text=f"{outer_z(plan.confidence):.6f}", interpolate=_interpolated)


def quantile_statements(plan: AnalysisPlan, exposures: str, dialect: str) -> list[Statement]:
    """A query per percentile metric, reading the run's staged exposures."""
    return [Statement(q.step_name, "query", _write(_parse(quantiles_select(plan, q, exposures), q.step_name),
                                                   dialect, q.step_name))
            for q in plan.quantiles]


# -- dialect + strategy ----------------------------------------------------------------

def _parse(sql: str, step: str) -> exp.Expression:
    try:
        return sqlglot.parse_one(sql, read="duckdb")
    except SqlglotError as exc:
        raise CompileError(f"step '{step}': generated SQL does not parse ({exc}); "
                           "this is a wn bug or an unsupported expression in a filter") from None


_write = write   # (the name the renderers use)


def _with_ctes(query: exp.Expression, ctes: list[tuple[str, exp.Expression]]) -> exp.Expression:
    """Prepend CTEs (in order) to a query, keeping the query's own CTEs after them.  The query
    and the CTE bodies are taken over, not copied (callers pass trees they just parsed)."""
    if not ctes:
        return query
    key = _with_key(query)
    own = query.args.get(key)
    new = [exp.CTE(this=body, alias=exp.TableAlias(this=exp.to_identifier(name))) for name, body in ctes]
    if own is not None:
        own.set("expressions", new + list(own.expressions))
    else:
        query.set(key, exp.With(expressions=new))
    return query


def inline_cte(query: exp.Expression, name: str, body: exp.Expression) -> exp.Expression:
    """``query`` reading ``body`` as the CTE ``name``; ``body``'s own CTEs are hoisted before
    it (one flat WITH, which every dialect accepts)."""
    key = _with_key(body)
    own = body.args.get(key)
    ctes = [(c.alias, c.this) for c in own.expressions] if own is not None else []
    body.set(key, None)
    return _with_ctes(query, ctes + [(name, body)])


def _with_key(node: exp.Expression) -> str:
    return "with_" if "with_" in node.arg_types else "with"   # sqlglot renamed the arg in v26


UNIT_METRICS = ("view", "table")
# what wn.runs.steps records for the steps that have no statement of their own
PUBLISHED_VIEW = "inline; published as a view over the sources"
ONE_STATEMENT = "inline; one statement with the aggregates"


def _aggregates_over_units(plan: AnalysisPlan, rel: dict[str, str], scans: list) -> exp.Expression:
    """The aggregates statement with the unit metrics (and the ``scans`` given as CTEs) inline:
    nothing is written per unit, the single pass a hand-written query makes."""
    units = _with_ctes(_parse(_unit_metrics_select(plan, rel), "unit_metrics"), scans)
    return inline_cte(_parse(_aggregates_select(plan, {**rel, "unit_metrics": "unit_metrics"}), "aggregates"),
                      "unit_metrics", units)


def compile_plan(plan: AnalysisPlan, *, dialect: str = "duckdb", strategy: str = "auto",
                 stage_prefix: str = "wn.__wn_stage", unit_metrics: str = "view") -> CompiledPlan:
    """All statements of one run, for a dialect and a strategy.

    ``unit_metrics``: ``view`` (default) computes the unit metrics inline in the aggregates
    statement and publishes ``unit_metrics__<experiment>`` as a view that recomputes them from
    the sources; ``table`` writes them as a table first (a snapshot, one more write of a row per
    unit) and aggregates that table."""
    if dialect not in DIALECTS:
        raise CompileError(f"unknown dialect '{dialect}'; use one of {', '.join(DIALECTS)}")
    if strategy not in STRATEGIES:
        raise CompileError(f"unknown strategy '{strategy}'; use one of {', '.join(STRATEGIES)}")
    if unit_metrics not in UNIT_METRICS:
        raise CompileError(f"unknown unit_metrics publication '{unit_metrics}'; use one of {', '.join(UNIT_METRICS)}")
    rel = {"exposures": temp_name(f"{stage_prefix}_exposures"), "unit_metrics": f"{stage_prefix}_unit_metrics"}
    for scan in plan.scans:
        rel[scan.step_name] = f"__wn_{scan.step_name}"

    intermediates = {scan.step_name: _scan_select(plan, scan, rel, dialect) for scan in plan.scans}
    readers = {name: 1 for name in intermediates}  # each scan is read by the unit metrics only
    if strategy == "auto":
        choices = {n: ("temp" if readers[n] > 1 else "inline") for n in intermediates}
    else:
        choices = {n: ("inline" if strategy == "cte" else "temp") for n in intermediates}
    shapes = {scan.step_name: scan_shape(scan) for scan in plan.scans}

    stmts: list[Statement] = []
    exposures = _parse(_exposures_select(plan, dialect), "exposures")
    one = unit_metrics == "view" and dialect in ONE_STATEMENT_DIALECTS and strategy != "temp"
    if one:
        aggregates = _aggregates_over_units(plan, rel, [(rel[n], _parse(sql, n)) for n, sql in intermediates.items()])
        quantiles = [(q, _parse(quantiles_select(plan, q, rel["exposures"]), q.step_name)) for q in plan.quantiles]
        combined = _combined(plan, aggregates, quantiles, rel["exposures"], exposures)
        recorded = {n: f"inline, {shapes[n]} scan" for n in intermediates}
        recorded.update({n: ONE_STATEMENT for n in ["exposures"] + [q.step_name for q in plan.quantiles]})
        recorded["unit_metrics"] = PUBLISHED_VIEW
        return CompiledPlan(plan.experiment, dialect, strategy,
                            (Statement("aggregates", "query", _write(combined, dialect, "aggregates")),), recorded,
                            unit_view=_write(unit_metrics_view(plan, dialect), dialect, "unit_metrics_view"),
                            combined=True)
    # staged exposures are read in this session only (by the scans, the exposure counts and the
    # percentile statements): a temporary table skips the durable write (about half the step's
    # time in DuckDB at 1M units)
    stmts.append(_create("exposures", rel["exposures"], exposures, dialect, temp=True))
    inline: list[tuple[str, exp.Expression]] = []
    for name, sql in intermediates.items():
        node = _parse(sql, name)
        if choices[name] == "temp":
            stmts.append(_create(name, rel[name], node, dialect, temp=True))
        else:
            inline.append((rel[name], node))
    relations = {"exposures": rel["exposures"]}
    view = None
    if unit_metrics == "table":
        units = _with_ctes(_parse(_unit_metrics_select(plan, rel), "unit_metrics"), inline)
        stmts.append(_create("unit_metrics", rel["unit_metrics"], units, dialect, temp=False))
        aggregates = _parse(_aggregates_select(plan, rel), "aggregates")
        relations["unit_metrics"] = rel["unit_metrics"]
    else:
        aggregates = _aggregates_over_units(plan, rel, inline)
        view = _write(unit_metrics_view(plan, dialect), dialect, "unit_metrics_view")
    stmts.append(Statement("aggregates", "query", _write(aggregates, dialect, "aggregates")))
    stmts += quantile_statements(plan, rel["exposures"], dialect)
    for name, choice in choices.items():
        if choice == "temp":
            stmts.append(Statement(name, "drop", f"DROP TABLE IF EXISTS {rel[name]}", rel[name]))
    recorded = {n: f"{c}, {shapes[n]} scan" for n, c in choices.items()}
    if view is not None:
        recorded["unit_metrics"] = PUBLISHED_VIEW
    return CompiledPlan(plan.experiment, dialect, strategy, tuple(stmts), recorded, relations=relations,
                        unit_view=view)


# the combined statement's column that marks an exposure-count row (its day; NULL on the others)
EXPOSURE_DAY = "exposure_day"
_KEYS = ("variant", "dimension", "dimension_value")


def _prefix_ctes(tree: exp.Expression, prefix: str) -> exp.Expression:
    """Rename every CTE of ``tree`` (and the references to it) with ``prefix``, so that two
    statements' CTEs can share one WITH."""
    names = {c.alias for c in tree.find_all(exp.CTE)}
    aliases = {t.alias for t in tree.find_all(exp.Table) if t.alias}
    if names & aliases:
        raise CompileError(f"a table alias shadows a CTE name ({', '.join(sorted(names & aliases))}): wn bug")
    for node in list(tree.find_all(exp.CTE, exp.Table, exp.Column)):
        if isinstance(node, exp.CTE):
            node.set("alias", exp.TableAlias(this=exp.to_identifier(prefix + node.alias)))
        elif isinstance(node, exp.Table) and not node.db and node.name in names:
            node.set("this", exp.to_identifier(prefix + node.name))
        elif isinstance(node, exp.Column) and node.table in names:   # an unaliased CTE's columns
            node.set("table", exp.to_identifier(prefix + node.table))
    return tree


def _split_with(tree: exp.Expression) -> tuple[list[tuple[str, exp.Expression]], exp.Expression]:
    key = _with_key(tree)
    own = tree.args.get(key)
    ctes = [(c.alias, c.this) for c in own.expressions] if own is not None else []
    tree.set(key, None)
    return ctes, tree


def quantile_columns(q: QuantileQuery) -> list[str]:
    return [f"{q.metric}__{k}" for k in ("sum", "sum_sq", "den_sum", "den_sum_sq", "num_den_sum", "quantile",
                                          "quantile_lower", "quantile_upper")]


def _combined(plan: AnalysisPlan, aggregates: exp.Expression, quantiles: list, exposures_name: str,
              exposures: exp.Expression) -> exp.Expression:
    """A stateless run as one query (DuckDB dialect): the aggregates rows, each with the
    percentile metrics' columns of its variant and slice, then one row per variant and exposure
    day with the units first exposed that day (``exposure_day`` set; the SRM and exposure
    checks read them).  The exposures are one materialised CTE read by every part."""
    ctes, body = _split_with(aggregates)
    names = list(body.named_selects)
    parts = [("__wn_aggregates", body)]
    select = [f"a.{c}" for c in names]
    joins = []
    for i, (q, tree) in enumerate(quantiles):
        qctes, qbody = _split_with(_prefix_ctes(tree, f"__wn_q{i}_"))
        ctes += qctes
        parts.append((f"__wn_q{i}", qbody))
        select += [f"q{i}.{c}" for c in quantile_columns(q)]
        joins.append(f"left join __wn_q{i} as q{i} on " + " and ".join(
            f"q{i}.{k} is not distinct from a.{k}" for k in _KEYS))
    width = len(select)
    n_at = names.index("n")
    counts = ["e.variant"] + ["null"] * (n_at - 1) + ["count(*)"] + ["null"] * (width - n_at - 1)
    day = "cast(e.first_exposure_at as date)"
    sql = (f"select {', '.join(select)}, cast(null as date) as {EXPOSURE_DAY}\nfrom __wn_aggregates as a\n"
           + "\n".join(joins)
           + f"\nunion all\nselect {', '.join(counts)}, {day}\nfrom {exposures_name} as e\n"
           f"group by e.variant, {day}")
    final = _with_ctes(_parse(sql, "aggregates"), ctes + parts)
    final = inline_cte(final, exposures_name, exposures)
    for c in final.find_all(exp.CTE):   # read by every scan, the unit metrics and the counts: computed once
        if c.alias == exposures_name:
            c.set("materialized", True)
    return final


def split_rows(plan: AnalysisPlan, rows: list[dict]) -> tuple[list[dict], list[dict], list[dict]]:
    """The combined statement's rows as (aggregates, exposure counts per variant and day,
    percentile rows) in the shapes of the separate statements."""
    aggregates, counts, quantiles = [], [], []
    qcols = {c for q in plan.quantiles for c in quantile_columns(q)}
    for r in rows:
        day = r.pop(EXPOSURE_DAY, None)
        if day is not None:
            counts.append({"variant": r["variant"], "day": day, "units": r["n"]})
            continue
        for q in plan.quantiles:
            quantiles.append({**{k: r[k] for k in _KEYS}, "n": r["n"], **{c: r[c] for c in quantile_columns(q)}})
        aggregates.append({k: v for k, v in r.items() if k not in qcols})
    return aggregates, counts, quantiles


# the names the published view gives the exposures and each scan (CTEs of the view)
VIEW_EXPOSURES = "exposed_units"


def unit_metrics_view(plan: AnalysisPlan, dialect: str) -> exp.Expression:
    """``unit_metrics__<experiment>`` of a stateless run: the unit metrics recomputed from the
    sources over the run's window (exposures, one scan per source, the same SQL as the run's),
    self-contained so it can outlive the run's session.  Reading only its exposure columns
    (``wn.exposures``) skips the scans: they are left joins on the unit."""
    vrel = {"exposures": VIEW_EXPOSURES, **{s.step_name: f"__wn_{s.step_name}" for s in plan.scans}}
    scans = [(vrel[s.step_name], _parse(_scan_select(plan, s, vrel, dialect), s.step_name)) for s in plan.scans]
    units = _with_ctes(_parse(_unit_metrics_select(plan, vrel), "unit_metrics_view"), scans)
    return inline_cte(units, VIEW_EXPOSURES, _parse(_exposures_select(plan, dialect), "exposures"))


def temp_name(relation: str) -> str:
    """A staged relation's name as a temporary table: without its schema (temporary tables
    live in the session's own schema)."""
    return relation.split(".")[-1]


def _create(step: str, relation: str, select: exp.Expression, dialect: str, *, temp: bool) -> Statement:
    table = exp.to_table(relation)
    create = create_temp(table, select, dialect) if temp else exp.Create(this=table, kind="TABLE", expression=select)
    return Statement(step, "create_temp" if temp else "create_table", _write(create, dialect, step),
                     relation)


def header(plan: AnalysisPlan, compiled: CompiledPlan, stmt: Statement) -> str:
    """Comment block written above each compiled SQL file."""
    return (f"-- wn compiled SQL | experiment {plan.experiment} | step {stmt.step} ({stmt.action})\n"
            f"-- dialect {compiled.dialect} | strategy {compiled.strategy} | plan {plan.fingerprint()}"
            f" | window [{plan.start:%Y-%m-%d}, {plan.end:%Y-%m-%d})\n")
