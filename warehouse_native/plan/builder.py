"""Build an :class:`AnalysisPlan` from a validated project, one experiment and a date."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json

from ..errors import CompileError
from ..project import Experiment, Metric, Project, Source
from ..project.models import render_sql
from ..decision import Rule
from ..project.config_models import COVARIATE_SUFFIX
from .analysis_plan import (AnalysisPlan, CovariatePlan, ExposurePlan, MetricPlan, QuantileQuery, SourceFreshness,
                            SourceScan, UnitColumn)

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
    if metric.type == "retention":
        return _retention(metric, prefix, window)
    if metric.type == "funnel":
        return _funnel(metric, prefix, window, start, end)
    if metric.type == "mean":
        return (UnitColumn(name=prefix, agg="sum", value=metric.value, **base),
                UnitColumn(name=prefix + "__den" if window == "post" else prefix + "_den",
                           agg="count", **base))
    finish = "none"
    if metric.type == "daily_participation":
        finish = "per_post_day" if window == "post" else "per_pre_day"
    return (UnitColumn(name=prefix, agg=_AGG_OF[metric.type], value=metric.value, finish=finish, **base),)


def _retention(metric: Metric, prefix: str, window: str) -> tuple[UnitColumn, ...]:
    """Retention on day N: active in [exposure + N days, exposure + N + 1 days), counted only
    for units whose day N is over by the analysis end (``<m>__den``: 1 for those units).  Its
    CUPED covariate: active in the pre-exposure window, for the same units."""
    day = metric.retention.day
    common = dict(metric=metric.name, agg="flag", filter=metric.filter, complete_after=day + 1)
    if window == "pre":
        return (UnitColumn(name=prefix, window="pre", **common),)
    post = dict(window="post", start_day=day, end_day=day + 1, **common)
    return (UnitColumn(name=prefix, **post), UnitColumn(name=prefix + "__den", finish="eligible", **post))


def _funnel(metric: Metric, prefix: str, window: str, start: int, end: int | None) -> tuple[UnitColumn, ...]:
    """A funnel: per step the time of the unit's first row of that step in the post window;
    the unit metrics turn them into completion flags (the metric: the last step)."""
    if window == "pre":
        return ()
    out: list[UnitColumn] = []
    for step in metric.funnel.steps:
        cond = step.filter if not metric.filter else f"({metric.filter}) and ({step.filter})"
        out.append(UnitColumn(name=f"{prefix}__{step.name}", metric=metric.name, agg="first_ts", window="post",
                              filter=cond, start_day=start, end_day=end, finish="funnel",
                              after=tuple(c.name for c in out), within_hours=metric.funnel.within_hours))
    return tuple(out)


def definition_hash(metric: Metric, project: Project) -> str:
    """Stable hash of everything that changes a metric's numbers."""
    def dump(m: Metric, exclude: set[str]) -> dict:
        # fields added later only where set: other metrics keep the hashes they had before them
        return m.model_dump(exclude=exclude | {f for f in ("percentile", "retention", "funnel") if getattr(m, f) is None})

    parts = [dump(metric, {"description", "owner", "tags", "direction", "guardrail"})]
    if metric.type == "ratio":
        parts += [dump(project.metrics[metric.numerator], {"description", "owner", "tags"}),
                  dump(project.metrics[metric.denominator], {"description", "owner", "tags"})]
    else:
        parts.append(project.sources[metric.source].model_dump(exclude={"description", "freshness"}))
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


def _margin(metric: Metric, experiment: Experiment) -> float:
    """The relative regression a metric tolerates: its own guardrail.max_regression, else (in a
    holdout, where every metric is read for regression) the holdout's decision.max_regression."""
    if metric.guardrail is not None:
        return metric.guardrail.max_regression
    if experiment.kind == "holdout":
        return experiment.decision.max_regression or 0.0
    return 0.0


