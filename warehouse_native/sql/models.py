"""The statements that create the user's models as views, in the target dialect."""

from __future__ import annotations

import sqlglot

from ..plan import AnalysisPlan


def model_views(plan: AnalysisPlan, dialect: str, schema: str) -> list[tuple[str, str]]:
    """``(model name, CREATE OR REPLACE VIEW ...)`` in run order (models are DuckDB SQL)."""
    out = []
    for name, sql in plan.models:
        text = f"CREATE OR REPLACE VIEW {schema}.{name} AS {sql}"
        if dialect != "duckdb":
            text = sqlglot.transpile(text, read="duckdb", write=dialect)[0]
        out.append((name, text))
    return out
