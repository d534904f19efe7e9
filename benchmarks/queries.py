"""Hand-written comparison SQL for the benchmark metric sets (DuckDB dialect).

Both produce the same rows as wn's ``aggregates`` step: one row per variant (x slice) with
``n`` and ``<metric>__<moment>`` sufficient statistics (sum, sum_sq; CUPED pre_sum,
pre_sum_sq, sum_cross; ratio den_sum, den_sum_sq, num_den_sum), so the runner can check the
numbers against wn's before timing them.

* :func:`reference_sql` — (c) the single-pass reference: one statement, exposures deduplicated
  with ``arg_min`` (no window function), events pre-filtered to the event names any metric
  reads, one join, one per-unit aggregation with ``FILTER`` clauses (identical unit columns
  shared), one grouping-sets aggregation.  Nothing is materialised.
* :func:`per_metric_sqls` — (d) one query per metric, the way many experimentation tools do
  it: each query joins the exposures to the event table again, filtered to that metric's
  events.  ``shared_exposures=True`` (the default, generous to this approach) materialises the
  deduplicated exposures once in a temp table that every metric query reads;
  ``False`` recomputes them in every query.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from warehouse_native.demo import story as S

CUPED_DAYS = 14


@dataclass(frozen=True)
class Window:
    start: dt.datetime          # experiment start (first exposure counted from here)
    end: dt.datetime            # analysis end (exclusive)

    @property
    def scan_start(self) -> dt.datetime:
        return self.start - dt.timedelta(days=CUPED_DAYS)


def window_of(cfg, as_of: dt.date) -> Window:
    start = dt.datetime.combine(cfg.experiment_start, dt.time())
    last = min(cfg.experiment_end, as_of)
    return Window(start, dt.datetime.combine(last + dt.timedelta(days=1), dt.time()))


def _ts(t: dt.datetime) -> str:
    return f"TIMESTAMP '{t:%Y-%m-%d %H:%M:%S}'"


def _event_of(filter_: str) -> str:
    # the benchmark metric sets only use filters of the form event_name = 'x'
    left, _, right = filter_.partition("=")
    assert left.strip() == "event_name", filter_
    return right.strip().strip("'")


@dataclass(frozen=True)
class UnitCol:
    agg: str                    # count | flag | sum
    window: str                 # post | pre
    event: str
    start_day: int = 0
    end_day: int | None = None

    def name(self, cols: list["UnitCol"]) -> str:
        return f"c{cols.index(self)}"


_AGG = {"count": "count", "sum": "sum", "conversion": "flag"}


def _unit_col(m: dict, window: str) -> UnitCol:
    w = m.get("window") or {}
    return UnitCol(_AGG[m["type"]], window, _event_of(m["filter"]),
                   w.get("start_day", 0) if window == "post" else 0,
                   w.get("end_day") if window == "post" else None)


@dataclass(frozen=True)
class MetricCols:
    name: str
    y: UnitCol
    d: UnitCol | None = None    # ratio denominator
    x: UnitCol | None = None    # CUPED covariate


def metric_columns(metrics: list[dict]) -> list[MetricCols]:
    by_name = {m["name"]: m for m in metrics}
    out = []
    for m in metrics:
        if m["type"] == "ratio":
            num, den = by_name[m["numerator"]], by_name[m["denominator"]]
            # the benchmark sets give ratios no CUPED
            out.append(MetricCols(m["name"], _unit_col(num, "post"), _unit_col(den, "post")))
        else:
            out.append(MetricCols(m["name"], _unit_col(m, "post"),
                                  x=_unit_col(m, "pre") if m.get("cuped") else None))
    return out


DAY_US = 86_400 * 1_000_000


def _cond(c: UnitCol, codes: dict[str, int] | None) -> str:
    """The unit column's row condition.  Plain shape: string compare + timestamp arithmetic
    per row and column.  Coded shape (``codes``): compares on a small-int event code ``k``
    and on ``dt`` = microseconds since the unit's first exposure, both computed once per row."""
    if codes is None:
        parts = [f"e.event_name = '{c.event}'"]
        if c.window == "pre":
            parts.append("e.ts < x.fe")     # lower bound (fe - 14 days) is in the join
        else:
            parts.append("e.ts >= x.fe" if not c.start_day else f"e.ts >= x.fe + interval {c.start_day} day")
            if c.end_day:
                parts.append(f"e.ts < x.fe + interval {c.end_day} day")
        return " and ".join(parts)
    parts = [f"e.k = {codes[c.event]}"]
    if c.window == "pre":
        parts.append("e.dt < 0")
    else:
        parts.append(f"e.dt >= {c.start_day * DAY_US}")
        if c.end_day:
            parts.append(f"e.dt < {c.end_day * DAY_US}")
    return " and ".join(parts)


