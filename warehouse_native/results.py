"""Turn fetched sufficient statistics into the rows wn publishes.

Input: the wide ``aggregates`` rows (one per variant x slice, ``<metric>__<moment>``
columns) and the unit count per exposure variant.  Output: long ``metric_aggregates``
rows (and ``covariate_aggregates`` rows for further CUPED covariates), ``scorecard`` rows
(stats layer), ``health_checks`` rows (SRM, multi-exposure, unknown variants, pre-exposure
balance, exposure gaps) and the run's ``decisions`` row.
"""

from __future__ import annotations

import dataclasses
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


def merge_quantiles(aggregates: list[dict[str, Any]], quantiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The aggregates rows with the percentile metrics' columns added, matched by variant and
    slice (a slice only a quantile statement has, e.g. no unit-level metric, gets a row of its own)."""
    rows = {(r["variant"], r["dimension"], r["dimension_value"]): dict(r) for r in aggregates}
    for q in quantiles:
        key = (q["variant"], q["dimension"], q["dimension_value"])
        row = rows.setdefault(key, {"variant": key[0], "dimension": key[1], "dimension_value": key[2], "n": q["n"]})
        row.update({k: v for k, v in q.items() if "__" in k})
    return list(rows.values())


def build_outputs(plan: AnalysisPlan, aggregates: list[dict[str, Any]], exposure_counts: dict[str, int],
                  *, run_id: str, computed_at: dt.datetime,
                  exposures_by_day: dict[tuple[dt.date, str], int] | None = None,
                  quantiles: list[dict[str, Any]] | None = None, source_newest: dict[str, Any] | None = None,
                  reference: dt.datetime | None = None) -> RunOutputs:
    """``exposure_counts``: units per exposure variant; ``exposures_by_day``: units first
    exposed per (day, variant), for the exposure-gap check (left out when None); ``quantiles``:
    the rows of the percentile metrics' statements (None: the percentile metrics are left out,
    as in wn.scorecard_daily); ``source_newest``: each checked source's newest row before
    ``reference`` (the freshness query's answer), for the source-freshness check (left out when
    None)."""
    out = RunOutputs()
    if quantiles is not None:
        aggregates = merge_quantiles(aggregates, quantiles)
    else:
        plan = dataclasses.replace(plan, metrics=plan.unit_level_metrics, quantiles=())
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
    if source_newest is not None and reference is not None:   # each source's newest row vs the analysis end
        fresh = stats.source_freshness(
            source_newest, {f.source: (f.warn_after_hours, f.fail_after_hours) for f in plan.freshness},
            reference=reference, period_start=plan.start)
        out.health.append([run_id, computed_at, plan.experiment, "source_freshness", None, None, fresh.status,
                           fresh.worst_lag_hours, None, fresh.detail])

    # -- metric_aggregates (long) ----------------------------------------------------------
    for (dim, value), by_variant in slices.items():
        for m in plan.metrics:
            for variant, row in sorted(by_variant.items()):
                moments = [None if f"{m.name}__{k}" not in row else row[f"{m.name}__{k}"] for k in MOMENTS]
                out.metric_aggregates.append([run_id, computed_at, plan.experiment, m.name, m.type, variant,
                                              dim, value, int(row["n"] or 0), *moments, m.definition_hash,
                                              *_quantile_fields(plan, m, row)])
                if m.covariates:
                    out.covariate_aggregates += [[run_id, computed_at, plan.experiment, m.name, variant, dim, value,
                                                  *r] for r in covariate_rows(row, m, plan)]

    # -- comparisons -----------------------------------------------------------------------
    rows: list[dict[str, Any]] = []
    for key, by_variant in slices.items():
        control_row = by_variant.get(plan.control, empty)
        for m in plan.metrics:
            control = arm_of(plan, control_row, m)
            for variant in plan.variants[1:]:
                treat = arm_of(plan, by_variant.get(variant, empty), m)
                rows.append(_compare_row(plan, m, key, variant, control, treat, srm_by_slice[key]))

    ended = plan.planned_end is not None and plan.as_of >= plan.planned_end
    if plan.kind == "holdout":
        _read_holdout(plan, [r for r in rows if r["dimension"] is None and r["metric_type"] != "funnel_step"],
                      ended=ended)
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
                          days_run=(plan.end.date() - plan.start.date()).days, ended=ended)
    out.decisions.append(decision_row(decision, plan.decision_rule, run_id=run_id, computed_at=computed_at,
                                      experiment=plan.experiment, as_of=plan.as_of))
    return out


# metric types whose denominator is a count of the units they read (see tables.SCORECARD)
COUNTED_TYPES = ("retention", "funnel_step")
Arm = stats.Moments | stats.QuantileArm


def arm_of(plan: AnalysisPlan, row: dict[str, Any], m: MetricPlan) -> Arm:
    """One arm's inputs to the statistics: the sums of a unit-level metric, or a percentile
    metric's quantile and outer interval (at the z of the plan's confidence)."""
    if m.is_percentile:
        return stats.QuantileArm.from_row(row, m.name, stats.outer_z(plan.confidence))
    return moments_of(row, m, plan)


def _units(arm: Arm) -> int:
    return arm.units if isinstance(arm, stats.QuantileArm) else arm.n


def _quantile_fields(plan: AnalysisPlan, m: MetricPlan, row: dict[str, Any]) -> list[Any]:
    """metric_aggregates' percentile, quantile, quantile_lower, quantile_upper (None for others)."""
    if not m.is_percentile:
        return [None] * 4
    return [plan.quantile(m.name).percentile,
            *(row.get(f"{m.name}__{k}") for k in ("quantile", "quantile_lower", "quantile_upper"))]


