"""Plan layer: which sources, metrics, windows, covariates and slices -> an analysis plan (no SQL)."""

from .analysis_plan import (QUANTILE_STEP_PREFIX, AnalysisPlan, CovariatePlan, ExposurePlan, MetricPlan,
                            QuantileQuery, SourceFreshness, SourceScan, UnitColumn)
from .builder import POWER_VARIANT, build_plan, build_power_plan, metric_roles

__all__ = ["QUANTILE_STEP_PREFIX", "QuantileQuery", "AnalysisPlan", "CovariatePlan", "ExposurePlan", "MetricPlan",
           "SourceFreshness", "SourceScan", "UnitColumn", "POWER_VARIANT", "build_plan", "build_power_plan",
           "metric_roles"]
