"""The table contract (DESIGN §4): names, columns and types of everything wn writes.

Types are portable names (varchar, double, bigint, boolean, timestamp) that sqlglot
writes per dialect.  Columns may be added over time, never renamed.
"""

from __future__ import annotations

Columns = tuple[tuple[str, str], ...]

EXPOSURES: Columns = (
    ("experiment", "varchar"), ("unit_type", "varchar"), ("unit_id", "varchar"),
    ("variant", "varchar"), ("first_exposure_at", "timestamp"), ("exposure_count", "bigint"),
)

MOMENTS = ("sum", "sum_sq", "den_sum", "den_sum_sq", "num_den_sum", "pre_sum", "pre_sum_sq",
           "sum_cross", "pre_den_sum", "pre_den_sum_sq", "pre_num_den_sum", "num_pre_den_sum",
           "den_pre_sum", "den_pre_den_sum")

METRIC_AGGREGATES: Columns = (
    ("run_id", "varchar"), ("computed_at", "timestamp"), ("experiment", "varchar"),
    ("metric", "varchar"), ("metric_type", "varchar"), ("variant", "varchar"),
    ("dimension", "varchar"), ("dimension_value", "varchar"), ("n", "bigint"),
    *((m, "double") for m in MOMENTS),
    ("definition_hash", "varchar"),
    # additions (never renamed): percentile metrics (sum.. num_den_sum then hold the share of
    # events at or below the quantile: below / events per unit): p, the quantile and its outer
    # interval [Q(p - z sigma_F), Q(p + z sigma_F)] at the run's confidence
    *((q, "double") for q in ("percentile", "quantile", "quantile_lower", "quantile_upper")),
)

# CUPAC (analysis.covariates): the sums a metric's further covariates add to its
# metric_aggregates row, one row per covariate and factor: value = Σ covariate·factor, the
# factor being '1' (Σc), 'y', 'd', 'x', 'm' (the metric's value or numerator, denominator, own
# pre value, own pre denominator, as in metric_aggregates) or a covariate listed at or after
# this one (Σc·c', Σc² for itself)
COVARIATE_AGGREGATES: Columns = (
    ("run_id", "varchar"), ("computed_at", "timestamp"), ("experiment", "varchar"),
    ("metric", "varchar"), ("variant", "varchar"), ("dimension", "varchar"),
    ("dimension_value", "varchar"), ("covariate", "varchar"), ("factor", "varchar"),
    ("value", "double"),
)

SCORECARD: Columns = (
    ("run_id", "varchar"), ("computed_at", "timestamp"), ("experiment", "varchar"),
    ("metric", "varchar"), ("metric_type", "varchar"), ("role", "varchar"), ("tags", "varchar"),
    ("direction", "varchar"), ("dimension", "varchar"), ("dimension_value", "varchar"),
    ("control_variant", "varchar"), ("variant", "varchar"),
    ("control_units", "bigint"), ("variant_units", "bigint"),
    ("control_mean", "double"), ("variant_mean", "double"),
    ("abs_delta", "double"), ("abs_ci_lower", "double"), ("abs_ci_upper", "double"),
    ("rel_delta", "double"), ("rel_ci_lower", "double"), ("rel_ci_upper", "double"),
    ("p_value", "double"), ("adjusted_p_value", "double"), ("confidence_level", "double"),
    ("significant", "boolean"), ("cuped", "boolean"), ("variance_reduction", "double"),
    ("guardrail_status", "varchar"),
    # additions (never renamed): inference details and opt-in methods
    ("std_error", "double"), ("dof", "double"), ("cuped_theta", "double"),
    ("correction", "varchar"), ("adjusted_ci_lower", "double"), ("adjusted_ci_upper", "double"),
    ("adjusted_rel_ci_lower", "double"), ("adjusted_rel_ci_upper", "double"),
    ("guardrail_p_value", "double"), ("max_regression", "double"),
    ("sequential_p_value", "double"), ("sequential_ci_lower", "double"),
    ("sequential_ci_upper", "double"), ("sequential_rel_ci_lower", "double"),
    ("sequential_rel_ci_upper", "double"),
    ("chance_to_beat", "double"), ("expected_loss", "double"),
    ("srm_status", "varchar"), ("reason", "varchar"),
    # power inputs: per-unit standard deviations (ratio metrics: of the linearised value) and
    # the relative effect detectable with 80% power at the current sample sizes
    ("control_std", "double"), ("variant_std", "double"), ("mde_80", "double"),
    # the units a retention metric counts (their day N is over) or a funnel step counts (they
    # completed the step before); NULL for other metrics, which count every unit
    ("control_counted", "bigint"), ("variant_counted", "bigint"),
    # the covariates CUPED applied, comma-separated ('<metric>__pre' first: the metric's own);
    # NULL when CUPED was not applied
    ("cuped_covariates", "varchar"),
)

# the scorecard as of each day of the experiment (overall results only): what a run with
# --as-of that day would have published
SCORECARD_DAILY: Columns = SCORECARD[:3] + (("day", "date"),) + SCORECARD[3:]

HEALTH_CHECKS: Columns = (
    ("run_id", "varchar"), ("computed_at", "timestamp"), ("experiment", "varchar"),
    ("check_name", "varchar"), ("dimension", "varchar"), ("dimension_value", "varchar"),
    ("status", "varchar"), ("statistic", "double"), ("p_value", "double"), ("detail", "varchar"),
)