def freshness_targets(project: Project, sources: list[str], schema: str) -> tuple[SourceFreshness, ...]:
    """What the source_freshness check asks of each source a run reads (``freshness: false``: nothing)."""
    out = []
    for name in dict.fromkeys(sources):
        src = project.sources[name]
        if src.freshness.check:
            out.append(SourceFreshness(name, source_relation(project, src, schema), src.timestamp,
                                       src.freshness.warn_after_hours, src.freshness.fail_after_hours))
    return tuple(out)


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
    quantiles: list[QuantileQuery] = []
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
        if metric.type == "funnel":   # the metric reads the last step; its steps are read below
            return post[-1].name, None, None, None
        den = post[1].name if len(post) > 1 else None
        pre = pre_cols[0].name if pre_cols else None
        pre_den = pre_cols[1].name if len(pre_cols) > 1 else None
        if metric.type == "retention" and pre:
            pre_den = den   # the pre-window activity of the same (eligible) units
        return post[0].name, den, pre, pre_den

    for metric, role in metric_roles(project, experiment):
        with_pre = analysis.cuped and metric.cuped and metric.type != "funnel" and not metric.is_event_level
        if metric.is_event_level:   # percentile: its own statement over the events, no unit column
            quantiles.append(_quantile_query(project, metric, unit, schema))
            value = ""
            den = pre = pre_den = None
        elif metric.type == "ratio":
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
            max_regression=_margin(metric, experiment),
            description=metric.description, definition_hash=definition_hash(metric, project)))
        if metric.type == "funnel":
            metric_plans.extend(_funnel_steps(metric, metric_plans[-1]))

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
        cuped_days=analysis.cuped_days, dimensions=tuple(experiment.dimension_names),
        dimension_limits=tuple((d.name, d.top, d.min_units) for d in experiment.dimensions if d.limited),
        scans=tuple(scans),
        metrics=tuple(metric_plans), confidence=analysis.confidence, correction=analysis.correction,
        # a holdout's interim readings use the always-valid intervals: it always computes them
        alternative=analysis.alternative, sequential=analysis.sequential or experiment.kind == "holdout",
        bayesian=analysis.bayesian,
        prior_mean=analysis.prior.mean, prior_sd=analysis.prior.sd, daily_history=analysis.daily_history,
        planned_end=experiment.end, kind=experiment.kind,
        decision_rule=Rule(kind=experiment.kind, **experiment.decision.model_dump()), covariates=covariates,
        freshness=freshness_targets(project, list(dict.fromkeys(
            [exp_source.name] + [s.source for s in scans if any(c.window == "post" for c in s.columns)]
            + [q.source for q in quantiles])), schema),
        models=render_models(project, schema), quantiles=tuple(quantiles))


def _quantile_query(project: Project, metric: Metric, unit: str, schema: str) -> QuantileQuery:
    src = project.sources[metric.source]
    window = metric.window
    return QuantileQuery(metric=metric.name, percentile=float(metric.percentile), source=src.name,
                         relation=source_relation(project, src, schema), unit_column=src.units[unit],
                         timestamp=src.timestamp, value=metric.value or "", filter=metric.filter,
                         start_day=window.start_day if window else 0, end_day=window.end_day if window else None)


def _funnel_steps(metric: Metric, overall: MetricPlan) -> list[MetricPlan]:
    """A funnel's per-step read-outs, ``<funnel>__<step>``: the first step's share of exposed
    units, then each step's conversion among the units that completed the step before it.
    Secondary metrics whatever the funnel's role: diagnostics, outside the correction family
    and the decision."""
    cols = [f"{metric.name}__{s.name}" for s in metric.funnel.steps]
    tags = tuple(t for t in overall.tags if t != "guardrail")
    return [dataclasses.replace(overall, name=col, type="funnel_step", role="secondary", tags=tags,
                                value_column=col, den_column=cols[k - 1] if k else None,
                                max_regression=0.0,
                                description=f"step {k + 1} of funnel {metric.name}"
                                            + (f": conversion from {metric.funnel.steps[k - 1].name}" if k else
                                               ": share of exposed units"),
                                definition_hash=f"{overall.definition_hash}:{k}")
            for k, col in enumerate(cols)]


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
    if metric.is_event_level:
        raise CompileError(f"wn power does not support {metric.type} metrics yet ('{metric_name}'): its "
                           "variance is not a per-unit variance; plan with a per-unit metric of the same "
                           "source (e.g. a mean) instead")
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
        if metric.type == "funnel":
            value, den_col = cols[-1].name, None
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
