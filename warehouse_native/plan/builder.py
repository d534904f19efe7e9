"""Build an :class:`AnalysisPlan` from a validated project, one experiment and a date."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from ..errors import CompileError
from ..project import Experiment, Metric, Project, Source
from ..project.models import render_sql
from ..decision import Rule
from ..project.config_models import COVARIATE_SUFFIX
from .analysis_plan import AnalysisPlan, CovariatePlan, ExposurePlan, MetricPlan, SourceScan, UnitColumn

_AGG_OF = {
    "count": "count",
    "sum": "sum",
    "conversion": "flag",
    "active_days": "distinct_days",
    "daily_participation": "distinct_days",
    "count_distinct": "count_distinct",
}


def source_relation(project: Project, source: Source, schema: str) -> str:
    if source.table:
        return source.table
    sql, _, _ = render_sql(source.sql or "", schema=schema,
                           source_relation=lambda n: source_relation(project, project.sources[n], schema))
    return f"({sql})"


def render_models(project: Project, schema: str) -> tuple[tuple[str, str], ...]:
    out = []
    for name in project.model_order:
        sql, _, _ = render_sql(project.models[name].raw_sql, schema=schema,
                               source_relation=lambda n: source_relation(project, project.sources[n], schema))
        out.append((name, sql))
    return tuple(out)


def _measure(metric: Metric, prefix: str, window: str, cuped_days: int) -> tuple[UnitColumn, ...]:
    """Unit columns giving a non-ratio metric's per-unit value (mean: numerator + denominator)."""
    start = metric.window.start_day if metric.window and window == "post" else 0
    end = metric.window.end_day if metric.window and window == "post" else None
    base = dict(metric=metric.name, window=window, filter=metric.filter, start_day=start, end_day=end)
    if metric.type == "mean":
        return (UnitColumn(name=prefix, agg="sum", value=metric.value, **base),
                UnitColumn(name=prefix + "__den" if window == "post" else prefix + "_den",
                           agg="count", **base))
    finish = "none"
    if metric.type == "daily_participation":
        finish = "per_post_day" if window == "post" else "per_pre_day"
    return (UnitColumn(name=prefix, agg=_AGG_OF[metric.type], value=metric.value, finish=finish, **base),)


def definition_hash(metric: Metric, project: Project) -> str:
    """Stable hash of everything that changes a metric's numbers."""
    parts = [metric.model_dump(exclude={"description", "owner", "tags", "direction", "guardrail"})]
    if metric.type == "ratio":
        parts += [project.metrics[metric.numerator].model_dump(exclude={"description", "owner", "tags"}),
                  project.metrics[metric.denominator].model_dump(exclude={"description", "owner", "tags"})]
    else:
        parts.append(project.sources[metric.source].model_dump(exclude={"description"}))
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def covariate_metric(name: str) -> str:
    """The catalog metric a covariate names: ``signups__pre`` -> ``signups``."""
    return name.removesuffix(COVARIATE_SUFFIX)


def covariate_plans(project: Project, experiment: Experiment) -> tuple[CovariatePlan, ...]:
    """``analysis.covariates`` as plan objects, each capped as its metric's ``winsorize`` says."""
    out = []
    for name in experiment.analysis.covariates:
        w = project.metrics[covariate_metric(name)].winsorize
        out.append(CovariatePlan(name=name, winsor_lower=w.lower if w else None,
                                 winsor_upper=w.upper if w else None))
    return tuple(out)


def metric_roles(project: Project, experiment: Experiment) -> list[tuple[Metric, str]]:
    roles: list[tuple[Metric, str]] = []
    seen: set[str] = set()
    for role, names in (("primary", experiment.primary_metrics),
                        ("secondary", experiment.secondary_metrics),
                        ("guardrail", experiment.guardrail_metrics)):
        for name in names:
            if name not in seen:
                roles.append((project.metrics[name], role))
                seen.add(name)
    for metric in project.guardrails_for(experiment.unit):
        if metric.name not in seen:
            roles.append((metric, "guardrail"))
            seen.add(metric.name)
    return roles


