"""Turn fetched sufficient statistics into the rows wn publishes.

Input: the wide ``aggregates`` rows (one per variant x slice, ``<metric>__<moment>``
columns) and the unit count per exposure variant.  Output: long ``metric_aggregates``
rows (and ``covariate_aggregates`` rows for further CUPED covariates), ``scorecard`` rows
(stats layer), ``health_checks`` rows (SRM, multi-exposure, unknown variants, pre-exposure
balance, exposure gaps) and the run's ``decisions`` row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import math

from . import stats
from .stats.arm import estimate_arm
from .plan import AnalysisPlan, MetricPlan
from .decision import decide, decision_row
from .warehouse.tables import DECISIONS, HEALTH_CHECKS, MOMENTS, SCORECARD

SliceKey = tuple[str | None, str | None]   # (dimension, dimension_value); (None, None) = overall
OVERALL: SliceKey = (None, None)
MULTIPLE = "__multiple__"


@dataclass
class RunOutputs:
    metric_aggregates: list[list[Any]] = field(default_factory=list)
    covariate_aggregates: list[list[Any]] = field(default_factory=list)   # analysis.covariates only
    scorecard: list[list[Any]] = field(default_factory=list)
    health: list[list[Any]] = field(default_factory=list)
    decisions: list[list[Any]] = field(default_factory=list)   # one row: the run's decision
    units_by_variant: dict[str, int] = field(default_factory=dict)
    srm_status: str = "unknown"
    srm_p_value: float | None = None
    multi_exposed: int = 0
    unknown_variant_units: int = 0

    def decision_dict(self) -> dict[str, Any] | None:
        names = [c for c, _ in DECISIONS]
        return dict(zip(names, self.decisions[0])) if self.decisions else None

    def scorecard_dicts(self) -> list[dict[str, Any]]:
        names = [c for c, _ in SCORECARD]
        return [dict(zip(names, row)) for row in self.scorecard]


def moments_of(row: dict[str, Any], metric: MetricPlan, plan: AnalysisPlan | None = None) -> stats.Moments:
    """One metric's sums in one aggregates row; further covariates' sums only with ``plan``
    (the pre-exposure balance check and ``wn power`` need none)."""
    values: dict[str, Any] = {"n": int(row["n"] or 0)}
    for moment in MOMENTS:
        key = f"{metric.name}__{moment}"
        if key in row:
            values[moment] = 0.0 if row[key] is None else row[key]
    moments = stats.Moments.from_row(values)
    if not metric.covariates or plan is None:
        return moments
    # the products present follow the sums present (an arm missing from the aggregates reads
    # zeros for every moment: see _empty_row)
    return stats.Moments(**{f: getattr(moments, f) for f in stats.MOMENT_FIELDS},
                         covariates=covariate_sums(row, metric, plan, d=moments.is_ratio,
                                                   x=moments.pre_sum is not None, m=moments.pre_den_sum is not None))


def _sum(row: dict[str, Any], column: str) -> float:
    value = row.get(column)
    return 0.0 if value is None else float(value)


def covariate_sums(row: dict[str, Any], metric: MetricPlan, plan: AnalysisPlan, *, d: bool | None = None,
                   x: bool | None = None, m: bool | None = None) -> stats.CovariateSums:
    """The further covariates' sums of one metric from a wide aggregates row: the products with
    the metric's inputs (:meth:`MetricPlan.covariate_products`) and the covariates' own sums
    (:meth:`AnalysisPlan.covariate_products`); ``d``, ``x``, ``m``: whether the products with
    the denominator, own covariate and its denominator are wanted (default: as the metric has them)."""
    d = metric.is_ratio if d is None else d
    x = metric.pre_column is not None if x is None else x
    m = metric.pre_den_column is not None if m is None else m
    at = [[c.name for c in plan.covariates].index(c.name) for c in metric.covariates]
    shared = {(j, l): name for name, j, l in plan.covariate_products()}

    def column(a: str) -> tuple[float, ...]:
        return tuple(_sum(row, f"{metric.name}__{a}_c{j}") for j in range(len(at)))

    return stats.CovariateSums(
        names=tuple(c.name for c in metric.covariates),
        sums=tuple(_sum(row, shared[(j, None)]) for j in at),
        products=tuple(tuple(_sum(row, shared[(min(j, l), max(j, l))]) for l in at) for j in at),
        with_y=column("y"), with_d=column("d") if d else None,
        with_x=column("x") if x else None, with_m=column("xm") if m else None)


def covariate_rows(row: dict[str, Any], metric: MetricPlan, plan: AnalysisPlan) -> list[tuple[str, str, float]]:
    """``covariate_aggregates`` (covariate, factor, value) of one metric's aggregates row."""
    sums = covariate_sums(row, metric, plan)
    out = []
    for j, name in enumerate(sums.names):
        out.append((name, "1", sums.sums[j]))
        for factor, column in (("y", sums.with_y), ("d", sums.with_d), ("x", sums.with_x), ("m", sums.with_m)):
            if column is not None:
                out.append((name, factor, column[j]))
        out += [(name, other, sums.products[j][l]) for l, other in enumerate(sums.names) if l >= j]
    return out


