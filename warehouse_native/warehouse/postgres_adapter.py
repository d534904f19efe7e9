"""PostgreSQL through psycopg 3 (install the extra: ``pip install 'warehouse-native[postgres]'``)."""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from ..errors import WarehouseError
from .adapter import Adapter
from .tables import Columns

# numpy dtype kind -> column type, spelled as pg_catalog.format_type() returns it so that an
# existing table's shape can be compared with the one a load would create.
_PG_TYPES = {"f": "double precision", "i": "bigint", "u": "bigint", "b": "boolean",
             "M": "timestamp without time zone"}
_COPY_CHUNK_ROWS = 100_000
# advisory locks wn takes for whole sessions are (namespace, hashtext(key)) pairs, a key space
# apart from the one-key publish lock
_LOCK_NAMESPACE = 30574   # "wn"
DEFAULT_LOCK_TIMEOUT = 60.0


class PostgresAdapter(Adapter):
    dialect = "postgres"
    placeholder = "%s"

    def __init__(self, *, schema: str = "wn", host: str = "127.0.0.1", port: int = 5432,
                 user: str = "postgres", password: str = "", dbname: str = "postgres",
                 lock_timeout: float | None = None, **_: Any):
        super().__init__(schema)
        self.lock_timeout = DEFAULT_LOCK_TIMEOUT if lock_timeout is None else float(lock_timeout)
        try:
            import psycopg
        except ImportError:
            raise WarehouseError("the postgres target needs psycopg",
                                 hint="pip install 'warehouse-native[postgres]'") from None
        try:
            self.con = psycopg.connect(host=str(host), port=int(port), user=str(user),
                                       password=str(password) or None, dbname=str(dbname),
                                       autocommit=True, connect_timeout=10, application_name="wn")
        except psycopg.Error as exc:
            raise WarehouseError(f"cannot connect to PostgreSQL at {host}:{port}/{dbname}: {exc}",
                                 hint="check the pg target in profiles.yml and that the server runs") from None
        self._psycopg = psycopg
        # a client killed mid-statement: the server stops the statement (and frees its locks)
        # within a second or two instead of finishing it first (PostgreSQL 14+)
        with contextlib.suppress(psycopg.Error):
            self.execute("set client_connection_check_interval = '1s'")
        # every wn session holds this lock shared: staging tables are only swept by a session
        # that can take it alone, i.e. while no other run can own them (see stage_cleanup)
        self.execute("select pg_advisory_lock_shared(%s, hashtext(%s))", [_LOCK_NAMESPACE, self._live_key])

    @property
    def _live_key(self) -> str:
        return f"wn live {self.schema}"

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self.con.cursor() as cur:
            cur.execute(sql, params)

    def fetch(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self.con.cursor() as cur:
            cur.execute(sql, params)
            if cur.description is None:
                return []
            names = [d.name for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    # The connection runs in autocommit; a transaction is "autocommit off" until commit or
    # rollback.  Autocommit is restored even when COMMIT itself fails (the server has then
    # rolled back), so that later statements, e.g. recording a failed run, are not left in an
    # implicit transaction that nobody commits.
    def begin(self) -> None:
        self.con.autocommit = False

    def commit(self) -> None:
        try:
            self.con.commit()
        finally:
            self._autocommit_again()

    def rollback(self) -> None:
        try:
            self.con.rollback()
        finally:
            self._autocommit_again()

    def _autocommit_again(self) -> None:
        with contextlib.suppress(Exception):
            if not self.con.closed:
                self.con.autocommit = True

    def close(self) -> None:
        self.con.close()

    @contextlib.contextmanager
    def experiment_lock(self, experiment: str, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Runs of one experiment take turns (a session lock for the whole run); runs of
        different experiments go side by side.  Waits up to ``lock_timeout`` seconds."""
        key = [_LOCK_NAMESPACE, f"wn run {self.schema} {experiment}"]
        deadline = time.monotonic() + self.lock_timeout
        waited = False
        while not self.fetch("select pg_try_advisory_lock(%s, hashtext(%s)) as ok", key)[0]["ok"]:
            holder = self._lock_holder(key)
            if time.monotonic() >= deadline:
                raise WarehouseError(
                    f"another run of experiment '{experiment}' on schema {self.schema} is in progress "
                    f"({holder}); gave up after waiting {self.lock_timeout:g} s",
                    hint="retry when it has finished, or raise lock_timeout (seconds) in profiles.yml")
            if not waited and on_wait is not None:
                on_wait(f"waiting for another run of {experiment} ({holder})")
            waited = True
            time.sleep(0.2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                self.execute("select pg_advisory_unlock(%s, hashtext(%s))", key)

    def _lock_holder(self, key: list[Any]) -> str:
        rows = self.fetch(
            "select a.pid, a.application_name, a.backend_start from pg_locks as l "
            "join pg_stat_activity as a on a.pid = l.pid where l.locktype = 'advisory' and l.granted "
            "and l.classid = %s and l.objid = (hashtext(%s)::bigint & 4294967295)::oid and l.objsubid = 2", key)
        if not rows:
            return "it has just finished"
        r = rows[0]
        return f"PostgreSQL backend pid {r['pid']}, {r['application_name'] or 'no application name'}, " \
               f"connected at {r['backend_start']:%Y-%m-%d %H:%M:%S}"

    @contextlib.contextmanager
    def stage_cleanup(self) -> Iterator[bool]:
        key = [_LOCK_NAMESPACE, self._live_key]
        alone = bool(self.fetch("select pg_try_advisory_lock(%s, hashtext(%s)) as ok", key)[0]["ok"])
        try:
            yield alone
        finally:
            if alone:
                self.execute("select pg_advisory_unlock(%s, hashtext(%s))", key)

    def lock_publish(self, schema: str) -> None:
        # two experiments publishing at once would each rebuild wn.exposures from what they saw
        self.execute("select pg_advisory_xact_lock(hashtext(%s))", [f"wn publish {schema}"])

    def table_columns(self, schema: str, table: str) -> list[str]:
        rows = self.fetch("select column_name from information_schema.columns where table_schema = %s "
                          "and table_name = %s order by ordinal_position", [schema, table])
        return [r["column_name"] for r in rows]

    def query_column_type(self, select: str) -> str | None:
        rows = self.fetch(f"select pg_typeof(k)::text as t from ({select} limit 1) as one")
        return str(rows[0]["t"]) if rows else None

    def _column_types(self, relation: str) -> list[tuple[str, str]]:
        """(name, type) of an existing table's columns, or [] when it does not exist."""
        rows = self.fetch(
            "select a.attname as name, format_type(a.atttypid, a.atttypmod) as type "
            "from pg_attribute as a where a.attrelid = to_regclass(%s) and a.attnum > 0 "
            "and not a.attisdropped order by a.attnum", [relation])
        return [(r["name"], r["type"]) for r in rows]

    def load_columns(self, relation: str, columns: Mapping[str, np.ndarray]) -> int:
        """Replace ``relation``'s rows with the columns, atomically, through binary COPY.

        When the table exists with the same columns and types it is truncated and refilled, so
        views on it (e.g. wn's models) keep working; otherwise it is dropped and recreated.
        """
        arrays = {k.lower(): np.asarray(v) for k, v in columns.items()}
        if not arrays:
            raise WarehouseError(f"nothing to load into {relation}: no columns")
        n = len(next(iter(arrays.values())))
        if any(len(a) != n for a in arrays.values()):
            raise WarehouseError(f"cannot load {relation}: columns have different lengths")
        wanted = [(k, _PG_TYPES.get(a.dtype.kind, "text")) for k, a in arrays.items()]
        schema, _, _ = relation.rpartition(".")
        psycopg = self._psycopg
        try:
            if schema:
                self.ensure_schema(schema)
            with self.transaction():
                existing = self._column_types(relation)
                if existing == wanted:
                    self.execute(f"TRUNCATE TABLE {relation}")
                else:
                    if existing:
                        self.execute(f"DROP TABLE {relation}")
                    self.execute(f"CREATE TABLE {relation} ({', '.join(f'{k} {t}' for k, t in wanted)})")
                types = [_COPY_TYPES.get(a.dtype.kind, "text") for a in arrays.values()]
                with self.con.cursor() as cur:
                    with cur.copy(f"COPY {relation} ({', '.join(arrays)}) FROM STDIN (FORMAT BINARY)") as copy:
                        copy.set_types(types)
                        for start in range(0, n, _COPY_CHUNK_ROWS):
                            stop = min(start + _COPY_CHUNK_ROWS, n)
                            for row in zip(*(_copy_values(a[start:stop]) for a in arrays.values())):
                                copy.write_row(row)
        except psycopg.errors.DependentObjectsStillExist as exc:
            detail = (exc.diag.message_detail or "").replace("\n", "; ")
            raise WarehouseError(
                f"cannot replace {relation}: its columns change and other objects depend on it"
                f"{' (' + detail + ')' if detail else ''}",
                hint="drop those views (wn recreates its own models on the next run), then retry") from None
        except psycopg.Error as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WarehouseError(f"cannot load {relation}: {message}") from None
        return n

    def insert_rows(self, relation: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        names = ", ".join(c for c, _ in columns)
        marks = ", ".join("%s" for _ in columns)
        with self.con.cursor() as cur:
            cur.executemany(f"INSERT INTO {relation} ({names}) VALUES ({marks})", [list(r) for r in rows])


# -- COPY: binary format, fed column-wise --------------------------------------------------
# Each numpy column becomes one Python list (``tolist`` is C); psycopg's C writer then packs
# the rows.  Binary COPY keeps doubles and timestamps bit-exact (no text round trip) and is
# several times faster than formatting text per value.

_COPY_TYPES = {"f": "float8", "i": "int8", "u": "int8", "b": "bool", "M": "timestamp"}


def _copy_values(a: np.ndarray) -> list[Any]:
    """One column as Python values for binary COPY (NaN/NaT/None -> NULL)."""
    kind = a.dtype.kind
    if kind == "f":
        values = a.astype(np.float64).tolist()
        for i in np.flatnonzero(np.isnan(a)).tolist():
            values[i] = None
        return values
    if kind == "M":
        return a.astype("datetime64[us]").tolist()   # NaT -> None
    if kind in "iub":
        return a.tolist()
    values = a.tolist()
    if all(type(v) is str or v is None for v in values):
        return values
    return [_text_value(v) for v in values]


def _text_value(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)
