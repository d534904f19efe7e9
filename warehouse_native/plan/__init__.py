"""Plan layer: which sources, metrics, windows, covariates and slices -> an analysis plan (no SQL)."""

from .analysis_plan import AnalysisPlan, CovariatePlan, ExposurePlan, MetricPlan, SourceScan, UnitColumn
from .builder import POWER_VARIANT, build_plan, build_power_plan, metric_roles

__all__ = ["AnalysisPlan", "CovariatePlan", "ExposurePlan", "MetricPlan", "SourceScan", "UnitColumn", "POWER_VARIANT", "build_plan", "build_power_plan",
           "metric_roles"]
