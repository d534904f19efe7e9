"""Plan layer: which sources, metrics, windows, covariates and slices -> an analysis plan (no SQL)."""

from .analysis_plan import AnalysisPlan, ExposurePlan, MetricPlan, SourceScan, UnitColumn
from .builder import build_plan, metric_roles

__all__ = ["AnalysisPlan", "ExposurePlan", "MetricPlan", "SourceScan", "UnitColumn", "build_plan",
           "metric_roles"]
