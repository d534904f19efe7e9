"""DuckDB, the embedded default warehouse."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import duckdb

from ..errors import WarehouseError
from .adapter import Adapter
from .tables import Columns

if TYPE_CHECKING:  # numpy is imported by the loads and inserts that use it, not before a run's first statement
    import numpy as np

# seconds a run waits for another process's lock on the DuckDB file (profile: lock_timeout)
DEFAULT_LOCK_TIMEOUT = 60.0
# the optimizer that picks a hash join's build side from row estimates (see joins_as_written)
_BUILD_SIDE = "build_side_probe_side"
_HOLDER = re.compile(r"lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class DuckDBAdapter(Adapter):
    dialect = "duckdb"

    def __init__(self, path: str, schema: str = "wn", *, threads: int | None = None,
                 memory_limit: str | None = None, temp_directory: str | None = None,
                 read_only: bool = False, lock_timeout: float | None = None):
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
        self.con = _open(path, read_only, config,
                         DEFAULT_LOCK_TIMEOUT if lock_timeout is None else float(lock_timeout))
        self.path = path
        self.read_only = read_only

    @contextlib.contextmanager
    def stage_cleanup(self) -> Iterator[bool]:
        # one writing process per file and this one holds the lock: no other run is live
        # (a read-only connection cannot drop anything and owns no stage)
        yield not self.read_only

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.con.execute(sql, params) if params else self.con.execute(sql)

    @contextlib.contextmanager
    def joins_as_written(self) -> Iterator[None]:
        """DuckDB estimates a filtered or staged relation at a fraction of its rows and then
        builds its hash tables on the wide chain of joined unit rows instead of on each per-unit
        relation: an incremental run's aggregates statement took twice as long (benchmarks/notes.md,
        eighth session).  Its build/probe-side optimizer is switched off for the statement; an
        engine without it runs the statement as planned."""
        try:
            self.execute(f"SET disabled_optimizers = '{_BUILD_SIDE}'")
            switched = True
        except duckdb.Error:   # a DuckDB version without this optimizer
            switched = False
        try:
            yield
        finally:
            if switched:
                self.execute("RESET disabled_optimizers")

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

    def query_column_type(self, select: str) -> str | None:
        rows = self.fetch(f"describe {select}")
        return str(rows[0]["column_type"]) if rows else None

    def load_columns(self, relation: str, columns: Mapping[str, np.ndarray]) -> int:
        import numpy as np

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


def _open(path: str, read_only: bool, config: dict[str, Any], lock_timeout: float) -> duckdb.DuckDBPyConnection:
    """Connect, waiting up to ``lock_timeout`` seconds while another process holds the file
    (DuckDB allows one writing process per file, and no reader beside a writer)."""
    deadline = time.monotonic() + max(lock_timeout, 0.0)
    pause = 0.05
    while True:
        try:
            return duckdb.connect(path, read_only=read_only, config=config)
        except duckdb.Error as exc:
            text = str(exc)
            if "could not set lock" not in text.lower():
                raise WarehouseError(f"cannot open DuckDB database {path}: {text}",
                                     hint="check the path in profiles.yml") from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise WarehouseError(_locked_message(path, text, lock_timeout), hint=(
                    "DuckDB lets one process write a database file (and nobody read it meanwhile): wait for "
                    "that process to finish and retry (exit code 4 is worth retrying), raise lock_timeout "
                    "(seconds) in profiles.yml, or stop the process holding it")) from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 1.0)


def _locked_message(path: str, text: str, waited: float) -> str:
    holder = _HOLDER.search(text)
    who = f"process {holder['pid']} ({holder['program']})" if holder else "another process"
    return f"the DuckDB database {path} is locked by {who}; gave up after waiting {waited:g} s"


def _column(kind: str, values: list[Any]) -> np.ndarray:
    """A numpy column DuckDB reads with NULLs intact (NaN / NaT / None become NULL)."""
    import numpy as np

    if kind in ("double", "bigint", "boolean"):
        return np.array([np.nan if v is None else float(v) for v in values], dtype="float64")
    if kind == "timestamp":
        return np.array([np.datetime64("NaT") if v is None else np.datetime64(v, "us") for v in values],
                        dtype="datetime64[us]")
    return np.array([None if v is None else str(v) for v in values], dtype=object)