def _comparison(plan: AnalysisPlan, m: MetricPlan, control: Arm, treat: Arm, confidence: float) -> stats.Comparison:
    if m.is_percentile:
        return stats.compare_quantiles(control, treat, confidence=confidence, alternative=_alternative(plan, m))
    return stats.compare(control, treat, confidence=confidence, alternative=_alternative(plan, m),
                         cuped=m.has_covariate)


def _compare_row(plan: AnalysisPlan, m: MetricPlan, key: SliceKey, variant: str,
                 control: Arm, treat: Arm, srm: stats.SrmResult) -> dict[str, Any]:
    cuped = m.has_covariate
    c = _comparison(plan, m, control, treat, plan.confidence)
    row: dict[str, Any] = {
        "metric": m.name, "metric_type": m.type, "role": m.role, "tags": ",".join(m.tags),
        "direction": m.direction, "dimension": key[0], "dimension_value": key[1],
        "variant": variant, "control_units": _units(control), "variant_units": _units(treat),
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
    if m.type in COUNTED_TYPES and m.den_column:
        row.update(control_counted=round(control.den_sum or 0), variant_counted=round(treat.den_sum or 0))
        left_out = control.n + treat.n - row["control_counted"] - row["variant_counted"]
        if m.type == "retention" and left_out and not row["reason"]:
            row["reason"] = (f"{left_out} of {control.n + treat.n} units not counted yet: exposed too "
                             "recently for their retention day to be over")
    # a holdout reads every metric as a guardrail (funnel steps are diagnostics: never read)
    if m.role == "guardrail" or (plan.kind == "holdout" and m.type != "funnel_step"):
        if m.is_percentile:
            g = stats.quantile_guardrail(control, treat, direction=m.direction, max_regression=m.max_regression,
                                         confidence=plan.confidence)
        else:
            g = stats.guardrail_check(control, treat, direction=m.direction, max_regression=m.max_regression,
                                      confidence=plan.confidence, cuped=cuped)
        row.update(guardrail_status=g.status, guardrail_p_value=g.p_value, max_regression=m.max_regression)
        if g.reason and not row["reason"]:
            row["reason"] = g.reason
    if m.is_percentile:   # no sequential or Bayesian summary for quantiles (docs/statistics.md)
        return row
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


def _read_holdout(plan: AnalysisPlan, overall: list[dict[str, Any]], *, ended: bool) -> None:
    """A holdout's regression reading of every overall metric x treatment row, in its
    ``guardrail_status`` (stats/holdout.py): while it runs, the always-valid interval at level
    1 - alpha/m beyond the margin; at its end, the one-sided p-values corrected over the m rows."""
    family = len(overall) if plan.correction != "none" else 1
    if ended:
        regressed = stats.final_regressions([r.get("guardrail_p_value") for r in overall],
                                            correction=plan.correction, confidence=plan.confidence)
    else:
        # a percentile metric has no always-valid interval: it is read at the holdout's end only
        regressed = [None if plan.metric(r["metric"]).is_percentile else
                     stats.interim_regression(r["_control"], r["_variant"], direction=r["direction"],
                                              margin=r["max_regression"], confidence=plan.confidence,
                                              family=max(family, 1), cuped=plan.metric(r["metric"]).has_covariate)
                     for r in overall]
    for r, hit in zip(overall, regressed):
        r["guardrail_status"] = stats.holdout_status(r.get("guardrail_status"), hit)


def _power_inputs(plan: AnalysisPlan, control: Arm, treat: Arm) -> dict[str, Any]:
    """Per-unit standard deviations and the 80%-power MDE.  A percentile metric's per-unit
    deviation is se(Q)·√units: the spread that gives its standard error at its unit count."""
    if isinstance(control, stats.QuantileArm):
        assert isinstance(treat, stats.QuantileArm)
        se_c, se_t = control.std_error, treat.std_error
        if se_c is None or se_t is None or control.quantile is None:
            return {}
        c_point, c_var, c_n = control.quantile, se_c * se_c * control.units, control.units
        t_var, t_n = se_t * se_t * treat.units, treat.units
    else:
        c, t = estimate_arm(control, covariate=False), estimate_arm(treat, covariate=False)
        if c is None or t is None:
            return {}
        c_point, c_var, c_n, t_var, t_n = c.point, c.var, c.n, t.var, t.n
    return {"control_std": math.sqrt(c_var), "variant_std": math.sqrt(t_var),
            "mde_80": stats.minimum_detectable_effect(control_mean=c_point, control_var=c_var, control_n=c_n,
                                                      variant_var=t_var, variant_n=t_n,
                                                      confidence=plan.confidence, power=0.8)}


def correction_families(rows: list[dict[str, Any]]) -> dict[str | None, list[dict[str, Any]]]:
    """The primary-metric rows corrected together: the overall results (key None: treatment
    variants x primary metrics), and per dimension all its slices (values x treatments x
    primary metrics).  Secondary and guardrail rows are not corrected."""
    families: dict[str | None, list[dict[str, Any]]] = {}
    for r in rows:
        if r["role"] == "primary":
            families.setdefault(r["dimension"], []).append(r)
    return families


def _apply_correction(plan: AnalysisPlan, rows: list[dict[str, Any]]) -> None:
    """Adjust within each correction family (see :func:`correction_families`); others unadjusted."""
    alpha = 1 - plan.confidence
    in_family: set[int] = set()
    for family in correction_families(rows).values():
        adjusted = stats.adjust_p_values([r["p_value"] for r in family], plan.correction)
        level = stats.adjusted_confidence([r["p_value"] for r in family], plan.correction, plan.confidence)
        in_family |= {id(r) for r in family}
        for r, adj in zip(family, adjusted):
            r["adjusted_p_value"] = adj
            r["correction"] = plan.correction
            m = plan.metric(r["metric"])
            wide = _comparison(plan, m, r["_control"], r["_variant"], level)
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
