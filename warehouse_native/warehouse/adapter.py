"""What every warehouse adapter offers: connect, execute, fetch, load, atomic publish."""

from __future__ import annotations

import abc
import contextlib
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import sqlglot

from ..errors import WarehouseError
from .publish import publish_in_transaction
from .tables import Columns

if TYPE_CHECKING:
    import numpy as np

    from .publish import Publication


# what every staged relation's name starts with (runner: ``<schema>.__wn_<run tag>_<step>``)
STAGE_PREFIX = "__wn_"


class Adapter(abc.ABC):
    """A connection to one warehouse.  SQL given to it is already in its dialect."""

    dialect: str = "duckdb"

    def __init__(self, schema: str):
        self.schema = schema

    # -- primitives -------------------------------------------------------------------
    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None: ...

    @abc.abstractmethod
    def fetch(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    def begin(self) -> None: ...

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def table_columns(self, schema: str, table: str) -> list[str]:
        """Column names of a table, or [] when it does not exist."""

    @abc.abstractmethod
    @abc.abstractmethod
    def query_column_type(self, select: str) -> str | None:
        """The engine's type name of the single column ``k`` of ``select`` (a SELECT that may
        read no rows), or None when the engine cannot tell without a row and there is none."""

    def load_columns(self, relation: str, columns: Mapping[str, np.ndarray]) -> int:
        """Replace ``relation`` with the given numpy columns (NaN floats -> NULL)."""

    @abc.abstractmethod
    def insert_rows(self, relation: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> None: ...

    placeholder = "?"
    # True: publishing happens in one transaction that rewrites state tables in place; False:
    # the engine has no multi-statement transactions, so runs publish by pointer (publish.py)
    publishes_in_place = True

    def publish(self, publication: "Publication", checkpoint: Callable[[str], None]) -> None:
        """Swap a run's staged results in (see warehouse/publish.py)."""
        publish_in_transaction(self, publication, checkpoint)

    # -- shared helpers ---------------------------------------------------------------
    def sql(self, duckdb_sql: str) -> str:
        """Write a DuckDB-dialect statement in this adapter's dialect."""
        if self.dialect == "duckdb":
            return duckdb_sql
        return sqlglot.transpile(duckdb_sql, read="duckdb", write=self.dialect)[0]

    @contextlib.contextmanager
    def joins_as_written(self) -> Iterator[None]:
        """Around a statement whose joins are each a driver LEFT JOIN a relation with at most
        one row per key (:attr:`Statement.joins_as_written`): where the engine would pick the
        hash-join build side from its row estimates, keep the written one.  By default nothing."""
        yield

    # -- runs side by side, and what killed runs leave behind --------------------------------
    @contextlib.contextmanager
    def run_guard(self, experiment: str, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Around one run of ``experiment``: runs of the same experiment take turns
        (:meth:`experiment_lock`), and the staging tables of runs that died (``kill -9``, a lost
        connection: their ``finally`` never ran) are dropped before and after it."""
        with self.experiment_lock(experiment, on_wait):
            self.drop_stray_stages()
            try:
                yield
            finally:
                with contextlib.suppress(Exception):   # e.g. the connection itself is gone
                    self.drop_stray_stages()

    @contextlib.contextmanager
    def experiment_lock(self, experiment: str, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Held for a whole run of ``experiment``.  Engines with one writing process per
        database (DuckDB) need nothing: the file lock already serialises runs."""
        yield

    @contextlib.contextmanager
    def stage_cleanup(self) -> Iterator[bool]:
        """Yields True while no other live run can own a staging table of this schema (then
        every one of them is stray).  By default the engine cannot tell: nothing is dropped."""
        yield False

    def drop_stray_stages(self) -> list[str]:
        """Drop the staging tables (``<schema>.__wn_*``) that no live run owns; returns their names."""
        dropped: list[str] = []
        with self.stage_cleanup() as safe:
            if not safe:
                return dropped
            for name, kind in self.relations(self.schema).items():
                if kind == "table" and name.lower().startswith(STAGE_PREFIX):
                    self.execute(f'DROP TABLE IF EXISTS {self.schema}."{name}"')
                    dropped.append(name)
        return dropped

    def lock_publish(self, schema: str) -> None:
        """Serialise publish transactions on the schema (inside the transaction); engines with a
        single writer per database need nothing."""

    def relations(self, schema: str) -> dict[str, str]:
        """Tables and views of a schema: name -> 'table' | 'view'."""
        rows = self.fetch("select table_name, table_type from information_schema.tables "
                          f"where table_schema = {self.placeholder}", [schema])
        return {r["table_name"]: "view" if "VIEW" in str(r["table_type"]).upper() else "table" for r in rows}

    def ensure_schema(self, schema: str) -> None:
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")

    def ensure_table(self, schema: str, table: str, columns: Columns) -> None:
        """Create the table if missing; add any contract columns it lacks (never rename)."""
        existing = self.table_columns(schema, table)
        if not existing:
            cols = ", ".join(f"{name} {kind}" for name, kind in columns)
            self.execute(self.sql(f"CREATE TABLE IF NOT EXISTS {schema}.{table} ({cols})"))
            return
        have = {c.lower() for c in existing}
        for name, kind in columns:
            if name.lower() not in have:
                self.execute(self.sql(f"ALTER TABLE {schema}.{table} ADD COLUMN {name} {kind}"))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.begin()
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self.rollback()
            raise
        else:
            self.commit()

    def __enter__(self) -> "Adapter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def as_warehouse_error(exc: Exception, *, step: str | None = None, sql_path: str | None = None) -> WarehouseError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    hint = None
    low = message.lower()
    if "ambiguous reference to catalog or schema" in low:
        hint = ("the DuckDB file is named like the target schema; rename the file (path:) or the "
                "schema in profiles.yml")
    elif "out of memory" in low:
        hint = ("the warehouse refused more memory than its limit: on DuckDB raise memory_limit in profiles.yml "
                "(it caps the buffer pool; beyond it DuckDB spills to temp_directory, but each operator still "
                "needs some blocks in memory) or lower threads (each thread holds its own blocks); incremental "
                "runs read only the new days")
    elif "does not exist" in low or "not found" in low:
        hint = ("check the table/column names in metrics/*.yml and models/, and that `wn seed` "
                "or your loaders have created the raw tables")
    return WarehouseError(message, step=step, sql_path=sql_path, hint=hint)
