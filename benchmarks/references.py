"""Hand-written single-pass SQL (DuckDB) for any cell of the benchmark matrix (`matrix.py`).

A cell is a set of metrics of any type (count, sum, conversion, active_days,
daily_participation, count_distinct, mean, ratio, retention, funnel), CUPED on or off, text or integer unit ids,
0 or 1 dimension, over one or several event tables.  :func:`reference_sql` writes the fastest
single statement we found for it; :func:`per_metric_sqls` writes one query per metric (the
way many experimentation tools work).  Both return exactly wn's sufficient statistics (one row
per variant × slice, columns ``n`` and ``<metric>__<moment>``), so the matrix checks them
against wn's ``metric_aggregates`` before timing.

The reference statement:

* exposures deduplicated with ``arg_min`` (no window function, no sort);
* each event table read once, pre-filtered to the event names its metrics read and to the
  scanned window (``IN`` list and timestamp range, both pushed into the table scan), joined
  once to the exposures on the raw unit id (a BIGINT join for integer ids);
* one per-unit ``GROUP BY`` of ``FILTER`` aggregates: every distinct (aggregate, window, event
  set, value) is computed once and shared between metrics (a conversion is ``count > 0`` of
  the count a count or mean metric already needs);
* ``active_days`` / ``daily_participation`` from a per-unit bitmask of day indexes,
  ``bit_count(bit_or(1::BIGINT << day))`` (exact while the scanned window spans ≤ 63 days;
  longer windows fall back to ``count(distinct date)``), ``count_distinct`` with
  ``count(distinct …)``;
* ratio and mean metrics as numerator / denominator columns, the CUPED covariates (pre-window
  columns) in the same pass;
* one final ``GROUP BY GROUPING SETS`` over the per-unit values.

Shapes (``shape=``): ``join`` (default): a per-unit aggregate per event table, then the
exposures left-joined to them; ``left``: the exposures left-joined to the (pre-filtered,
for several tables ``UNION ALL``-ed) events and grouped once per unit, the window bounds only
in the ``FILTER`` clauses; ``union``: like ``join`` but several tables are read as one
``UNION ALL`` stream joined once.  ``matrix.py --ref-shapes`` times them against each other.

Percentile metrics (a quantile of events, not a per-unit value) have a reference of their own,
:func:`percentile_reference_sql`, written independently of wn's statement: ``quantile_cont``
for the quantile, the group's values as one sorted list (``list_sort(list(v))``) indexed at
the interval's fractions, and the share's clustered variance from per-unit residuals.

Not covered: metric ``window``s and winsorization (the matrix cells have neither).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from warehouse_native.demo import story as S

from .queries import CUPED_DAYS, Window, _ts

DAY_US = 86_400 * 1_000_000
BITMASK_MAX_DAYS = 63


@dataclass(frozen=True)
class MetricDef:
    """A metric as a matrix cell writes it into the wn catalog (filters are on event names)."""

    name: str
    type: str
    events: tuple[str, ...] = ()        # filter: event_name in (...)
    value: str | None = None            # SQL over the source's columns (sum, count_distinct, mean)
    numerator: str | None = None        # ratio
    denominator: str | None = None
    day: int | None = None              # retention: active on day N after exposure
    steps: tuple[tuple[str, ...], ...] = ()   # funnel: each step's event names, in order
    within_hours: float | None = None   # funnel: the last step within this long of the first

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(f"s{k + 1}" for k in range(len(self.steps)))
    percentile: float | None = None     # percentile: the quantile of ``value`` over the events

    @property
    def filter(self) -> str:
        if len(self.events) == 1:
            return f"event_name = '{self.events[0]}'"
        return "event_name in (" + ", ".join(f"'{e}'" for e in self.events) + ")"


@dataclass(frozen=True)
class Layout:
    """Where a cell's data lives: the exposure table and the event tables (name -> table, the
    event names it holds)."""

    exposures: str
    sources: tuple[tuple[str, str, tuple[str, ...]], ...]   # (source name, table, events)
    int_ids: bool = False

    def source_of(self, events: tuple[str, ...]) -> str:
        for name, _table, held in self.sources:
            if set(events) <= set(held):
                return name
        raise ValueError(f"no single event table holds all of {events}")

    def table(self, source: str) -> str:
        return next(t for n, t, _ in self.sources if n == source)


@dataclass(frozen=True)
class Spec:
    metrics: tuple[MetricDef, ...]             # analysed, in order
    catalog: dict[str, MetricDef]              # every metric by name (ratio parts)
    cuped: bool
    dimension: bool
    layout: Layout

    def only(self, metric: MetricDef) -> "Spec":
        return Spec((metric,), self.catalog, self.cuped, self.dimension, self.layout)


# -- unit columns -------------------------------------------------------------------------

@dataclass(frozen=True)
class UCol:
    agg: str            # count | sum | days | distinct | first (min ts)
    window: str         # post | pre
    source: str
    events: tuple[str, ...]
    value: str | None = None
    days: tuple[int, int] | None = None   # post rows in [fe + days[0], fe + days[1]) only


@dataclass
class _Cols:
    """Unit columns in the order first needed, and the SQL that reads each in the final select."""

    cols: list[UCol] = field(default_factory=list)
    ref: dict[UCol, str] = field(default_factory=dict)

    def need(self, c: UCol) -> str:
        if c not in self.ref:
            self.cols.append(c)
            self.ref[c] = f"c{len(self.cols) - 1}"
        return self.ref[c]


def _qualify(sql: str, alias: str) -> str:
    node = sqlglot.parse_one(sql, read="duckdb")
    for col in node.find_all(exp.Column):
        if not col.table:
            col.set("table", exp.to_identifier(alias))
    return node.sql(dialect="duckdb")


def _divisor(window: str, win: Window) -> str:
    """daily_participation's denominator, as wn defines it (README: days from the exposure date
    to the analysis end; for the covariate, the calendar dates the pre window touches)."""
    if window == "post":
        return f"greatest(date_diff('day', cast(x.fe as date), DATE '{win.end:%Y-%m-%d}'), 1)"
    return (f"greatest(date_diff('day', cast(x.fe - interval {CUPED_DAYS} day as date), cast(x.fe as date))"
            f" + case when cast(cast(x.fe as date) as timestamp) = x.fe then 0 else 1 end, 1)")


def _value(m: MetricDef, window: str, spec: Spec, cols: _Cols, win: Window) -> tuple[str, str | None]:
    """(per-unit value, per-unit denominator or None) of a metric in a window, as SQL over the
    unit columns (``cols.need`` registers them)."""
    if m.type == "ratio":
        y, _ = _value(spec.catalog[m.numerator], window, spec, cols, win)
        d, _ = _value(spec.catalog[m.denominator], window, spec, cols, win)
        return y, d
    src = spec.layout.source_of(m.events)

    def col(agg: str, value: str | None = None) -> str:
        return cols.need(UCol(agg, window, src, m.events, value))

    if m.type == "count":
        return f"coalesce({col('count')}, 0)::double", None
    if m.type == "sum":
        return f"coalesce({col('sum', m.value)}, 0)::double", None
    if m.type == "conversion":
        return f"(coalesce({col('count')}, 0) > 0)::double", None
    if m.type == "active_days":
        return f"coalesce({col('days')}, 0)::double", None
    if m.type == "daily_participation":
        return f"coalesce({col('days')}, 0)::double / {_divisor(window, win)}", None
    if m.type == "count_distinct":
        return f"coalesce({col('distinct', m.value)}, 0)::double", None
    if m.type == "mean":
        return f"coalesce({col('sum', m.value)}, 0)::double", f"coalesce({col('count')}, 0)::double"
    if m.type == "retention":
        eligible = f"(x.fe + interval {m.day + 1} day <= {_ts(win.end)})"
        if window == "pre":
            return f"(coalesce({col('count')}, 0) > 0 and {eligible})::double", f"{eligible}::double"
        day = cols.need(UCol("count", "post", src, m.events, days=(m.day, m.day + 1)))
        return f"(coalesce({day}, 0) > 0 and {eligible})::double", f"{eligible}::double"
    if m.type == "funnel":
        if window == "pre":
            return None, None
        return funnel_steps(m, src, cols)[-1], None
    raise ValueError(f"no reference for metric type {m.type!r}: add it to benchmarks/references.py")


def funnel_steps(m: MetricDef, src: str, cols: _Cols) -> list[str]:
    """Per step, 1.0 when the unit completed it (wn's first-row definition, README)."""
    times = [cols.need(UCol("first", "post", src, events)) for events in m.steps]
    out = []
    for k in range(len(times)):
        conds = [f"{t} is not null" for t in times[:k + 1]]
        conds += [f"{times[j + 1]} >= {times[j]}" for j in range(k)]
        if m.within_hours is not None and k:
            conds.append(f"{times[k]} < {times[0]} + interval {round(m.within_hours * 3600)} second")
        out.append(f"({' and '.join(conds)})::double")
    return out


def _moments(y: str, d: str | None, x: str | None, xm: str | None) -> list[tuple[str, tuple[str, ...]]]:
    """wn's sufficient statistics (``warehouse_native/sql/render.py::_moments``): each the sum of
    a per-unit value or of a product of two."""
    out = [("sum", (y,)), ("sum_sq", (y, y))]
    if d is not None:
        out += [("den_sum", (d,)), ("den_sum_sq", (d, d)), ("num_den_sum", (y, d))]
    if x is not None:
        out += [("pre_sum", (x,)), ("pre_sum_sq", (x, x)), ("sum_cross", (y, x))]
        if d is not None:
            out += [("pre_den_sum", (xm,)), ("pre_den_sum_sq", (xm, xm)),
                    ("pre_num_den_sum", (x, xm)), ("num_pre_den_sum", (y, xm)),
                    ("den_pre_sum", (d, x)), ("den_pre_den_sum", (d, xm))]
    return out


# -- the statement ------------------------------------------------------------------------

def exposures_sql(spec: Spec, win: Window) -> str:
    variants = ", ".join(f"'{v}'" for v in S.EXPERIMENT_VARIANTS)
    dim = ", arg_min(country, ts) as country" if spec.dimension else ""
    return (f"select user_id as unit_id, min(group_name) as variant, min(ts) as fe{dim}\n"
            f"  from {spec.layout.exposures}\n"
            f"  where experiment = '{S.EXPERIMENT}' and ts >= {_ts(win.start)} and ts < {_ts(win.end)}"
            f" and user_id is not null\n  group by user_id\n"
            f"  having min(group_name) = max(group_name) and min(group_name) in ({variants})")


def _scan_start(spec: Spec, win: Window) -> dt.datetime:
    return win.scan_start if spec.cuped else win.start


def _day_index(spec: Spec, win: Window) -> str:
    start = _scan_start(spec, win)
    return f"((epoch_us(e.ts) - {int(start.replace(tzinfo=dt.timezone.utc).timestamp()) * 1_000_000}) // {DAY_US})"


def _agg(c: UCol, spec: Spec, win: Window, all_events: set[str], has_pre: bool, bounded: bool) -> str:
    """One unit column's aggregate over the joined rows ``e`` (with ``x.fe``).  ``bounded``:
    the rows are already limited to [fe - cuped days, end) (or [fe, end) without pre columns)."""
    conds = []
    if set(c.events) != all_events:
        conds.append("e.event_name = '" + c.events[0] + "'" if len(c.events) == 1 else
                     "e.event_name in (" + ", ".join(f"'{e}'" for e in c.events) + ")")
    if c.window == "pre":
        conds.append("e.ts < x.fe")
        if not bounded:
            conds.append(f"e.ts >= x.fe - interval {CUPED_DAYS} day")
    elif c.days:
        conds += [f"e.ts >= x.fe + interval {c.days[0]} day", f"e.ts < x.fe + interval {c.days[1]} day"]
    elif has_pre or not bounded:
        conds.append("e.ts >= x.fe")
    filt = f" filter (where {' and '.join(conds)})" if conds else ""
    if c.agg == "count":
        return f"count(*){filt}"
    if c.agg == "sum":
        return f"sum({_qualify(c.value, 'e')}){filt}"
    if c.agg == "distinct":
        return f"count(distinct {_qualify(c.value, 'e')}){filt}"
    if c.agg == "first":
        return f"min(e.ts){filt}"
    assert c.agg == "days"
    span = (win.end - _scan_start(spec, win)).days
    if span <= BITMASK_MAX_DAYS:
        return f"bit_count(bit_or(1::BIGINT << {_day_index(spec, win)}){filt})"
    return f"count(distinct cast(e.ts as date)){filt}"


def _events_where(spec: Spec, win: Window, events: set[str], held: tuple[str, ...], alias: str = "e") -> str:
    where = f"{alias}.ts >= {_ts(_scan_start(spec, win))} and {alias}.ts < {_ts(win.end)}"
    if set(held) - events:
        names = ", ".join(f"'{e}'" for e in sorted(events))
        where += f" and {alias}.event_name in ({names})"
    return where


def reference_sql(spec: Spec, win: Window, *, shape: str = "join", exposures: str | None = None) -> str:
    """The single statement.  ``exposures``: a table holding :func:`exposures_sql`'s rows
    (per-metric queries share one); by default it is a CTE."""
    if any(m.type == "percentile" for m in spec.metrics):
        return percentile_reference_sql(spec, win, exposures=exposures)
    cols = _Cols()
    per_metric = []
    for m in spec.metrics:
        y, d = _value(m, "post", spec, cols, win)
        x = xm = None
        if spec.cuped:
            x, xm = _value(m, "pre", spec, cols, win)
        per_metric.append((m.name, _moments(y, d, x, xm)))
        if m.type == "funnel":   # and its per-step read-outs, as wn publishes them
            done = funnel_steps(m, spec.layout.source_of(m.events), cols)
            for k, step in enumerate(m.step_names):
                per_metric.append((f"{m.name}__{step}", _moments(done[k], done[k - 1] if k else None, None, None)))
    has_pre = any(c.window == "pre" for c in cols.cols)
    lower = f"x.fe - interval {CUPED_DAYS} day" if has_pre else "x.fe"
    xrel = exposures or "x"
    head = f"with x as (\n  {exposures_sql(spec, win)}\n)" if exposures is None else ""
    sources = [s for s, _t, _h in spec.layout.sources if any(c.source == s for c in cols.cols)]

    def events_of(srcs) -> set[str]:
        return {e for c in cols.cols if c.source in srcs for e in c.events}

    def select_cols(srcs, bounded: bool, all_events: set[str]) -> str:
        out = []
        for c in cols.cols:
            if c.source in srcs:
                out.append(f"{_agg(c, spec, win, all_events, has_pre, bounded)} as {cols.ref[c]}")
        return ",\n         ".join(out)

    def scan(src: str, alias: str = "e", select: str = "*") -> str:
        held = next(h for n, _t, h in spec.layout.sources if n == src)
        return (f"select {select} from {spec.layout.table(src)} {alias} "
                f"where {_events_where(spec, win, events_of([src]), held, alias)}")

    dim_col = ", x.country" if spec.dimension else ""
    ctes: list[str] = []
    if shape in ("join", "union"):
        groups = [[s] for s in sources] if shape == "join" else [sources]
        joins = []
        for i, srcs in enumerate(groups):
            if len(srcs) == 1:
                held = next(h for n, _t, h in spec.layout.sources if n == srcs[0])
                rel = f"{spec.layout.table(srcs[0])} e"
                where = _events_where(spec, win, events_of(srcs), held)
            else:
                rel = "(\n    " + "\n    union all ".join(
                    scan(s, "s", "s.user_id, s.ts, s.event_name, s.value") for s in srcs) + "\n  ) e"
                where = f"e.ts >= {_ts(_scan_start(spec, win))}"
            ctes.append(f"u{i} as (\n  select x.unit_id,\n         {select_cols(srcs, True, events_of(srcs))}\n"
                        f"  from {rel} join {xrel} x on e.user_id = x.unit_id\n"
                        f"  where {where} and e.ts >= {lower}\n  group by x.unit_id\n)")
            joins.append(f"left join u{i} using (unit_id)")
        # a column's alias is unique across the per-source aggregates (c<i>): no qualification needed
        values_from = f"{xrel} x " + " ".join(joins)
    elif shape == "left":
        if len(sources) == 1:
            ev = scan(sources[0], "s", "s.user_id, s.ts, s.event_name, s.value")
        else:
            ev = "\n    union all ".join(scan(s, "s", "s.user_id, s.ts, s.event_name, s.value") for s in sources)
        ctes.append(f"u as (\n  select x.unit_id,\n         {select_cols(sources, False, events_of(sources))}\n"
                    f"  from {xrel} x left join (\n    {ev}\n  ) e on e.user_id = x.unit_id\n"
                    f"  group by x.unit_id\n)")
        values_from = f"{xrel} x left join u using (unit_id)"
    else:
        raise ValueError(f"unknown reference shape {shape!r}")
    # the per-unit values (each distinct expression once), then the sums of them and their products
    values: dict[str, str] = {}
    sums = []
    for name, moments in per_metric:
        for k, factors in moments:
            refs = [values.setdefault(f, f"v{len(values)}") for f in factors]
            sums.append(f"sum({' * '.join(refs)}) as {name}__{k}")
    vsel = ",\n         ".join(f"{e} as {v}" for e, v in values.items())
    ctes.append(f"v as (\n  select x.variant{dim_col},\n         {vsel}\n  from {values_from}\n)")
    if spec.dimension:
        head_sel = ("variant, case when grouping(country) = 0 then 'country' end as dimension,\n"
                    "       case when grouping(country) = 0 then coalesce(country, '(null)') end as dimension_value")
        group = "group by grouping sets ((variant), (variant, country))"
    else:
        head_sel = "variant, null::varchar as dimension, null::varchar as dimension_value"
        group = "group by variant"
    body = ",\n".join(ctes)
    with_ = f"{head},\n{body}" if head else f"with {body}"
    return (f"-- single-pass reference ({shape}): {len(spec.metrics)} metrics, {len(cols.cols)} unit columns\n"
            f"{with_}\nselect {head_sel},\n       count(*) as n,\n       " + ",\n       ".join(sums)
            + f"\nfrom v\n{group}")


PM_EXPOSURES = "__bench_matrix_pm_exposures"


def per_metric_sqls(spec: Spec, win: Window) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """(setup, [(metric, query)], teardown): the exposures materialised once in a temporary
    table (generous to this approach), then one query per metric that joins it to the metric's
    event table(s) again, each the reference statement for that metric alone."""
    setup = [f"create or replace temp table {PM_EXPOSURES} as\n{exposures_sql(spec, win)}"]
    queries = [(m.name, f"-- one query for metric {m.name}\n"
                + reference_sql(spec.only(m), win, exposures=PM_EXPOSURES)) for m in spec.metrics]
    return setup, queries, [f"drop table if exists {PM_EXPOSURES}"]


def percentile_reference_sql(spec: Spec, win: Window, *, exposures: str | None = None) -> str:
    """A percentile metric's numbers per variant (× country): ``n`` (units), the share of events
    at or below the quantile as ratio sums (``sum`` = Σ below, ``den_sum`` = Σ events, ...), the
    quantile and the outer interval [Q(p − z·σ_F), Q(p + z·σ_F)] (docs/statistics.md, section 17),
    written independently of wn's rank-based statement (see the module docstring).  One
    percentile metric per statement."""
    if len(spec.metrics) != 1 or spec.metrics[0].type != "percentile":
        raise ValueError("the percentile reference takes exactly one percentile metric (a cell of its own)")
    import statistics

    m = spec.metrics[0]
    p = float(m.percentile)
    z = statistics.NormalDist().inv_cdf(0.975)
    table = spec.layout.table(spec.layout.source_of(m.events))
    events = ", ".join(f"'{e}'" for e in m.events)
    head = f"with x as (\n  {exposures_sql(spec, win)}\n),\n" if exposures is None else "with "
    xrel = exposures or "x"
    slice_rows = "union all select variant, coalesce(country, '(null)') as sl, unit_id, v from ev" if spec.dimension else ""
    slice_units = (f"union all select variant, coalesce(country, '(null)') as sl, count(*) as units from {xrel} "
                   "group by all" if spec.dimension else "")
    country = ", x.country" if spec.dimension else ""

    def at(frac: str) -> str:   # the interpolated value of the sorted list at a fraction
        h = f"((b.events - 1) * {frac})"
        k = f"cast(floor({h}) as bigint)"
        lo = f"list_extract(b.vals, {k} + 1)"
        hi = f"list_extract(b.vals, least({k} + 2, b.events))"
        return f"{lo} + ({h} - {k}) * ({hi} - {lo})"

    return f"""-- percentile reference: {m.name} (p = {p}), quantile_cont + sorted lists
{head}ev as (
  select x.unit_id, x.variant{country}, e.value::double as v
  from {table} e join {xrel} x on e.user_id = x.unit_id
  where e.ts >= {_ts(win.start)} and e.ts < {_ts(win.end)} and e.ts >= x.fe
    and e.event_name in ({events}) and e.value is not null
),
s as (select variant, 'all' as sl, unit_id, v from ev {slice_rows}),
xs as (select variant, 'all' as sl, count(*) as units from {xrel} group by all {slice_units}),
g as (select variant, sl, count(*) as events, quantile_cont(v, {p!r}) as q, list_sort(list(v)) as vals
      from s group by all),
u as (select s.variant, s.sl, s.unit_id, count(*)::double as n, count(*) filter (where s.v <= g.q)::double as a
      from s join g using (variant, sl) group by all),
f as (select variant, sl, sum(a) as a_sum, sum(a * a) as a_sq, sum(n) as n_sum, sum(n * n) as n_sq,
             sum(a * n) as an from u group by all),
r as (select u.variant, u.sl, sum(power(u.a - f.a_sum / f.n_sum * u.n, 2)) as resid
      from u join f using (variant, sl) group by all),
b as (select g.variant, g.sl, g.events, g.q, g.vals, xs.units,
             sqrt(r.resid * xs.units / ((xs.units - 1) * f.n_sum * f.n_sum)) as sigma
      from g join f using (variant, sl) join r using (variant, sl) join xs using (variant, sl))
select xs.variant,
       case when xs.sl = 'all' then null else 'country' end as dimension,
       case when xs.sl = 'all' then null else xs.sl end as dimension_value,
       xs.units as n,
       f.a_sum as {m.name}__sum, f.a_sq as {m.name}__sum_sq, f.n_sum as {m.name}__den_sum,
       f.n_sq as {m.name}__den_sum_sq, f.an as {m.name}__num_den_sum,
       b.q as {m.name}__quantile,
       {at(f"greatest({p!r} - {z!r} * b.sigma, 0)")} as {m.name}__quantile_lower,
       {at(f"least({p!r} + {z!r} * b.sigma, 1)")} as {m.name}__quantile_upper
from xs left join f using (variant, sl) left join b using (variant, sl)
"""