def applied_covariates(c: stats.Comparison, metric: MetricPlan) -> str | None:
    """``scorecard.cuped_covariates``: the covariates CUPED applied, comma-separated."""
    if not c.cuped:
        return None
    return ",".join(f"{metric.name}__pre" if name == stats.OWN_COVARIATE else name for name, _ in c.covariates)


def _slices(aggregates: list[dict[str, Any]]) -> dict[SliceKey, dict[str, dict[str, Any]]]:
    out: dict[SliceKey, dict[str, dict[str, Any]]] = {}
    for row in aggregates:
        key = (row["dimension"], row["dimension_value"])
        out.setdefault(key, {})[row["variant"]] = row
    return out


def _empty_row(plan: AnalysisPlan) -> dict[str, Any]:
    row: dict[str, Any] = {"n": 0}
    for m in plan.metrics:
        for moment in MOMENTS:
            row[f"{m.name}__{moment}"] = 0.0
    return row


def _alternative(plan: AnalysisPlan, metric: MetricPlan) -> str:
    return "two-sided" if plan.alternative == "two-sided" else metric.direction


def build_outputs(plan: AnalysisPlan, aggregates: list[dict[str, Any]], exposure_counts: dict[str, int],
                  *, run_id: str, computed_at: dt.datetime,
                  exposures_by_day: dict[tuple[dt.date, str], int] | None = None) -> RunOutputs:
    """``exposure_counts``: units per exposure variant; ``exposures_by_day``: units first
    exposed per (day, variant), for the exposure-gap check (left out when None)."""
    out = RunOutputs()
    slices = _slices(aggregates)
    slices.setdefault(OVERALL, {})
    empty = _empty_row(plan)

    # -- health: SRM overall and per slice, multi-exposure, unknown variants ---------------
    srm_by_slice: dict[SliceKey, stats.SrmResult] = {}
    weights = dict(zip(plan.variants, plan.weights))
    for key, by_variant in sorted(slices.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or "")):
        counts = {v: int(by_variant.get(v, empty)["n"] or 0) for v in plan.variants}
        srm = stats.srm_check(counts, weights)
        srm_by_slice[key] = srm
        detail = ", ".join(f"{v}={counts[v]}" for v in plan.variants)
        out.health.append([run_id, computed_at, plan.experiment, "srm", key[0], key[1], srm.status,
                           srm.chi2, srm.p_value, f"units: {detail}" + (f"; {srm.reason}" if srm.reason else "")])
    overall_srm = srm_by_slice[OVERALL]
    out.srm_status, out.srm_p_value = overall_srm.status, overall_srm.p_value
    out.units_by_variant = {v: int(exposure_counts.get(v, 0)) for v in plan.variants}
    out.multi_exposed = int(exposure_counts.get(MULTIPLE, 0))
    out.unknown_variant_units = sum(n for v, n in exposure_counts.items()
                                    if v not in weights and v != MULTIPLE)
    total = sum(exposure_counts.values()) or 1
    share = out.multi_exposed / total
    out.health.append([run_id, computed_at, plan.experiment, "multi_exposure", None, None,
                       "warn" if share > 0.01 else "pass", float(out.multi_exposed), None,
                       f"{out.multi_exposed} of {total} units saw more than one variant ({share:.2%}); "
                       "excluded from statistics"])
    out.health.append([run_id, computed_at, plan.experiment, "unknown_variant", None, None,
                       "warn" if out.unknown_variant_units else "pass", float(out.unknown_variant_units),
                       None, f"{out.unknown_variant_units} units in variants not configured "
                       f"({', '.join(sorted(v for v in exposure_counts if v not in weights and v != MULTIPLE)) or 'none'})"])
    # pre-exposure balance of every CUPED covariate (overall): Welch t per metric x treatment
    overall_rows = slices[OVERALL]
    balance = stats.pre_exposure_balance([
        (f"{m.name}, {v}", moments_of(overall_rows.get(plan.control, empty), m), moments_of(overall_rows.get(v, empty), m))
        for m in plan.metrics if m.has_covariate for v in plan.variants[1:]])
    out.health.append([run_id, computed_at, plan.experiment, "pre_exposure_bias", None, None, balance.status,
                       balance.statistic, balance.p_value, balance.detail])
    if exposures_by_day is not None:   # days without new units, overall and per variant
        gaps = stats.exposure_gaps(exposures_by_day, weights, plan.start.date(),
                                   plan.end.date() - dt.timedelta(days=1))
        out.health.append([run_id, computed_at, plan.experiment, "exposure_gaps", None, None, gaps.status,
                           float(len(gaps.empty_days) + len(gaps.starved)), None, gaps.detail])

    # -- metric_aggregates (long) ----------------------------------------------------------
    for (dim, value), by_variant in slices.items():
        for m in plan.metrics:
            for variant, row in sorted(by_variant.items()):
                moments = [None if f"{m.name}__{k}" not in row else row[f"{m.name}__{k}"] for k in MOMENTS]
                out.metric_aggregates.append([run_id, computed_at, plan.experiment, m.name, m.type, variant,
                                              dim, value, int(row["n"] or 0), *moments, m.definition_hash])
                if m.covariates:
                    out.covariate_aggregates += [[run_id, computed_at, plan.experiment, m.name, variant, dim, value,
                                                  *r] for r in covariate_rows(row, m, plan)]

    # -- comparisons -----------------------------------------------------------------------
    rows: list[dict[str, Any]] = []
    for key, by_variant in slices.items():
        control_row = by_variant.get(plan.control, empty)
        for m in plan.metrics:
            control = moments_of(control_row, m, plan)
            for variant in plan.variants[1:]:
                treat = moments_of(by_variant.get(variant, empty), m, plan)
                rows.append(_compare_row(plan, m, key, variant, control, treat, srm_by_slice[key]))

    _apply_correction(plan, rows)
    names = [c for c, _ in SCORECARD]
    base = {"run_id": run_id, "computed_at": computed_at, "experiment": plan.experiment,
            "control_variant": plan.control, "confidence_level": plan.confidence}
    for r in rows:
        full = {**base, **r}
        out.scorecard.append([full.get(c) for c in names])

    # -- the decision ----------------------------------------------------------------------
    health_names = [c for c, _ in HEALTH_CHECKS]
    decision = decide(plan.decision_rule, out.scorecard_dicts(), [dict(zip(health_names, h)) for h in out.health],
                          treatments=plan.variants[1:], primaries=[m.name for m in plan.metrics if m.role == "primary"],
                          days_run=(plan.end.date() - plan.start.date()).days,
                          ended=plan.planned_end is not None and plan.as_of >= plan.planned_end)
    out.decisions.append(decision_row(decision, plan.decision_rule, run_id=run_id, computed_at=computed_at,
                                      experiment=plan.experiment, as_of=plan.as_of))
    return out


