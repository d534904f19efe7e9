"""Benchmark data and projects.

1. :func:`write_raw_tables` — the demo generator at any scale, written into a DuckDB file
   block by block.  ``warehouse_native.demo.generate_demo`` returns every table as one set of
   numpy arrays (100M events would need ~10 GiB of Python objects), so this wrapper drives the
   generator's per-user-block function (``_block``, 65,536 users at a time) directly and appends
   each block's *numeric* columns to a staging database; the string columns (``u000123``,
   event names, countries, variants, device ids) are made by DuckDB when the staging rows are
   copied into ``raw.events`` / ``raw.exposures``, day by day, so the final ``raw.events`` is
   ordered by day like ``generate_demo``'s (and like a date-partitioned warehouse table).
   The rows are the same as ``generate_demo``'s for the same :class:`DemoConfig` (checked by
   :func:`verify_against_demo`); only the order of rows inside a day differs.

   Python memory stays bounded by one block (~4M events at scale 1), whatever the size.

2. :func:`write_project` — a temporary wn project (profiles.yml with ``memory_limit``, the
   demo's ``exposures``/``events`` sources with ``events`` as a plain ``table: raw.events``,
   N metrics, one experiment with 0 or 1 dimension) over such a file.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import duckdb
import numpy as np

from warehouse_native.demo import story as S
from warehouse_native.demo.generator import (  # private, see module docstring
    _BLOCK_USERS,
    DemoConfig,
    _block,
    _Users,
)

Say = Callable[[str], None]


def _sql_list(values) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


@dataclass
class DataInfo:
    path: str
    users: int
    days: int
    scale: float
    seed: int
    exposures_rows: int
    events_rows: int
    exposed_users: int          # distinct users exposed to the benchmarked experiment
    file_bytes: int
    seconds: float
    experiment_start: str
    experiment_end: str

    def as_dict(self) -> dict:
        return asdict(self)


def demo_config(users: int, days: int = 28, scale: float = 1.0, seed: int = 7) -> DemoConfig:
    """The experiment runs from day 15 to the last day of data, so 28 days of data hold a
    14-day experiment and 42 days a 28-day one (the day-by-day data is the demo's)."""
    return DemoConfig(users=users, days=days, seed=seed, events_per_user_day=scale,
                      experiment_days=max(days - S.EXPERIMENT_OFFSET_DAYS, 1))


def write_raw_tables(path: str | Path, users: int, days: int = 28, scale: float = 1.0,
                     seed: int = 7, *, threads: int | None = None, say: Say = print) -> DataInfo:
    """(Re)write ``raw.exposures`` and ``raw.events`` of the DuckDB file ``path``."""
    cfg = demo_config(users, days, scale, seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.stem + ".staging.duckdb")
    for p in (staging, Path(str(staging) + ".wal")):
        if p.exists():
            p.unlink()
    t0 = time.perf_counter()
    config: dict = {"threads": threads} if threads else {}
    con = duckdb.connect(str(path), config=config)
    con.execute("SET enable_progress_bar = false")
    con.execute(f"ATTACH '{staging}' AS stg")
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    con.execute("DROP TABLE IF EXISTS raw.events")
    con.execute("DROP TABLE IF EXISTS raw.exposures")
    con.execute("CREATE TABLE stg.events (day SMALLINT, user_idx INTEGER, ts TIMESTAMP, "
                "code TINYINT, value DOUBLE)")
    con.execute("CREATE TABLE stg.exposures (user_idx BIGINT, ts TIMESTAMP, experiment TINYINT, "
                "variant TINYINT, device_code UBIGINT)")

    u = _Users(cfg)
    start_us = int((np.datetime64(cfg.start.isoformat(), "us") - np.datetime64(0, "us")).astype(np.int64))
    purchase = S.EVENT_NAMES.index("purchase")
    mask48 = np.uint64(2**48 - 1)
    n_blocks = (cfg.users + _BLOCK_USERS - 1) // _BLOCK_USERS
    for b, u0 in enumerate(range(0, cfg.users, _BLOCK_USERS)):
        ex, ev = _block(cfg, u, u0, min(u0 + _BLOCK_USERS, cfg.users), start_us)
        # events: same columns generate_demo derives, kept numeric
        code = ev["code"]
        value = np.full(len(code), np.nan)
        value[code == purchase] = ev["amount"]
        ts = ev["ts"]
        frame = {
            "day": ((ts - start_us) // (86_400 * 1_000_000)).astype(np.int16),
            "user_idx": ev["user"],
            "ts": ts.view("datetime64[us]"),
            "code": code,
            "value": value,
        }
        con.register("__blk", frame)
        con.execute("INSERT INTO stg.events SELECT day, user_idx, ts, code, "
                    "case when isnan(value) then null else value end FROM __blk")
        con.unregister("__blk")
        with np.errstate(over="ignore"):
            dev = ((ex["device_index"].astype(np.uint64) * u._mul) & mask48) ^ u._xor
        xframe = {"user_idx": ex["user"].astype(np.int64), "ts": ex["ts"].view("datetime64[us]"),
                  "experiment": ex["experiment"], "variant": ex["variant"], "device_code": dev}
        con.register("__xblk", xframe)
        con.execute("INSERT INTO stg.exposures SELECT * FROM __xblk")
        con.unregister("__xblk")
        del ex, ev, frame, xframe, value, ts, code
        if b % 8 == 7 or b == n_blocks - 1:
            say(f"  generated block {b + 1}/{n_blocks} ({time.perf_counter() - t0:.0f}s)")

    # country / device per user (small: one row per user), used by the string columns
    con.register("__users", {"user_idx": np.arange(cfg.users, dtype=np.int64),
                             "country": u.country, "device": u.device})
    con.execute("CREATE TEMP TABLE users AS SELECT * FROM __users")
    con.unregister("__users")
    width = max(6, len(str(cfg.users - 1)))
    uid = f"'u' || lpad(cast(x.user_idx as varchar), {width}, '0')"
    countries, devices = _sql_list(S.COUNTRIES), _sql_list(S.DEVICES)
    groups = _sql_list(S.EXPERIMENT_VARIANTS + S.GATE_VARIANTS)
    experiments = _sql_list([S.EXPERIMENT, S.GATE])
    n_exp_variants = len(S.EXPERIMENT_VARIANTS)
    say("  writing raw.exposures")
    con.execute(f"""
        CREATE TABLE raw.exposures AS
        SELECT {uid} AS user_id,
               'd' || lpad(lower(hex(x.device_code)), 12, '0') AS stable_id,
               {experiments}[x.experiment + 1] AS experiment,
               {groups}[x.variant + 1 + case when x.experiment = 0 then 0 else {n_exp_variants} end] AS group_name,
               x.ts AS ts,
               {countries}[u.country + 1] AS country,
               {devices}[u.device + 1] AS device
        FROM stg.exposures x JOIN users u USING (user_idx)
        ORDER BY x.ts""")
    con.execute("CREATE TABLE raw.events (user_id VARCHAR, ts TIMESTAMP, event_name VARCHAR, "
                "value DOUBLE, country VARCHAR)")
    names = _sql_list(S.EVENT_NAMES)
    for d in range(cfg.days):
        con.execute(f"""
            INSERT INTO raw.events
            SELECT {uid}, x.ts, {names}[x.code + 1], x.value, {countries}[u.country + 1]
            FROM stg.events x JOIN users u USING (user_idx)
            WHERE x.day = {d}""")
        if d % 7 == 6 or d == cfg.days - 1:
            say(f"  copied day {d + 1}/{cfg.days} into raw.events ({time.perf_counter() - t0:.0f}s)")
    con.execute("DETACH stg")
    for p in (staging, Path(str(staging) + ".wal")):
        if p.exists():
            p.unlink()
    con.execute("CHECKPOINT")
    n_ex = con.execute("select count(*) from raw.exposures").fetchone()[0]
    n_ev = con.execute("select count(*) from raw.events").fetchone()[0]
    con.close()
    info = data_info(path, cfg, n_ex, n_ev, time.perf_counter() - t0)
    return info


def data_info(path: str | Path, cfg: DemoConfig, n_ex: int | None = None, n_ev: int | None = None,
              seconds: float = 0.0) -> DataInfo:
    con = duckdb.connect(str(path), read_only=True)
    try:
        if n_ex is None:
            n_ex = con.execute("select count(*) from raw.exposures").fetchone()[0]
        if n_ev is None:
            n_ev = con.execute("select count(*) from raw.events").fetchone()[0]
        exposed = con.execute(
            "select count(distinct user_id) from raw.exposures where experiment = ?",
            [S.EXPERIMENT]).fetchone()[0]
    finally:
        con.close()
    return DataInfo(str(path), cfg.users, cfg.days, cfg.events_per_user_day, cfg.seed, int(n_ex),
                    int(n_ev), int(exposed), os.path.getsize(path), seconds,
                    cfg.experiment_start.isoformat(), cfg.experiment_end.isoformat())


def verify_against_demo(users: int = 3000, days: int = 28, scale: float = 1.0, seed: int = 7,
                        workdir: str | Path = "/tmp/wn_bench_verify") -> None:
    """Check that the block-wise tables hold exactly generate_demo's rows (as multisets)."""
    from warehouse_native.demo import generate_demo

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "verify.duckdb"
    if db.exists():
        db.unlink()
    write_raw_tables(db, users, days, scale, seed, say=lambda _m: None)
    tables = generate_demo(demo_config(users, days, scale, seed))
    con = duckdb.connect(str(db))
    for name, cols in tables.items():
        frame = {k: np.asarray(v) for k, v in cols.items()}
        con.register("__ref", frame)
        select = ", ".join(
            f"case when isnan({k}) then null else {k} end as {k}" if frame[k].dtype.kind == "f" else k
            for k in frame)
        con.execute(f"CREATE OR REPLACE TEMP TABLE ref AS SELECT {select} FROM __ref")
        con.unregister("__ref")
        colnames = ", ".join(frame)
        a = con.execute(f"select count(*) from (select {colnames} from {name} except all "
                        f"select {colnames} from ref)").fetchone()[0]
        b = con.execute(f"select count(*) from (select {colnames} from ref except all "
                        f"select {colnames} from {name})").fetchone()[0]
        n = con.execute(f"select count(*) from {name}").fetchone()[0]
        types = con.execute(f"select column_name, data_type from information_schema.columns "
                            f"where table_schema='raw' and table_name='{name.split('.')[1]}' "
                            f"order by ordinal_position").fetchall()
        ref_types = con.execute("select column_name, data_type from information_schema.columns "
                                "where table_name='ref' order by ordinal_position").fetchall()
        if a or b or n != len(next(iter(frame.values()))) or types != ref_types:
            raise AssertionError(f"{name}: {a} rows only in the benchmark table, {b} only in "
                                 f"generate_demo's ({n} rows; types {types} vs {ref_types})")
        print(f"  {name}: {n:,} rows identical to generate_demo ({types})")
    con.close()


# -- benchmark projects ------------------------------------------------------------------

EVENTS = S.EVENT_NAMES  # session_start, page_view, api_request, api_success, visited_signup, signup_success, purchase

# The first 8 metrics: the acceptance set (two CUPED, one ratio).
_BASE: list[dict] = [
    {"name": "sessions", "type": "count", "filter": "event_name = 'session_start'", "cuped": True},
    {"name": "revenue", "type": "sum", "value": "value", "filter": "event_name = 'purchase'", "cuped": True},
    {"name": "page_views", "type": "count", "filter": "event_name = 'page_view'"},
    {"name": "visited_signup", "type": "conversion", "filter": "event_name = 'visited_signup'"},
    {"name": "signups", "type": "count", "filter": "event_name = 'signup_success'"},
    {"name": "purchasers", "type": "conversion", "filter": "event_name = 'purchase'"},
    {"name": "api_requests", "type": "count", "filter": "event_name = 'api_request'"},
    {"name": "pages_per_session", "type": "ratio", "numerator": "page_views", "denominator": "sessions"},
]


def _extra_metrics() -> list[dict]:
    out: list[dict] = []
    for e in EVENTS:
        out.append({"name": f"{e}_d7", "type": "count", "filter": f"event_name = '{e}'",
                    "window": {"end_day": 7}})
    for e in EVENTS:
        out.append({"name": f"any_{e}", "type": "conversion", "filter": f"event_name = '{e}'",
                    "window": {"start_day": 1}})
    for e in EVENTS:
        out.append({"name": f"{e}_after_d3", "type": "count", "filter": f"event_name = '{e}'",
                    "window": {"start_day": 3}})
    out += [
        {"name": "revenue_d7", "type": "sum", "value": "value", "filter": "event_name = 'purchase'",
         "window": {"end_day": 7}},
        {"name": "revenue_after_d7", "type": "sum", "value": "value",
         "filter": "event_name = 'purchase'", "window": {"start_day": 7}},
        {"name": "revenue_day1", "type": "sum", "value": "value", "filter": "event_name = 'purchase'",
         "window": {"end_day": 1}},
    ]
    return out


def metric_set(n: int) -> list[dict]:
    """The N analysed metrics: 1 -> one CUPED count; 8 -> the acceptance set; 32 -> 8 + 24 more.

    Every metric is count, sum or conversion over ``events``, except one ratio (8+); exactly two
    have CUPED (``sessions``, ``revenue``), except the 1-metric set (one, ``sessions``)."""
    pool = _BASE + _extra_metrics()
    if not 1 <= n <= len(pool):
        raise ValueError(f"between 1 and {len(pool)} metrics, not {n}")
    if n < 8 and n != 1:
        raise ValueError("use 1 or >= 8 metrics (the ratio and its parts come with 8)")
    return [dict(m) for m in pool[:n]]


def _yaml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_yaml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (int, float)):
        return str(v)
    return '"' + str(v).replace('"', '\\"') + '"'


def _metric_yaml(m: dict) -> str:
    m = dict(m)
    cuped = m.pop("cuped", False)
    lines = [f"  - name: {m.pop('name')}"]
    if m["type"] != "ratio":
        lines.append("    source: events")
    for k, v in m.items():
        lines.append(f"    {k}: {_yaml_value(v)}")
    lines.append(f"    cuped: {_yaml_value(cuped)}")
    return "\n".join(lines)


SOURCES_YML = """\
sources:
  - name: exposures
    table: raw.exposures
    timestamp: ts
    units: {user_id: user_id, stable_id: stable_id}
    experiment_column: experiment
    variant_column: group_name
    dimensions: [country, device]
    columns: [user_id, stable_id, experiment, group_name, ts, country, device]

  - name: events
    table: raw.events
    timestamp: ts
    units: {user_id: user_id}
    dimensions: [country]
    columns: [user_id, ts, event_name, value, country]
"""

EXPERIMENT_NAME = "bench"


def write_project(root: str | Path, db_path: str | Path, n_metrics: int, dimension: bool,
                  cfg: DemoConfig, *, memory_limit: str = "4GB", threads: int = 2) -> Path:
    """A wn project over ``db_path`` with N metrics and 0 or 1 dimension (country)."""
    root = Path(root)
    (root / "metrics").mkdir(parents=True, exist_ok=True)
    (root / "experiments").mkdir(parents=True, exist_ok=True)
    (root / "profiles.yml").write_text(profiles_yml(db_path, memory_limit=memory_limit, threads=threads))
    (root / "metrics" / "sources.yml").write_text(SOURCES_YML)
    metrics = metric_set(n_metrics)
    names = [m["name"] for m in metrics]
    catalog = list(metrics)
    for m in metrics:  # a ratio's parts must be in the catalog (they are, for the sets above)
        if m["type"] == "ratio":
            assert m["numerator"] in names and m["denominator"] in names
    (root / "metrics" / "bench.yml").write_text(
        "metrics:\n" + "\n\n".join(_metric_yaml(m) for m in catalog) + "\n")
    (root / "experiments" / f"{EXPERIMENT_NAME}.yml").write_text(experiment_yml(cfg, names, dimension=dimension))
    return root


def profiles_yml(db_path: str | Path, *, memory_limit: str = "4GB", threads: int = 2) -> str:
    """profiles.yml of a benchmark project: one DuckDB target over ``db_path``."""
    return ("wn_bench:\n  target: bench\n  outputs:\n    bench:\n      type: duckdb\n"
            f"      path: \"{Path(db_path).resolve()}\"\n      schema: wn\n"
            f"      threads: {threads}\n      memory_limit: {memory_limit}\n")


def experiment_yml(cfg: DemoConfig, names: list[str], *, dimension: bool, cuped: bool = True,
                   cuped_days: int = 14) -> str:
    """The benchmark experiment ``bench``: the demo's variants, the first metric primary, the
    others secondary, slices by ``country`` or none."""
    variants = "\n".join(
        f"    - {{name: {v}{', control: true' if i == 0 else ''}, weight: {w}}}"
        for i, (v, w) in enumerate(zip(S.EXPERIMENT_VARIANTS, S.EXPERIMENT_WEIGHTS)))
    return f"""\
experiment:
  name: {EXPERIMENT_NAME}
  unit: user_id
  exposures: {{source: exposures, experiment_id: {S.EXPERIMENT}}}
  start: {cfg.experiment_start.isoformat()}
  end: {cfg.experiment_end.isoformat()}
  variants:
{variants}
  primary_metrics: [{names[0]}]
  secondary_metrics: [{', '.join(names[1:])}]
  dimensions: [{'country' if dimension else ''}]
  analysis: {{confidence: 0.95, cuped: {'true' if cuped else 'false'}, cuped_days: {cuped_days}, correction: holm}}
"""


def as_of(cfg: DemoConfig) -> dt.date:
    """A date after the experiment's end, so the whole experiment is analysed."""
    return cfg.experiment_end + dt.timedelta(days=3)


if __name__ == "__main__":  # python -m benchmarks.data [users]: self-check on small data
    import sys

    verify_against_demo(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
