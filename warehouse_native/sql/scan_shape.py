"""The shape of one source scan: narrow pre-aggregation, then one pivot per unit.

A scan computes many unit columns from the same joined rows.  Evaluating every column's
filter and window inside its own aggregate costs (rows x columns).  Instead:

1. each joined row gets a filter mask (bit k set when the k-th distinct filter holds) and a
   window bucket (0 = before exposure; then one bucket per span between the window
   boundaries any column uses), plus the values that columns sum or count distinct;
2. rows are grouped by unit, mask and bucket (and date / distinct value where a column
   needs them) with just ``count(*)`` and one ``sum`` per value;
3. those few rows per unit are pivoted into the unit columns with ``FILTER`` clauses on the
   mask and bucket.

Metrics sharing a filter (a metric and its CUPED covariate, a ratio's parts) share a bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import CompileError
from ..plan import UnitColumn
from .expressions import qualify

MAX_FILTERS = 62   # bits of a BIGINT mask


@dataclass
class ScanShape:
    """Filters, values and window buckets of a set of unit columns (see module docstring)."""

    columns: list[UnitColumn]
    timestamp: str
    filters: dict[str, int] = field(default_factory=dict)          # qualified SQL -> bit
    sums: dict[str, str] = field(default_factory=dict)             # value SQL -> alias (summed)
    distinct: dict[str, str] = field(default_factory=dict)         # value SQL -> alias (group key)
    bounds: list[int] = field(default_factory=list)                # post-window day boundaries > 0
    needs_day: bool = False
    needs_time: bool = False      # a funnel step's first row time (min of the row times)

    def __post_init__(self) -> None:
        edges: set[int] = set()
        for c in self.columns:
            if c.filter:
                self.filters.setdefault(qualify(c.filter, "s"), len(self.filters))
            if c.value and c.agg == "sum":
                self.sums.setdefault(qualify(c.value, "s"), f"s{len(self.sums)}")
            if c.value and c.agg == "count_distinct":
                self.distinct.setdefault(qualify(c.value, "s"), f"dv{len(self.distinct)}")
            if c.window == "post":
                edges.update(x for x in (c.start_day, c.end_day) if x)
            self.needs_day = self.needs_day or c.agg == "distinct_days"
            self.needs_time = self.needs_time or c.agg == "first_ts"
        if len(self.filters) > MAX_FILTERS:
            raise CompileError(f"a source has more than {MAX_FILTERS} distinct metric filters; "
                               "split its metrics over two sources")
        self.bounds = sorted(edges)

    # -- level 1: one row per joined source row ----------------------------------------
    def row_columns(self) -> list[str]:
        t = f"s.{self.timestamp}"
        out = []
        if self.filters:
            out.append(" + ".join(f"case when {sql} then {1 << bit} else 0 end"
                                  for sql, bit in self.filters.items()) + " as fmask")
        whens = [f"when {t} < e.first_exposure_at then 0"]
        whens += [f"when {t} < e.first_exposure_at + interval {b} day then {i}"
                  for i, b in enumerate(self.bounds, start=1)]
        out.append(f"case {' '.join(whens)} else {len(self.bounds) + 1} end as bucket")
        if self.needs_day:
            out.append(f"cast({t} as date) as d")
        if self.needs_time:
            out.append(f"{t} as t_value")
        out += [f"{sql} as {alias}" for sql, alias in self.distinct.items()]
        out += [f"{sql} as {alias}_value" for sql, alias in self.sums.items()]
        return out

    # -- level 2 and 3: grouped rows, then one pivot per unit ----------------------------
    def _groups(self, joined: str, keys: list[str], *, values: bool) -> str:
        """Rows grouped by ``keys`` + mask + bucket (+ date) (+ distinct values)."""
        cols = list(keys) + (["fmask"] if self.filters else []) + ["bucket"]
        if self.needs_day and not values:
            cols.append("d")
        if values:
            cols += list(self.distinct.values())
        aggs = [] if values else (["count(*) as cnt"] + [f"sum({a}_value) as {a}" for a in self.sums.values()]
                                  + (["min(t_value) as t_min"] if self.needs_time else []))
        select = ", ".join([f"r.{c}" for c in cols] + aggs)
        return f"select {select} from {joined} as r group by {', '.join(f'r.{c}' for c in cols)}"

    def condition(self, c: UnitColumn) -> str:
        """The column's filter bit and window buckets, on grouped rows ``g``."""
        parts = []
        if c.filter:
            bit = 1 << self.filters[qualify(c.filter, "s")]
            parts.append(f"(g.fmask & {bit}) <> 0")
        if c.window == "pre":
            parts.append("g.bucket = 0")
        else:
            lo = self.bounds.index(c.start_day) + 2 if c.start_day else 1
            parts.append(f"g.bucket >= {lo}")
            if c.end_day:
                parts.append(f"g.bucket < {self.bounds.index(c.end_day) + 2}")
        return " and ".join(parts)

    def _partial(self, c: UnitColumn, *, day_flag: bool) -> str:
        """A column's aggregate over grouped rows; ``day_flag``: active days become a flag."""
        cond = self.condition(c)
        if c.agg == "count":
            return f"sum(g.cnt) filter (where {cond})"
        if c.agg == "sum":
            return f"sum(g.{self.sums[qualify(c.value, 's')]}) filter (where {cond})"
        if c.agg == "flag" or (c.agg == "distinct_days" and day_flag):
            return f"max(1) filter (where {cond})"
        if c.agg == "count_distinct":
            return f"count(distinct g.{self.distinct[qualify(c.value, 's')]}) filter (where {cond})"
        if c.agg == "first_ts":
            return f"min(g.t_min) filter (where {cond})"
        raise CompileError(f"unknown aggregation '{c.agg}' in plan column {c.name}")

    def pivot(self, joined: str, keys: list[str], columns: list[UnitColumn], *, per_day: bool = False) -> str:
        """One row per ``keys`` with ``columns``, from the joined rows in ``joined``.

        Active days never need COUNT(DISTINCT): rows are grouped per date first, each
        column's day becomes a flag, and the flags are summed per unit.  ``per_day``: the
        caller's keys include the date and it wants the per-day partials themselves.
        """
        plain = [c for c in columns if c.agg != "count_distinct"]
        valued = [c for c in columns if c.agg == "count_distinct"]
        key_list = ", ".join(f"g.{k}" for k in keys)
        parts = []
        if plain or not valued:
            grouped = self._groups(joined, keys, values=False)
            if self.needs_day and not per_day:
                day_cols = ", ".join(f"{self._partial(c, day_flag=True)} as {c.name}" for c in plain)
                daily = (f"select {key_list}, g.d{', ' + day_cols if day_cols else ''} "
                         f"from ({grouped}) as g group by {key_list}, g.d")
                roll = {"count": "sum", "sum": "sum", "flag": "max", "distinct_days": "sum", "first_ts": "min"}
                outer = ", ".join(f"{roll[c.agg]}(g.{c.name}) as {c.name}" for c in plain)
                parts.append(f"select {key_list}{', ' + outer if outer else ''} from ({daily}) as g "
                             f"group by {key_list}")
            else:
                cols = ", ".join(f"{self._partial(c, day_flag=per_day)} as {c.name}" for c in plain)
                parts.append(f"select {key_list}{', ' + cols if cols else ''} from ({grouped}) as g "
                             f"group by {key_list}")
        if valued:
            grouped = self._groups(joined, keys, values=True)
            cols = ", ".join(f"{self._partial(c, day_flag=False)} as {c.name}" for c in valued)
            parts.append(f"select {key_list}, {cols} from ({grouped}) as g group by {key_list}")
        if len(parts) == 1:
            return parts[0]
        on = " and ".join(f"a.{k} = b.{k}" for k in keys)
        names = [f"a.{k}" for k in keys] + [f"a.{c.name}" for c in plain] + [f"b.{c.name}" for c in valued]
        # every key of the value pivot also has a row in the plain pivot (same joined rows)
        return f"select {', '.join(names)} from ({parts[0]}) as a left join ({parts[1]}) as b on {on}"
