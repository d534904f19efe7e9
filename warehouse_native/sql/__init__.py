"""SQL layer: Jinja templates + sqlglot turn an analysis plan into SQL steps (no connection)."""

from .render import DIALECTS, STRATEGIES, CompiledPlan, Statement, compile_plan, split_rows

__all__ = ["DIALECTS", "STRATEGIES", "CompiledPlan", "Statement", "compile_plan", "split_rows"]
