"""Apache Spark through pyspark (install the extra: ``pip install 'warehouse-native[spark]'``).

Two ways in, chosen by the target's ``method``:

* ``session``: a SparkSession started in this process from ``master`` (``local[2]`` on a
  laptop, ``yarn`` or ``spark://...`` on a cluster), with a Hive metastore so that tables
  outlive the process.  Locally the metastore is an embedded Derby database under
  ``warehouse_dir`` (one process at a time); on a cluster, ``conf`` points at the real one.
* ``connect``: a Spark Connect server (``sc://host:15002``), which is also how Databricks
  clusters and SQL warehouses are reached (``sc://<workspace>:443/;token=...;x-databricks-cluster-id=...``).

Spark has no multi-statement transactions, so runs publish by pointer
(:func:`~warehouse_native.warehouse.publish.publish_by_pointer`); temporary tables are
``CACHE TABLE`` temporary views (see :mod:`warehouse_native.sql.dialects`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sys
import warnings
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ..errors import WarehouseError
from .adapter import Adapter
from .publish import publish_by_pointer
from .tables import Columns

# portable column types of the table contract -> Spark types (timestamps are naive: wn never
# converts time zones, and TIMESTAMP_NTZ keeps what the sources hold)
_SPARK_TYPES = {"varchar": "string", "double": "double", "bigint": "bigint", "boolean": "boolean",
                "timestamp": "timestamp_ntz", "date": "date"}

# settings that keep a local session quiet and sized for one machine; a profile's conf wins
_SESSION_DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
}


_LOG4J = Path(__file__).with_name("spark_log4j2.properties")


def _quiet() -> None:
    """pyspark logs every failed statement as an ERROR on the Python side and warns about
    pandas versions it has not been tested with; wn reports errors itself."""
    for name in ("SQLQueryContextLogger", "py4j", "py4j.clientserver", "pyspark"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support.*")


@contextlib.contextmanager
def _jvm_output_to(path: Path) -> Iterator[None]:
    """Send what the Spark JVM prints (it inherits this process's stderr when it starts) to a
    log file instead of the user's terminal."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def session_from_settings(settings: Mapping[str, Any]):
    """A SparkSession for a ``type: spark`` target (or the one already running in this process)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise WarehouseError("the spark target needs pyspark",
                             hint="pip install 'warehouse-native[spark]' (and Java 17+ for method: session)") from None
    _quiet()
    method = settings.get("method", "session")
    conf = {str(k): str(v) for k, v in (settings.get("conf") or {}).items()}
    if method == "connect":
        url = str(settings["url"])
        if settings.get("token"):
            url += ("" if url.endswith("/") or ";" in url else "/") + f";token={settings['token']}"
        builder = SparkSession.builder.remote(url)
        for key, value in conf.items():
            builder = builder.config(key, value)
        return builder.getOrCreate()
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        raise WarehouseError("the spark target (method: session) needs Java 17 or later",
                             hint="install a JDK (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME")
    active = SparkSession.getActiveSession()
    if active is not None:   # one JVM per process: reuse it (its static settings stay as they are)
        return active
    builder = SparkSession.builder.master(str(settings.get("master", "local[*]"))).appName(
        str(settings.get("app_name", "wn")))
    for key, value in _SESSION_DEFAULTS.items():
        builder = builder.config(key, value)
    java_options = [f"-Dlog4j2.configurationFile={_LOG4J.as_uri()}"]
    warehouse = settings.get("warehouse_dir")
    if warehouse:
        path = Path(warehouse)
        path.mkdir(parents=True, exist_ok=True)
        builder = builder.config("spark.sql.warehouse.dir", str(path))
        if settings.get("metastore", "derby") == "derby":
            # an embedded metastore beside the data, so that tables outlive the process
            builder = builder.config("spark.sql.catalogImplementation", "hive").config(
                "spark.hadoop.javax.jdo.option.ConnectionURL",
                f"jdbc:derby:;databaseName={path / 'metastore_db'};create=true")
            java_options.append(f"-Dderby.system.home={path}")
    builder = builder.config("spark.driver.extraJavaOptions", " ".join(java_options))
    for key, value in conf.items():
        builder = builder.config(key, value)
    log = Path(warehouse or tempfile.gettempdir()) / "spark-driver.log"
    try:
        with _jvm_output_to(log):
            spark = builder.getOrCreate()
    except Exception as exc:   # the JVM did not start
        raise WarehouseError(f"cannot start Spark ({settings.get('master', 'local[*]')}): "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}",
                             hint=f"check Java 17+, the master URL and conf in profiles.yml; the JVM's "
                                  f"output is in {log}") from None
    spark.sparkContext.setLogLevel(str(settings.get("log_level", "ERROR")))
    return spark


class SparkAdapter(Adapter):
    dialect = "spark"
    placeholder = "?"
    publishes_in_place = False

    def __init__(self, *, schema: str = "wn", spark: Any = None, **settings: Any):
        super().__init__(schema)
        self.settings = settings
        self.spark = spark if spark is not None else session_from_settings(settings)
        self.local = str(settings.get("method", "session")) == "session" and str(
            self.spark.conf.get("spark.master", "")).startswith("local")
        if settings.get("catalog"):
            self.execute(f"USE CATALOG {settings['catalog']}")

    # -- primitives -----------------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.spark.sql(sql, args=list(params)) if params else self.spark.sql(sql)

    def fetch(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        frame = self.spark.sql(sql, args=list(params)) if params else self.spark.sql(sql)
        return [row.asDict() for row in frame.collect()]

    # no transactions: publish_by_pointer orders its writes so that no step needs one
    def begin(self) -> None:
        pass

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        # the session is the process's (and may be shared): leave it running; Python's exit stops it
        pass

    def publish(self, publication, checkpoint) -> None:
        publish_by_pointer(self, publication, checkpoint)

    # -- catalog ----------------------------------------------------------------------------
    def ensure_schema(self, schema: str) -> None:
        if not self.spark.catalog.databaseExists(schema):
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")

    def relations(self, schema: str) -> dict[str, str]:
        # SHOW TABLES / SHOW VIEWS read names only (the catalog API fetches every table's metadata)
        if not self.spark.catalog.databaseExists(schema):
            return {}
        views = {r["viewName"] for r in self.fetch(f"SHOW VIEWS IN {schema}") if not r["isTemporary"]}
        return {r["tableName"]: "view" if r["tableName"] in views else "table"
                for r in self.fetch(f"SHOW TABLES IN {schema}") if not r["isTemporary"]}

    def table_columns(self, schema: str, table: str) -> list[str]:
        if not self.spark.catalog.tableExists(f"{schema}.{table}"):
            return []
        return list(self.spark.table(f"{schema}.{table}").columns)

    def query_column_type(self, select: str) -> str | None:
        rows = self.fetch(f"describe query {select}")
        return str(rows[0]["data_type"]) if rows else None

    def ensure_table(self, schema: str, table: str, columns: Columns) -> None:
        existing = {c.lower() for c in self.table_columns(schema, table)}
        if not existing:
            cols = ", ".join(f"{name} {_SPARK_TYPES[kind]}" for name, kind in columns)
            self.execute(f"CREATE TABLE IF NOT EXISTS {schema}.{table} ({cols}) USING parquet")
            return
        missing = [(n, k) for n, k in columns if n.lower() not in existing]
        if missing:
            self.execute(f"ALTER TABLE {schema}.{table} ADD COLUMNS "
                         f"({', '.join(f'{n} {_SPARK_TYPES[k]}' for n, k in missing)})")

    # -- loading ----------------------------------------------------------------------------
    def load_columns(self, relation: str, columns: Mapping[str, np.ndarray]) -> int:
        """Replace ``relation`` with the columns, as a Parquet table.  A local session reads a
        Parquet file written by DuckDB; a remote one receives the rows as Arrow batches."""
        import duckdb

        frame = {k: np.asarray(v) for k, v in columns.items()}
        if not frame:
            raise WarehouseError(f"nothing to load into {relation}: no columns")
        schema, _, _ = relation.rpartition(".")
        if schema:
            self.ensure_schema(schema)
        select = ", ".join(f"case when isnan({k}) then null else {k} end as {k}" if a.dtype.kind == "f" else k
                           for k, a in frame.items())
        con = duckdb.connect()
        try:
            con.register("__wn_load", frame)
            if self.local:
                folder = Path(tempfile.mkdtemp(prefix="wn_load_"))
                try:
                    con.execute(f"COPY (SELECT {select} FROM __wn_load) TO '{folder / 'part.parquet'}' (FORMAT parquet)")
                    self.execute(f"DROP TABLE IF EXISTS {relation}")
                    self.execute(f"CREATE TABLE {relation} USING parquet AS SELECT * FROM parquet.`{folder}`")
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
            else:
                result = con.execute(f"SELECT {select} FROM __wn_load")
                # (DuckDB 2 renamed fetch_arrow_table to to_arrow_table)
                table = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
                table = table()
                self.spark.createDataFrame(table).write.mode("overwrite").format("parquet").saveAsTable(relation)
        finally:
            con.close()
        return len(next(iter(frame.values())))

    def insert_rows(self, relation: str, columns: Columns, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        schema = ", ".join(f"{name} {_SPARK_TYPES[kind]}" for name, kind in columns)
        data = [tuple(_python_value(kind, r[j]) for j, (_, kind) in enumerate(columns)) for r in rows]
        frame = self.spark.createDataFrame(data, schema=schema)
        view = "__wn_rows"
        frame.createOrReplaceTempView(view)
        try:
            names = ", ".join(c for c, _ in columns)
            self.execute(f"INSERT INTO {relation} ({names}) SELECT {names} FROM {view}")
        finally:
            self.spark.catalog.dropTempView(view)


def _python_value(kind: str, value: Any) -> Any:
    """A value as the Python type Spark's schema expects (numpy scalars and NaN handled)."""
    if value is None:
        return None
    if kind == "double":
        value = float(value)
        return None if value != value else value
    if kind == "bigint":
        return int(value)
    if kind == "boolean":
        return bool(value)
    if kind == "varchar":
        return str(value)
    if kind == "date" and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value
