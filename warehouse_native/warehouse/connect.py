"""Open the adapter for a resolved target."""

from __future__ import annotations

from ..project.profiles import Target
from .adapter import Adapter


def connect(target: Target, *, read_only: bool = False) -> Adapter:
    if target.type == "duckdb":
        from .duckdb_adapter import DuckDBAdapter

        s = target.settings
        return DuckDBAdapter(s["path"], target.schema, threads=s.get("threads"),
                             memory_limit=s.get("memory_limit"), temp_directory=s.get("temp_directory"),
                             read_only=read_only, lock_timeout=s.get("lock_timeout"))
    if target.type == "postgres":
        from .postgres_adapter import PostgresAdapter

        return PostgresAdapter(schema=target.schema, **target.settings)
    if target.type == "spark":
        from .spark_adapter import SparkAdapter

        return SparkAdapter(schema=target.schema, **target.settings)
    raise AssertionError(f"unsupported target type {target.type}")  # validated in profiles
