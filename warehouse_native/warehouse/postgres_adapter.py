"""PostgreSQL through psycopg 3 (install the extra: ``pip install 'warehouse-native[postgres]'``)."""

from __future__ import annotations

import io
import math
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import WarehouseError
from .adapter import Adapter
from .tables import Columns

_PG_TYPES = {"f": "double precision", "i": "bigint", "u": "bigint", "b": "boolean", "M": "timestamp"}


class PostgresAdapter(Adapter):
    dialect = "postgres"
    placeholder = "%s"

    def __init__(self, *, schema: str = "wn", host: str = "127.0.0.1", port: int = 5432,
                 user: str = "postgres", password: str = "", dbname: str = "postgres", **_: Any):
        super().__init__(schema)
        try:
            import psycopg
        except ImportError:
            raise WarehouseError("the postgres target needs psycopg",
                                 hint="pip install 'warehouse-native[postgres]'") from None
        try:
            self.con = psycopg.connect(host=str(host), port=int(port), user=str(user),
                                       password=str(password) or None, dbname=str(dbname),
                                       autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise WarehouseError(f"cannot connect to PostgreSQL at {host}:{port}/{dbname}: {exc}",
                                 hint="check the pg target in profiles.yml and that the server runs") from None
        self._psycopg = psycopg

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

    def begin(self) -> None:
        self.con.autocommit = False

    def commit(self) -> None:
        self.con.commit()
        self.con.autocommit = True

    def rollback(self) -> None:
        self.con.rollback()
        self.con.autocommit = True

    def close(self) -> None:
        self.con.close()

    def table_columns(self, schema: str, table: str) -> list[str]:
        rows = self.fetch("select column_name from information_schema.columns where table_schema = %s "
                          "and table_name = %s order by ordinal_position", [schema, table])
        return [r["column_name"] for r in rows]

    def load_columns(self, relation: str, columns: Mapping[str, np.ndarray]) -> int:
        schema, _, _ = relation.rpartition(".")
        if schema:
            self.ensure_schema(schema)
        arrays = {k: np.asarray(v) for k, v in columns.items()}
        defs = ", ".join(f"{k} {_PG_TYPES.get(a.dtype.kind, 'text')}" for k, a in arrays.items())
        self.execute(f"DROP TABLE IF EXISTS {relation}")
        self.execute(f"CREATE TABLE {relation} ({defs})")
        n = len(next(iter(arrays.values()))) if arrays else 0
        names = list(arrays)
        with self.con.cursor() as cur:
            with cur.copy(f"COPY {relation} ({', '.join(names)}) FROM STDIN") as copy:
                for i in range(n):
                    copy.write_row([_plain(arrays[k][i]) for k in names])
        return n

    def insert_rows(self, relation: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        names = ", ".join(c for c, _ in columns)
        marks = ", ".join("%s" for _ in columns)
        with self.con.cursor() as cur:
            cur.executemany(f"INSERT INTO {relation} ({names}) VALUES ({marks})", [list(r) for r in rows])


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64):
            return value.astype("datetime64[us]").item()
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
