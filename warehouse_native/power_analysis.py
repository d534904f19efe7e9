"""Power analysis from the warehouse: how many units and days an experiment on a metric needs.

The population is every unit active in the metric's source over the last ``days`` days up to
``--as-of``; each unit is measured from its first row in that period to the end, as an
experiment of that length would measure it.  Only the per-unit mean and variance leave the
warehouse; the sample size comes from ``stats.power``.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from . import stats
from .errors import CompileError
from .plan import POWER_VARIANT, build_power_plan
from .project import Project
from .results import moments_of
from .sql import compile_plan, split_rows
from .sql.models import model_views
from .stats.arm import estimate_arm
from .warehouse import Adapter


@dataclass(frozen=True)
class PowerRow:
    mde: float
    units_per_variant: list[int]
    total_units: int
    days: int | None


@dataclass(frozen=True)
class PowerReport:
    metric: str
    unit: str
    period_days: int
    units: int
    mean: float
    std: float
    daily_new_units: float
    weights: tuple[float, ...]
    confidence: float
    power: float
    rows: list[PowerRow]


def measure_population(project: Project, adapter: Adapter, metric: str, *, unit: str, as_of: dt.date,
                       days: int, schema: str) -> tuple[stats.Moments, int]:
    plan = build_power_plan(project, metric, unit=unit, as_of=as_of, days=days, schema=schema)
    stage = f"{schema}.__wn_power"
    compiled = compile_plan(plan, dialect=adapter.dialect, strategy="cte", stage_prefix=stage)
    adapter.ensure_schema(schema)
    for _, sql in model_views(plan, adapter.dialect, schema):
        adapter.execute(sql)
    created: list[str] = []
    try:
        rows = []
        for stmt in compiled.statements:
            if stmt.action in ("create_table", "create_temp"):
                adapter.execute(f"DROP TABLE IF EXISTS {stmt.relation}")
                created.append(stmt.relation)
            if stmt.action == "query":
                rows = adapter.fetch(stmt.sql)
            else:
                adapter.execute(stmt.sql)
    finally:
        for rel in created:
            adapter.execute(f"DROP TABLE IF EXISTS {rel}")
    if compiled.combined:   # (its rows also hold the exposure counts)
        rows = split_rows(plan, rows)[0]
    row = next((r for r in rows if r["variant"] == POWER_VARIANT and r["dimension"] is None), None)
    if row is None or not row["n"]:
        raise CompileError(f"no unit has rows for metric '{metric}' in the {days} days up to {as_of}; "
                           "check --as-of and --days")
    return moments_of(row, plan.metrics[0]), days


def power_report(moments: stats.Moments, *, metric: str, unit: str, days: int, mdes: list[float],
                 weights: tuple[float, ...], confidence: float, power: float,
                 alternative: str = "two-sided") -> PowerReport:
    arm = estimate_arm(moments, covariate=False)
    if arm is None:
        raise CompileError(f"metric '{metric}' has fewer than 2 units or a zero denominator in the period")
    daily = moments.n / days
    rows = []
    for mde in mdes:
        res = stats.sample_size(mean=arm.point, variance=arm.var, mde=mde, confidence=confidence,
                                power=power, weights=weights, alternative=alternative)
        rows.append(PowerRow(mde, list(res.units_per_variant), res.total_units,
                             stats.days_needed(res.total_units, daily) if daily > 0 else None))
    return PowerReport(metric, unit, days, moments.n, arm.point, math.sqrt(arm.var), daily, weights,
                       confidence, power, rows)
