"""What differs between SQL dialects, in one place: sqlglot's writer plus a few rewrites.

wn's templates are written in DuckDB SQL.  sqlglot transpiles them; where its output is not
what an engine runs (or not what runs fast there), the syntax tree is rewritten here before
it is written.  Each rule is a small pure function, named after what it fixes, and applies
to the dialects listed with it.  Engine *behaviour* (connections, temporary objects,
publishing) lives in the warehouse adapters; this module is only about SQL text.
"""

from __future__ import annotations

from typing import Callable

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from ..errors import CompileError

# every dialect `wn compile` writes; the first three are run by the test suite (see README)
DIALECTS = ("duckdb", "postgres", "spark", "databricks", "snowflake", "bigquery", "trino")
LIVE_DIALECTS = ("duckdb", "postgres", "spark")

# engines with an arg_min-style aggregate that takes a row's value by the minimum of another
# column *including NULL values* (DuckDB's arg_min_null): the first exposure's dimensions are
# picked in the GROUP BY itself; the others get the portable ROW_NUMBER() form
ARG_MIN_DIALECTS = ("duckdb",)

# engines whose temporary "tables" are views recomputed on every read (Spark, Databricks):
# wn writes ``CACHE TABLE name AS SELECT`` there, which computes the rows once, eagerly
CACHED_TEMP_DIALECTS = ("spark", "databricks")


def _percentile_as_spark(node: exp.Expression) -> exp.Expression:
    """DuckDB ``quantile_cont(x, q)`` -> Spark ``percentile(x, q)``: Spark's PERCENTILE_CONT takes
    only the WITHIN GROUP form; ``percentile`` is the exact, linearly interpolated quantile."""
    if isinstance(node, exp.PercentileCont) and node.expression is not None:
        return exp.Anonymous(this="percentile", expressions=[node.this, node.expression])
    return node


_REWRITES: dict[str, tuple[Callable[[exp.Expression], exp.Expression], ...]] = {
    "spark": (_percentile_as_spark,),
    "databricks": (_percentile_as_spark,),
}


def rewrite(node: exp.Expression, dialect: str) -> exp.Expression:
    """Apply the dialect's rewrites to a parsed statement (in place where possible)."""
    for rule in _REWRITES.get(dialect, ()):
        node = node.transform(rule, copy=False)
    return node


def write(node: exp.Expression, dialect: str, step: str) -> str:
    """A parsed DuckDB statement written for ``dialect``; a construct the dialect cannot express
    is a CompileError naming the step."""
    try:
        return rewrite(node, dialect).sql(dialect=dialect, pretty=True,
                                          unsupported_level=sqlglot.ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise CompileError(f"step '{step}': cannot be written for {dialect}: {exc}") from None


def transpile(duckdb_sql: str, dialect: str) -> str:
    """One DuckDB statement in ``dialect`` (for the short statements adapters build)."""
    if dialect == "duckdb":
        return duckdb_sql
    node = sqlglot.parse_one(duckdb_sql, read="duckdb")
    return rewrite(node, dialect).sql(dialect=dialect)


def create_temp(table: exp.Table, select: exp.Expression, dialect: str) -> exp.Expression:
    """A temporary table of ``select``'s rows, computed once."""
    if dialect in CACHED_TEMP_DIALECTS:
        return exp.Cache(this=table, expression=select, lazy=False)
    props = exp.Properties(expressions=[exp.TemporaryProperty()])
    return exp.Create(this=table, kind="TABLE", expression=select, properties=props)
