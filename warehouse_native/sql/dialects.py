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

# engines whose bit aggregates make "distinct days with a row" a per-unit bitmask of day
# indexes (bit_or of 1 << day, then bit_count): exact, and about twice as fast as COUNT(DISTINCT
# date) in DuckDB.  The others count distinct dates.  (PostgreSQL has bit_or but no bit_count
# for bigint: see _bit_count_as_postgres.)
BITMASK_DIALECTS = ("duckdb", "postgres", "spark", "databricks")
BITMASK_WORD = 63   # day indexes per bigint word (bits 0..62: no shift into the sign bit)

# engines where a stateless run is one statement: the exposures a CTE read by every scan, the
# unit metrics, the percentile statements and the exposure counts, instead of a staged
# temporary table (its write was a quarter of a one-metric run at 1M units in DuckDB, which
# materialises the CTE once).  Not PostgreSQL (a CTE scan is parallel-restricted: the staged
# table measured faster) nor Spark (it inlines a CTE into every reader).
ONE_STATEMENT_DIALECTS = ("duckdb",)

# engines whose temporary "tables" are views recomputed on every read (Spark, Databricks):
# wn writes ``CACHE TABLE name AS SELECT`` there, which computes the rows once, eagerly
CACHED_TEMP_DIALECTS = ("spark", "databricks")


def _percentile_as_spark(node: exp.Expression) -> exp.Expression:
    """DuckDB ``quantile_cont(x, q)`` -> Spark ``percentile(x, q)``: Spark's PERCENTILE_CONT takes
    only the WITHIN GROUP form; ``percentile`` is the exact, linearly interpolated quantile."""
    if isinstance(node, exp.PercentileCont) and node.expression is not None:
        return exp.Anonymous(this="percentile", expressions=[node.this, node.expression])
    return node


def _bit_count_as_postgres(node: exp.Expression) -> exp.Expression:
    """``bit_count(x)`` of a bigint -> the number of 1s in its 64-bit string (PostgreSQL has
    bit_count only for bit strings and bytea)."""
    if isinstance(node, exp.Anonymous) and str(node.this).lower() == "bit_count" and len(node.expressions) == 1:
        bits = exp.cast(exp.cast(node.expressions[0], exp.DataType.build("bit(64)", dialect="postgres")), "text")
        ones = exp.Anonymous(this="replace", expressions=[bits, exp.Literal.string("0"), exp.Literal.string("")])
        return exp.Length(this=ones)
    return node


_REWRITES: dict[str, tuple[Callable[[exp.Expression], exp.Expression], ...]] = {
    "spark": (_percentile_as_spark,),
    "databricks": (_percentile_as_spark,),
    "postgres": (_bit_count_as_postgres,),
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
