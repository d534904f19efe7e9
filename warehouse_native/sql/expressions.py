"""Small pure helpers that turn plan values into SQL fragments (DuckDB dialect)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import sqlglot
from sqlglot import exp


def literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def ts(value: dt.datetime) -> str:
    return f"timestamp '{value:%Y-%m-%d %H:%M:%S}'"


def date(value: dt.datetime | dt.date) -> str:
    return f"date '{value:%Y-%m-%d}'"


@lru_cache(maxsize=1024)
def qualify(text: str, alias: str) -> str:
    """Prefix every bare column of a user expression with the source alias."""
    node = sqlglot.parse_one(text, read="duckdb")
    for col in node.find_all(exp.Column):
        if not col.table:
            col.set("table", exp.to_identifier(alias))
    return node.sql(dialect="duckdb")