def build_plan(project: Project, experiment: Experiment, *, as_of: dt.date, schema: str) -> AnalysisPlan:
    """Resolve an experiment into scans, unit columns and metric read-outs."""
    exp_source = project.sources[experiment.exposures.source]
    start = dt.datetime.combine(experiment.start, dt.time())
    last_day = min(experiment.end or as_of, as_of)
    if last_day < experiment.start:
        raise CompileError(
            f"experiment '{experiment.name}' starts on {experiment.start}, after --as-of {as_of}: "
            "nothing to analyse yet; pass a later --as-of")
    end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time())
    analysis = experiment.analysis
    unit = experiment.unit

    columns_by_source: dict[str, list[UnitColumn]] = {}
    metric_plans: list[MetricPlan] = []
    covariates = covariate_plans(project, experiment) if analysis.cuped else ()

    def add_columns(metric: Metric, prefix: str, with_pre: bool) -> tuple[str, str | None, str | None, str | None]:
        src = metric.source
        cols = columns_by_source.setdefault(src, [])
        post = _measure(metric, prefix, "post", analysis.cuped_days)
        cols.extend(post)
        pre_cols: tuple[UnitColumn, ...] = ()
        if with_pre:
            pre_cols = _measure(metric, prefix + "__pre", "pre", analysis.cuped_days)
            cols.extend(pre_cols)
        den = post[1].name if len(post) > 1 else None
        pre = pre_cols[0].name if pre_cols else None
        pre_den = pre_cols[1].name if len(pre_cols) > 1 else None
        return post[0].name, den, pre, pre_den

    for metric, role in metric_roles(project, experiment):
        with_pre = analysis.cuped and metric.cuped
        if metric.type == "ratio":
            num_m, den_m = project.metrics[metric.numerator], project.metrics[metric.denominator]
            value, _, pre, _ = add_columns(num_m, f"{metric.name}__num", with_pre)
            den, _, pre_den, _ = add_columns(den_m, f"{metric.name}__den", with_pre)
            # the ratio's own per-unit numerator keeps the column name "<metric>__num"
        else:
            value, den, pre, pre_den = add_columns(metric, metric.name, with_pre)
        lower = metric.winsorize.lower if metric.winsorize else None
        upper = metric.winsorize.upper if metric.winsorize else None
        # CUPAC: the listed covariates besides the metric's own pre-period value (never twice)
        extra = tuple(c for c in covariates if c.name != metric.name + COVARIATE_SUFFIX) if with_pre else ()
        metric_plans.append(MetricPlan(
            name=metric.name, type=metric.type, role=role, direction=metric.direction,
            tags=tuple(metric.tags), value_column=value, den_column=den, pre_column=pre,
            pre_den_column=pre_den, covariates=extra, winsor_lower=lower, winsor_upper=upper,
            max_regression=metric.guardrail.max_regression if metric.guardrail else 0.0,
            description=metric.description, definition_hash=definition_hash(metric, project)))

    # each covariate's column, in its metric's source scan, unless a CUPED metric made it already
    covariates = covariates if any(m.covariates for m in metric_plans) else ()
    for cov in covariates:
        metric = project.metrics[covariate_metric(cov.name)]
        cols = columns_by_source.setdefault(metric.source, [])
        if all(c.name != cov.name for c in cols):
            cols.extend(_measure(metric, cov.name, "pre", analysis.cuped_days))

    scans = []
    for src_name in sorted(columns_by_source):
        src = project.sources[src_name]
        scans.append(SourceScan(source=src_name, relation=source_relation(project, src, schema),
                                unit_column=src.units[unit], timestamp=src.timestamp,
                                columns=tuple(columns_by_source[src_name])))
    variants = [experiment.control] + experiment.treatments
    return AnalysisPlan(
        experiment=experiment.name, unit_type=unit,
        exposure=ExposurePlan(source=exp_source.name, relation=source_relation(project, exp_source, schema),
                              unit_column=exp_source.units[unit], timestamp=exp_source.timestamp,
                              experiment_column=exp_source.experiment_column or "",
                              variant_column=exp_source.variant_column or "",
                              experiment_id=experiment.experiment_id),
        control=experiment.control.name, variants=tuple(v.name for v in variants),
        weights=tuple(v.weight for v in variants), start=start, end=end, as_of=as_of,
        cuped_days=analysis.cuped_days, dimensions=tuple(experiment.dimensions), scans=tuple(scans),
        metrics=tuple(metric_plans), confidence=analysis.confidence, correction=analysis.correction,
        alternative=analysis.alternative, sequential=analysis.sequential, bayesian=analysis.bayesian,
        prior_mean=analysis.prior.mean, prior_sd=analysis.prior.sd, daily_history=analysis.daily_history,
        planned_end=experiment.end,
        decision_rule=Rule(**experiment.decision.model_dump()), covariates=covariates,
        models=render_models(project, schema))


