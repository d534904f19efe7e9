"""How a run compares unit ids: in their own type when every source agrees, else as text.

A join on integer ids in their own type is about twice as fast in DuckDB as one on ids cast
to text on both sides, so wn keeps the key's type through the pipeline and casts only where a
published relation needs one type across experiments (``wn.exposures``, which casts to text).
The types are read from the warehouse when a run starts (one query per source, no rows read).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .adapter import Adapter

_FAMILIES = {
    "string": ("varchar", "text", "string", "char", "character", "bpchar", "character varying"),
    "integer": ("tinyint", "smallint", "integer", "int", "bigint", "hugeint", "utinyint", "usmallint",
                "uinteger", "ubigint", "int2", "int4", "int8", "long", "short", "byte"),
}


def type_family(type_name: str) -> str:
    """``integer``, ``string``, or the type's own name (lower case, without parameters)."""
    base = type_name.strip().lower().split("(")[0].strip()
    for family, names in _FAMILIES.items():
        if base in names:
            return family
    return base


def column_type(adapter: "Adapter", relation: str, column: str) -> str | None:
    """The type of ``column`` in ``relation`` (a table name or a parenthesised SELECT), or None
    when the engine cannot tell without rows and the relation has none."""
    return adapter.query_column_type(f"select src.{column} as k from {relation} as src")


def unit_keys(adapter: "Adapter", columns: list[tuple[str, str]]) -> str:
    """How the run compares unit ids, given each source's (relation, unit column): the type
    family they share, or ``text`` when they differ (or one cannot be told)."""
    families = set()
    for relation, column in columns:
        kind = column_type(adapter, relation, column)
        families.add(type_family(kind) if kind else None)
    return families.pop() if len(families) == 1 and None not in families else "text"
