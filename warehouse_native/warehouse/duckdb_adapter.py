"""DuckDB, the embedded default warehouse."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import duckdb
import numpy as np

from ..errors import WarehouseError
from .adapter import Adapter
from .tables import Columns


class DuckDBAdapter(Adapter):
    dialect = "duckdb"

    def __init__(self, path: str, schema: str = "wn", *, threads: int | None = None,
                 memory_limit: str | None = None, temp_directory: str | None = None,
                 read_only: bool = False):
        super().__init__(schema)
        if read_only and path != ":memory:" and not Path(path).exists():
            raise WarehouseError(f"no DuckDB database at {path} yet",
                                 hint="run `wn seed` (demo data) and then `wn run --experiment NAME`")
        # row order of intermediate tables never matters to wn: letting DuckDB drop it saves
        # memory on large CREATE TABLE AS statements
        config: dict[str, Any] = {"preserve_insertion_order": False}
        if threads:
            config["threads"] = int(threads)
        if memory_limit:
            config["memory_limit"] = str(memory_limit)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = temp_directory or str(Path(path).with_suffix(".tmp"))
        try:
            self.con = duckdb.connect(path, read_only=read_only, config=config)
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot open DuckDB database {path}: {exc}",
                                 hint="close other programs holding the file, or check the path "
                                      "in profiles.yml") from None
        self.path = path

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.con.execute(sql, params) if params else self.con.execute(sql)

    def fetch(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        cur = self.con.execute(sql, params) if params else self.con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def begin(self) -> None:
        self.con.execute("BEGIN TRANSACTION")

    def commit(self) -> None:
        self.con.execute("COMMIT")

    def rollback(self) -> None:
        self.con.execute("ROLLBACK")

    def close(self) -> None:
        self.con.close()

    def table_columns(self, schema: str, table: str) -> list[str]:
        rows = self.con.execute(
            "select column_name from information_schema.columns where table_schema = ? and "
            "table_name = ? order by ordinal_position", [schema, table]).fetchall()
        return [r[0] for r in rows]

    def load_columns(self, relation: str, columns: Mapping[str, np.ndarray]) -> int:
        schema, _, _ = relation.rpartition(".")
        if schema:
            self.ensure_schema(schema)
        frame = {k: np.asarray(v) for k, v in columns.items()}
        name = "__wn_load"
        self.con.register(name, frame)
        try:
            select = ", ".join(
                f"case when isnan({k}) then null else {k} end as {k}" if frame[k].dtype.kind == "f" else k
                for k in frame)
            self.con.execute(f"CREATE OR REPLACE TABLE {relation} AS SELECT {select} FROM {name}")
        finally:
            self.con.unregister(name)
        return len(next(iter(frame.values()))) if frame else 0

    def insert_rows(self, relation: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        # bulk insert through a registered numpy frame: executemany and big parameter lists cost
        # a round trip or a bind per value in DuckDB
        frame = {name: _column(kind, [r[j] for r in rows]) for j, (name, kind) in enumerate(columns)}
        names = ", ".join(c for c, _ in columns)
        select = ", ".join(f"CAST({c} AS {kind})" for c, kind in columns)
        self.con.register("__wn_rows", frame)
        try:
            self.con.execute(f"INSERT INTO {relation} ({names}) SELECT {select} FROM __wn_rows")
        finally:
            self.con.unregister("__wn_rows")


def _column(kind: str, values: list[Any]) -> np.ndarray:
    """A numpy column DuckDB reads with NULLs intact (NaN / NaT / None become NULL)."""
    if kind in ("double", "bigint", "boolean"):
        return np.array([np.nan if v is None else float(v) for v in values], dtype="float64")
    if kind == "timestamp":
        return np.array([np.datetime64("NaT") if v is None else np.datetime64(v, "us") for v in values],
                        dtype="datetime64[us]")
    return np.array([None if v is None else str(v) for v in values], dtype=object)