def _compare_row(plan: AnalysisPlan, m: MetricPlan, key: SliceKey, variant: str,
                 control: stats.Moments, treat: stats.Moments, srm: stats.SrmResult) -> dict[str, Any]:
    cuped = m.has_covariate
    c = stats.compare(control, treat, confidence=plan.confidence, alternative=_alternative(plan, m),
                      cuped=cuped)
    row: dict[str, Any] = {
        "metric": m.name, "metric_type": m.type, "role": m.role, "tags": ",".join(m.tags),
        "direction": m.direction, "dimension": key[0], "dimension_value": key[1],
        "variant": variant, "control_units": control.n, "variant_units": treat.n,
        "control_mean": c.control_mean, "variant_mean": c.variant_mean,
        "abs_delta": c.abs_delta, "abs_ci_lower": c.abs_ci_lower, "abs_ci_upper": c.abs_ci_upper,
        "rel_delta": c.rel_delta, "rel_ci_lower": c.rel_ci_lower, "rel_ci_upper": c.rel_ci_upper,
        "p_value": c.p_value, "cuped": c.cuped, "variance_reduction": c.variance_reduction,
        "std_error": c.std_error, "dof": c.dof, "cuped_theta": c.theta,
        "cuped_covariates": applied_covariates(c, m),
        "srm_status": srm.status, "reason": c.reason,
        "_control": control, "_variant": treat,
    }
    row.update(_power_inputs(plan, control, treat))
    if m.role == "guardrail":
        g = stats.guardrail_check(control, treat, direction=m.direction, max_regression=m.max_regression,
                                  confidence=plan.confidence, cuped=cuped)
        row.update(guardrail_status=g.status, guardrail_p_value=g.p_value, max_regression=m.max_regression)
        if g.reason and not row["reason"]:
            row["reason"] = g.reason
    if plan.sequential:
        s = stats.sequential_compare(control, treat, confidence=plan.confidence, cuped=cuped)
        row.update(sequential_p_value=s.p_value, sequential_ci_lower=s.ci_lower,
                   sequential_ci_upper=s.ci_upper, sequential_rel_ci_lower=s.rel_ci_lower,
                   sequential_rel_ci_upper=s.rel_ci_upper)
    if plan.bayesian:
        b = stats.bayesian_summary(control, treat, direction=m.direction, prior_mean=plan.prior_mean,
                                   prior_sd=plan.prior_sd, confidence=plan.confidence, cuped=cuped)
        row.update(chance_to_beat=b.chance_to_beat, expected_loss=b.expected_loss)
    return row