def _unit_agg(c: UnitCol, alias: str, codes: dict[str, int] | None = None) -> str:
    cond = _cond(c, codes)
    if c.agg == "count":
        return f"count(*) filter (where {cond}) as {alias}"
    if c.agg == "sum":
        return f"sum(e.value) filter (where {cond}) as {alias}"
    return f"(count(*) filter (where {cond}) > 0)::int as {alias}"


def _exposures_cte(win: Window, dimension: bool, *, analysed_only: bool = True) -> str:
    variants = ", ".join(f"'{v}'" for v in S.EXPERIMENT_VARIANTS)
    dim = ", arg_min(country, ts) as country" if dimension else ""
    having = (f"\n  having min(group_name) = max(group_name) and min(group_name) in ({variants})"
              if analysed_only else "")
    return (f"select user_id as unit_id, min(group_name) as variant, min(ts) as fe{dim}\n"
            f"  from raw.exposures\n"
            f"  where experiment = '{S.EXPERIMENT}' and ts >= {_ts(win.start)} and ts < {_ts(win.end)}"
            f" and user_id is not null\n  group by user_id{having}")


def _moments(m: MetricCols, col: dict[UnitCol, str]) -> list[tuple[str, str]]:
    y = col[m.y]
    out = [("sum", f"sum({y})"), ("sum_sq", f"sum({y} * {y})")]
    if m.d is not None:
        d = col[m.d]
        out += [("den_sum", f"sum({d})"), ("den_sum_sq", f"sum({d} * {d})"),
                ("num_den_sum", f"sum({y} * {d})")]
    if m.x is not None:
        x = col[m.x]
        out += [("pre_sum", f"sum({x})"), ("pre_sum_sq", f"sum({x} * {x})"),
                ("sum_cross", f"sum({y} * {x})")]
    return out


def _final_select(mcols: list[MetricCols], col: dict[UnitCol, str], dimension: bool, source: str) -> str:
    if dimension:
        head = ("variant, case when grouping(country) = 0 then 'country' end as dimension,\n"
                "       case when grouping(country) = 0 then coalesce(country, '(null)') end as dimension_value")
        group = "group by grouping sets ((variant), (variant, country))"
    else:
        head = "variant, null::varchar as dimension, null::varchar as dimension_value"
        group = "group by variant"
    sums = ",\n       ".join(f"{expr} as {m.name}__{k}" for m in mcols for k, expr in _moments(m, col))
    return f"select {head},\n       count(*) as n,\n       {sums}\nfrom {source}\n{group}"


def _unit_columns(mcols: list[MetricCols]) -> list[UnitCol]:
    cols: list[UnitCol] = []
    for m in mcols:
        for c in (m.y, m.d, m.x):
            if c is not None and c not in cols:
                cols.append(c)
    return cols


def _bucket_cond(c: UnitCol, codes: dict[str, int], bounds: list[int]) -> str:
    if c.window == "pre":
        return f"k = {codes[c.event]} and b = 0"
    lo = bounds.index(c.start_day) + 1
    cond = f"k = {codes[c.event]} and b >= {lo}"
    if c.end_day:
        cond += f" and b < {bounds.index(c.end_day) + 1}"
    return cond


