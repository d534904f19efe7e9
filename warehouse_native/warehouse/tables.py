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
)

HEALTH_CHECKS: Columns = (
    ("run_id", "varchar"), ("computed_at", "timestamp"), ("experiment", "varchar"),
    ("check_name", "varchar"), ("dimension", "varchar"), ("dimension_value", "varchar"),
    ("status", "varchar"), ("statistic", "double"), ("p_value", "double"), ("detail", "varchar"),
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
    ("sealed_before", "varchar"),
)

TABLES: dict[str, Columns] = {
    "exposures": EXPOSURES,
    "metric_aggregates": METRIC_AGGREGATES,
    "scorecard": SCORECARD,
    "health_checks": HEALTH_CHECKS,
    "runs": RUNS,
    "incremental_state": INCREMENTAL_STATE,
}


def unit_metrics_table(experiment: str) -> str:
    return f"unit_metrics__{experiment}"


def scorecard_latest_view(schema: str) -> str:
    """Each experiment's scorecard from its latest successful run."""
    return f"""
select s.*
from {schema}.scorecard as s
join (
    select experiment, run_id
    from (
        select experiment, run_id,
               row_number() over (partition by experiment order by finished_at desc, run_id desc) as rn
        from {schema}.runs
        where status = 'success'
    ) as ranked
    where rn = 1
) as latest
  on latest.experiment = s.experiment and latest.run_id = s.run_id
"""