# one row per run: the experiment's decision (warehouse_native/decision.py)
DECISIONS: Columns = (
    ("run_id", "varchar"), ("computed_at", "timestamp"), ("experiment", "varchar"), ("as_of", "varchar"),
    ("decision", "varchar"), ("variant", "varchar"), ("headline", "varchar"), ("reason", "varchar"),
    ("days_run", "bigint"), ("more_days", "bigint"), ("mde_target", "double"), ("mde_now", "double"),
    ("rule", "varchar"), ("readings", "varchar"),
)

RUNS: Columns = (
    ("run_id", "varchar"), ("experiment", "varchar"), ("started_at", "timestamp"),
    ("finished_at", "timestamp"), ("status", "varchar"), ("mode", "varchar"),
    ("strategy", "varchar"), ("target", "varchar"), ("error", "varchar"),
    ("as_of", "varchar"), ("plan_fingerprint", "varchar"), ("wn_version", "varchar"),
    ("units", "bigint"), ("steps", "varchar"),
)

INCREMENTAL_STATE: Columns = (
    ("experiment", "varchar"), ("state_key", "varchar"), ("processed_through", "varchar"),
    ("columns", "varchar"), ("run_id", "varchar"), ("updated_at", "timestamp"),
    ("sealed_before", "varchar"), ("kept_before", "varchar"),
    # the state's tables by kind (JSON); engines that publish by pointer rename them each run
    ("tables", "varchar"),
    # what the statistics of wn.scorecard_daily depend on (metrics, roles, analysis settings):
    # a daily run keeps the earlier days' rows of the series only while it is the same
    ("series_key", "varchar"),
    # the first day of the per-day state rows (NULL: the experiment's first day); a full refresh
    # keeps them only from the seal on, and a run that needs older days rebuilds the state
    ("days_from", "varchar"),
)

TABLES: dict[str, Columns] = {   # wn.exposures is a view, see exposures_view
    "metric_aggregates": METRIC_AGGREGATES,
    "covariate_aggregates": COVARIATE_AGGREGATES,
    "scorecard": SCORECARD,
    "scorecard_daily": SCORECARD_DAILY,
    "health_checks": HEALTH_CHECKS,
    "decisions": DECISIONS,
    "runs": RUNS,
    "incremental_state": INCREMENTAL_STATE,
}


UNIT_METRICS_PREFIX = "unit_metrics__"


def unit_metrics_table(experiment: str) -> str:
    return f"{UNIT_METRICS_PREFIX}{experiment}"


def exposure_dimensions(unit_metrics_columns: list[str]) -> list[str] | None:
    """The dimension columns of a unit_metrics table (wn writes them between
    ``exposure_count`` and ``post_days``); None for a table that is not wn's."""
    lower = [c.lower() for c in unit_metrics_columns]
    if any(c not in lower for c, _ in EXPOSURES) or "post_days" not in lower:
        return None
    return unit_metrics_columns[lower.index("exposure_count") + 1:lower.index("post_days")]


def exposures_view(schema: str, tables: dict[str, list[str]], current: list[str]) -> str | None:
    """``wn.exposures``: the exposure columns of every experiment's ``unit_metrics`` table or view.

    A view rather than a copy: publishing a run's unit metrics publishes its exposures, with
    no second write of one row per unit.  Columns keep their order across rebuilds (``current``:
    the view's columns now), new dimensions are appended, and an experiment without a
    dimension reads NULL for it.  With no unit_metrics left but a view in place, the view
    becomes an empty one with the same columns (views built on it stay valid); None when
    there is neither."""
    base = [c for c, _ in EXPOSURES]
    dims_of = {t: d for t, cols in sorted(tables.items()) if (d := exposure_dimensions(cols)) is not None}
    dims = [c for c in current if c.lower() not in base]
    if not dims_of:
        if not current:
            return None
        cols = [f"cast(null as {kind}) as {c}" for c, kind in EXPOSURES] + [f"cast(null as varchar) as {d}" for d in dims]
        return f"CREATE OR REPLACE VIEW {schema}.exposures AS\nselect {', '.join(cols)} where 1 = 0"
    for d in (d for ds in dims_of.values() for d in ds):
        if d.lower() not in {x.lower() for x in dims}:
            dims.append(d)
    parts = []
    for table, own in dims_of.items():
        have = {d.lower() for d in own}
        # fixed types: an engine that checks view column types on replace (PostgreSQL) must see
        # the same ones whatever the sources' timestamp or id types are
        cols = [f"cast({c} as {kind}) as {c}" for c, kind in EXPOSURES]
        cols += [f"cast({d if d.lower() in have else 'null'} as varchar) as {d}" for d in dims]
        parts.append(f"select {', '.join(cols)} from {schema}.{table}")
    return f"CREATE OR REPLACE VIEW {schema}.exposures AS\n" + "\nunion all\n".join(parts)


def scorecard_latest_view(schema: str, table: str = "scorecard") -> str:
    """Each experiment's rows of ``table`` from its latest successful run (that wrote any)."""
    wrote = "" if table == "scorecard" else f"\n          and run_id in (select run_id from {schema}.{table})"
    return f"""
select s.*
from {schema}.{table} as s
join (
    select experiment, run_id
    from (
        select experiment, run_id,
               row_number() over (partition by experiment order by finished_at desc, run_id desc) as rn
        from {schema}.runs
        where status = 'success'{wrote}
    ) as ranked
    where rn = 1
) as latest
  on latest.experiment = s.experiment and latest.run_id = s.run_id
"""