POWER_VARIANT = "all"


def build_power_plan(project: Project, metric_name: str, *, unit: str, as_of: dt.date, days: int,
                     schema: str) -> AnalysisPlan:
    """A plan that measures one metric over every unit active in its source in the last ``days``.

    Each unit's window starts at its first row in that period (as an exposure would) and runs
    to the end of ``as_of``: the per-unit mean and variance an experiment of that length would see.
    """
    metric = project.metrics.get(metric_name)
    if metric is None:
        raise CompileError(f"no metric named '{metric_name}' in the catalog")
    base = project.metrics[metric.numerator] if metric.type == "ratio" else metric
    src = project.sources[base.source]
    if unit not in src.units:
        raise CompileError(f"source '{src.name}' of metric '{metric_name}' has no unit '{unit}' "
                           f"(it has: {', '.join(src.units)}); pass --unit")
    start = dt.datetime.combine(as_of - dt.timedelta(days=days - 1), dt.time())
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    columns: dict[str, list[UnitColumn]] = {}
    if metric.type == "ratio":
        num = _measure(project.metrics[metric.numerator], f"{metric.name}__num", "post", 0)
        den = _measure(project.metrics[metric.denominator], f"{metric.name}__den", "post", 0)
        columns.setdefault(project.metrics[metric.numerator].source, []).extend(num)
        columns.setdefault(project.metrics[metric.denominator].source, []).extend(den)
        value, den_col = num[0].name, den[0].name
    else:
        cols = _measure(metric, metric.name, "post", 0)
        columns.setdefault(metric.source, []).extend(cols)
        value, den_col = cols[0].name, (cols[1].name if len(cols) > 1 else None)
    scans = tuple(SourceScan(source=name, relation=source_relation(project, project.sources[name], schema),
                             unit_column=project.sources[name].units[unit],
                             timestamp=project.sources[name].timestamp, columns=tuple(cols))
                  for name, cols in sorted(columns.items()))
    mp = MetricPlan(name=metric.name, type=metric.type, role="primary", direction=metric.direction,
                    tags=tuple(metric.tags), value_column=value, den_column=den_col,
                    winsor_lower=metric.winsorize.lower if metric.winsorize else None,
                    winsor_upper=metric.winsorize.upper if metric.winsorize else None,
                    definition_hash=definition_hash(metric, project))
    return AnalysisPlan(
        experiment=f"power__{metric.name}", unit_type=unit,
        exposure=ExposurePlan(source=src.name, relation=source_relation(project, src, schema),
                              unit_column=src.units[unit], timestamp=src.timestamp, experiment_column="",
                              variant_column="", experiment_id="", population=True),
        control=POWER_VARIANT, variants=(POWER_VARIANT,), weights=(1.0,), start=start, end=end,
        as_of=as_of, cuped_days=14, dimensions=(), scans=scans, metrics=(mp,), confidence=0.95,
        correction="none", alternative="two-sided", sequential=False, bayesian=False, prior_mean=0.0,
        prior_sd=0.3, models=render_models(project, schema))
