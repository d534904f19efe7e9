"""Project layer: load + validate profiles, catalog, experiments and models into typed objects."""

from .config_models import Analysis, Experiment, Metric, Source, Variant
from .loader import Origin, Project, load_project
from .profiles import Target, load_target

__all__ = ["Analysis", "Experiment", "Metric", "Origin", "Project", "Source", "Target", "Variant",
           "load_project", "load_target"]
