"""Checks that a metric's ``filter`` / ``value`` is one SQL expression, nothing more.

Parsed with sqlglot in the DuckDB dialect (the dialect wn writes templates in).  A
statement, a ``;``, DDL, a sub-query or a column the source does not declare is refused.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.tokens import TokenType

_BOOLEAN_TOPS = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.Column, exp.Func,
                 exp.Case, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike)
_FORBIDDEN = (exp.Query, exp.DDL, exp.DML, exp.Command, exp.Subquery, exp.Star,
              exp.Window, exp.AggFunc)


def parse_expression(text: str) -> exp.Expression:
    """Parse ``text`` as exactly one expression or raise ValueError saying why."""
    if _has_semicolon(text):
        raise ValueError("contains ';' — only one SQL expression is allowed, never a statement")
    try:
        parsed = sqlglot.parse(text, read="duckdb")
    except ParseError as exc:
        first = exc.errors[0]["description"] if exc.errors else str(exc)
        raise ValueError(f"is not valid SQL: {first}") from None
    except Exception as exc:  # noqa: BLE001 - sqlglot's tokenizer errors (and its rare slips) on odd text
        raise ValueError(f"is not valid SQL: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    parsed = [p for p in parsed if p is not None]
    if len(parsed) != 1:
        raise ValueError("must be exactly one SQL expression")
    node = parsed[0]
    if isinstance(node, (exp.Query, exp.DDL, exp.DML, exp.Command)):
        raise ValueError(f"is a {node.key.upper()} statement, not an expression")
    bad = node.find(*_FORBIDDEN)
    if bad is not None:
        what = "an aggregate or window function" if isinstance(bad, (exp.AggFunc, exp.Window)) \
            else f"a {bad.key}"
        raise ValueError(f"contains {what}; a row-level expression over the source is expected")
    return node


def _has_semicolon(text: str) -> bool:
    try:
        tokens = sqlglot.tokenize(text, read="duckdb")
    except Exception:  # noqa: BLE001 - an untokenisable text is judged by the parser
        return ";" in text
    return any(t.token_type == TokenType.SEMICOLON for t in tokens)


def check_filter(text: str, columns: set[str] | None) -> exp.Expression:
    node = parse_expression(text)
    inner = node.unnest() if isinstance(node, exp.Paren) else node
    if not isinstance(inner, _BOOLEAN_TOPS) or isinstance(inner, exp.Literal):
        raise ValueError("is not a boolean condition (e.g. \"event_name = 'purchase'\")")
    _check_columns(node, columns)
    return node


def check_value(text: str, columns: set[str] | None) -> exp.Expression:
    node = parse_expression(text)
    _check_columns(node, columns)
    return node


def _check_columns(node: exp.Expression, columns: set[str] | None) -> None:
    if columns is None:
        return
    known = {c.lower() for c in columns}
    for col in node.find_all(exp.Column):
        if col.table:
            raise ValueError(f"refers to '{col.sql()}'; use the source's bare column names")
        if col.name.lower() not in known:
            raise ValueError(f"uses unknown column '{col.name}' (the source declares: "
                             f"{', '.join(sorted(columns))})")


IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
def check_identifier(text: str) -> str:
    """A column name wn writes into SQL unquoted (timestamp, unit, dimension, ... columns)."""
    if not IDENTIFIER_RE.match(text):
        plain = re.sub(r"\W+", "_", text).strip("_").lower() or "col"
        if plain[0].isdigit():
            plain = f"c_{plain}"
        raise ValueError(f"'{text}' is not a plain column name (letters, digits and _, wn writes it into SQL "
                         f"as it is): rename it in a query source, e.g. sql: 'select *, \"{text}\" as {plain} "
                         f"from ...'")
    return text


def check_table(text: str) -> str:
    """A table or view name, optionally qualified (``schema.table``, ``raw."odd events"``): nothing else."""
    why = "a table or view name such as raw.events or raw.\"my events\" (for a query, use sql: instead)"
    if _has_semicolon(text):
        raise ValueError(f"contains ';': {why}")
    try:
        node = sqlglot.parse_one(text, into=exp.Table, read="duckdb")
    except Exception:  # noqa: BLE001 - any parse failure: not a table name
        raise ValueError(f"'{text}' is not {why}") from None
    parts = [node.args.get(k) for k in ("this", "db", "catalog")]
    if node.comments or not all(p is None or isinstance(p, exp.Identifier) for p in parts) \
            or set(node.args) - {"this", "db", "catalog"} and any(node.args.get(k) for k in set(node.args) - {"this", "db", "catalog"}):
        raise ValueError(f"'{text}' is not {why}")
    return text