def _power_inputs(plan: AnalysisPlan, control: stats.Moments, treat: stats.Moments) -> dict[str, Any]:
    c, t = estimate_arm(control, covariate=False), estimate_arm(treat, covariate=False)
    if c is None or t is None:
        return {}
    return {"control_std": math.sqrt(c.var), "variant_std": math.sqrt(t.var),
            "mde_80": stats.minimum_detectable_effect(control_mean=c.point, control_var=c.var,
                                                      control_n=c.n, variant_var=t.var, variant_n=t.n,
                                                      confidence=plan.confidence, power=0.8)}


def _apply_correction(plan: AnalysisPlan, rows: list[dict[str, Any]]) -> None:
    """Adjust over treatment variants x primary metrics on the overall slice; others unadjusted."""
    alpha = 1 - plan.confidence
    family = [r for r in rows if r["role"] == "primary" and r["dimension"] is None]
    adjusted = stats.adjust_p_values([r["p_value"] for r in family], plan.correction)
    level = stats.adjusted_confidence([r["p_value"] for r in family], plan.correction, plan.confidence)
    in_family = {id(r) for r in family}
    for r, adj in zip(family, adjusted):
        r["adjusted_p_value"] = adj
        r["correction"] = plan.correction
        m = plan.metric(r["metric"])
        wide = stats.compare(r["_control"], r["_variant"], confidence=level,
                             alternative=_alternative(plan, m), cuped=m.has_covariate)
        r.update(adjusted_ci_lower=wide.abs_ci_lower, adjusted_ci_upper=wide.abs_ci_upper,
                 adjusted_rel_ci_lower=wide.rel_ci_lower, adjusted_rel_ci_upper=wide.rel_ci_upper)
    for r in rows:
        if id(r) not in in_family:
            r["adjusted_p_value"] = r["p_value"]
            r["correction"] = "none"
            r.update(adjusted_ci_lower=r["abs_ci_lower"], adjusted_ci_upper=r["abs_ci_upper"],
                     adjusted_rel_ci_lower=r["rel_ci_lower"], adjusted_rel_ci_upper=r["rel_ci_upper"])
        p = r["adjusted_p_value"]
        r["significant"] = None if p is None else bool(p < alpha)
        r.pop("_control"), r.pop("_variant")
