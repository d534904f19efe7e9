"""The statements that create the user's models as views, in the target dialect."""

from __future__ import annotations

from ..plan import AnalysisPlan
from .dialects import transpile


def model_views(plan: AnalysisPlan, dialect: str, schema: str) -> list[tuple[str, str]]:
    """``(model name, CREATE OR REPLACE VIEW ...)`` in run order (models are DuckDB SQL)."""
    out = []
    for name, sql in plan.models:
        text = f"CREATE OR REPLACE VIEW {schema}.{name} AS {sql}"
        out.append((name, transpile(text, dialect)))
    return out
