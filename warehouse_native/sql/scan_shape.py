"""The shape of one source scan: every filter, value and window evaluated once per row.

A scan computes many unit columns from the same joined rows.  Instead of repeating each
column's filter and window test inside its aggregate, the inner query projects every
distinct filter, value expression and window as a column (``f0``, ``v0``, ``w0`` ...) and the
aggregates combine them: ``count(*) filter (where r.f0 and r.w0)``.  Metrics that share a
filter (a metric and its CUPED covariate, a ratio's parts) share the projected column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import CompileError
from ..plan import UnitColumn
from .expressions import qualify


def _window_key(c: UnitColumn) -> tuple:
    return (c.window, c.start_day, c.end_day) if c.window == "post" else ("pre",)


@dataclass
class ScanShape:
    """Aliases for the distinct filters, values and windows of a set of unit columns."""

    columns: list[UnitColumn]
    timestamp: str
    filters: dict[str, str] = field(default_factory=dict)   # qualified SQL -> alias
    values: dict[str, str] = field(default_factory=dict)
    windows: dict[tuple, str] = field(default_factory=dict)
    needs_day: bool = False

    def __post_init__(self) -> None:
        for c in self.columns:
            if c.filter:
                self.filters.setdefault(qualify(c.filter, "s"), f"f{len(self.filters)}")
            if c.value:
                self.values.setdefault(qualify(c.value, "s"), f"v{len(self.values)}")
            self.windows.setdefault(_window_key(c), f"w{len(self.windows)}")
            self.needs_day = self.needs_day or c.agg == "distinct_days"

    def _window_sql(self, key: tuple) -> str:
        t = f"s.{self.timestamp}"
        if key[0] == "pre":
            return f"{t} < e.first_exposure_at"
        _, start, end = key
        lo = "e.first_exposure_at" if not start else f"e.first_exposure_at + interval {start} day"
        text = f"{t} >= {lo}"
        if end:
            text += f" and {t} < e.first_exposure_at + interval {end} day"
        return text

    def projections(self) -> list[str]:
        """``expression as alias`` for the inner query (after ``e.unit_id``)."""
        out = [f"({sql}) as {alias}" for sql, alias in self.filters.items()]
        out += [f"{sql} as {alias}" for sql, alias in self.values.items()]
        out += [f"({self._window_sql(key)}) as {alias}" for key, alias in self.windows.items()]
        if self.needs_day:
            out.append(f"cast(s.{self.timestamp} as date) as d")
        return out

    def condition(self, c: UnitColumn) -> str:
        parts = []
        if c.filter:
            parts.append(f"r.{self.filters[qualify(c.filter, 's')]}")
        parts.append(f"r.{self.windows[_window_key(c)]}")
        return " and ".join(parts)

    def aggregate(self, c: UnitColumn, *, per_day: bool = False) -> str:
        """The column's aggregate; ``per_day``: its partial within one day (active day -> flag)."""
        cond = self.condition(c)
        agg = "flag" if per_day and c.agg == "distinct_days" else c.agg
        if agg == "count":
            return f"count(*) filter (where {cond})"
        if agg == "flag":
            return f"max(1) filter (where {cond})"
        value = f"r.{self.values[qualify(c.value, 's')]}" if c.value else None
        if agg == "sum":
            return f"sum({value}) filter (where {cond})"
        if agg == "count_distinct":
            return f"count(distinct {value}) filter (where {cond})"
        if agg == "distinct_days":
            return f"count(distinct r.d) filter (where {cond})"
        raise CompileError(f"unknown aggregation '{c.agg}' in plan column {c.name}")