def _unit_query(cols: list[UnitCol], win: Window, exposures: str, *, shape: str = "coded") -> str:
    """Per-unit columns.  ``plain``: one aggregation, conditions on strings and timestamps;
    ``coded``: conditions on a small-int event code and the integer time since exposure;
    ``bucketed``: first count/sum per (unit, event code, window bucket) — the buckets are cut at
    every window boundary any column uses — then pivot those (fewer) rows into columns."""
    events = sorted({c.event for c in cols})
    has_pre = any(c.window == "pre" for c in cols)
    lower = "x.fe - interval 14 day" if has_pre else "x.fe"
    names = ", ".join(f"'{e}'" for e in events)
    where = (f"e.ts >= {_ts(win.scan_start)} and e.ts < {_ts(win.end)} and e.ts >= {lower}\n"
             f"    and e.event_name in ({names})")
    if shape == "plain":
        aggs = ",\n         ".join(_unit_agg(c, c.name(cols)) for c in cols)
        return (f"select x.unit_id,\n         {aggs}\n"
                f"  from raw.events e join {exposures} x on e.user_id = x.unit_id\n"
                f"  where {where}\n  group by x.unit_id")
    codes = {e: i for i, e in enumerate(events)}
    k = "case e.event_name " + " ".join(f"when '{e}' then {i}" for e, i in codes.items()) + " end"
    joined = (f"select x.unit_id, ({k})::utinyint as k,\n"
              f"           epoch_us(e.ts) - epoch_us(x.fe) as dt, e.value\n"
              f"    from raw.events e join {exposures} x on e.user_id = x.unit_id\n"
              f"    where {where}")
    if shape == "coded":
        aggs = ",\n         ".join(_unit_agg(c, c.name(cols), codes) for c in cols)
        return (f"select e.unit_id,\n         {aggs}\n"
                f"  from (\n    {joined}\n  ) e\n  group by e.unit_id")
    assert shape == "bucketed", shape
    bounds = sorted({0} | {c.start_day for c in cols if c.window == "post"}
                    | {c.end_day for c in cols if c.window == "post" and c.end_day})
    bucket = "case when dt < 0 then 0 " + " ".join(
        f"when dt < {b * DAY_US} then {i}" for i, b in enumerate(bounds[1:], start=1)) + f" else {len(bounds)} end"
    aggs = []
    for c in cols:
        cond = _bucket_cond(c, codes, bounds)
        if c.agg == "count":
            aggs.append(f"sum(cnt) filter (where {cond}) as {c.name(cols)}")
        elif c.agg == "sum":
            aggs.append(f"sum(val) filter (where {cond}) as {c.name(cols)}")
        else:
            aggs.append(f"(count(*) filter (where {cond}) > 0)::int as {c.name(cols)}")
    agg_sql = ",\n         ".join(aggs)
    return (f"select unit_id,\n         {agg_sql}\n"
            f"  from (\n    select unit_id, k, ({bucket})::utinyint as b, count(*) as cnt, sum(value) as val\n"
            f"    from (\n    {joined}\n    ) e\n    group by all\n  ) g\n  group by unit_id")


def _values(cols: list[UnitCol]) -> str:
    return ", ".join(f"coalesce(u.{c.name(cols)}, 0)::double as {c.name(cols)}" for c in cols)


def reference_sql(metrics: list[dict], win: Window, dimension: bool, *, shape: str = "coded") -> str:
    mcols = metric_columns(metrics)
    cols = _unit_columns(mcols)
    col = {c: c.name(cols) for c in cols}
    dim = ", x.country" if dimension else ""
    return (f"-- (c) single-pass reference: {len(metrics)} metrics, {len(cols)} distinct unit columns\n"
            f"with x as (\n  {_exposures_cte(win, dimension)}\n),\n"
            f"u as (\n  {_unit_query(cols, win, 'x', shape=shape)}\n),\n"
            f"v as (\n  select x.variant{dim}, {_values(cols)}\n  from x left join u using (unit_id)\n)\n"
            + _final_select(mcols, col, dimension, "v"))


PM_EXPOSURES = "__bench_pm_exposures"


def per_metric_sqls(metrics: list[dict], win: Window, dimension: bool, *, shared_exposures: bool = True,
                    shape: str = "coded") -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """(setup statements, [(metric, query)], teardown statements); ``shape`` as in
    :func:`_unit_query` (``plain`` is the portable one)."""
    setup: list[str] = []
    teardown: list[str] = []
    if shared_exposures:
        setup.append(f"create or replace temp table {PM_EXPOSURES} as\n{_exposures_cte(win, dimension)}")
        teardown.append(f"drop table if exists {PM_EXPOSURES}")
    queries = []
    dim = ", x.country" if dimension else ""
    for m in metric_columns(metrics):
        cols = _unit_columns([m])
        col = {c: c.name(cols) for c in cols}
        if shared_exposures:
            prefix, exposures = "", PM_EXPOSURES
        else:
            prefix, exposures = f"with x as (\n  {_exposures_cte(win, dimension)}\n),\n", "x"
        body = (f"{'with ' if not prefix else ''}u as (\n  {_unit_query(cols, win, exposures, shape=shape)}\n),\n"
                f"v as (\n  select x.variant{dim}, {_values(cols)}\n  from {exposures} x left join u using (unit_id)\n)\n")
        queries.append((m.name, f"-- (d) one query for metric {m.name}\n" + prefix + body
                        + _final_select([m], col, dimension, "v")))
    return setup, queries, teardown
