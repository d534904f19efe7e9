"""One benchmark cell on three engines: the same data and metrics on DuckDB, PostgreSQL and
Spark (local[2]), wn's stateless run against the hand-written single-pass reference on each.

    python -m benchmarks.engines_cell [--users 200000 --days 28 --scale 0.5] [--repeats 3]

The data is the benchmark generator's (``benchmarks/.data/``, written if missing), loaded
into PostgreSQL (database ``wn_bench_engines``, as :mod:`benchmarks.postgres_cell` does) and
into a local Spark warehouse (Parquet tables under ``benchmarks/.data/spark/``).  On each
engine, in rotating order each round: wn (``run_experiment``, stateless, strategy auto, the
project's 8 metrics and 1 dimension, publishing included) and the reference query
(``benchmarks/queries.py``, plain shape, transpiled by sqlglot; ``arg_min`` becomes
``min_by`` on Spark and ``array_agg(... order by ts)[1]`` on PostgreSQL, where it also runs
with ``enable_nestloop = off``: the planner's one-row estimate for the exposures CTE would
pick a quadratic nested loop).  Round 0 warms up
and checks that every number of the reference equals wn's (relative 1e-9).  Only wall times
are comparable across engines' own ratios: the three engines differ in what they are built
for (Spark's fixed cost per statement and per job dominates at this size), so the ratio
wn / reference is the figure that matters, engine by engine.

Writes ``results/engines_<label>.json``; ``benchmarks/RESULTS.md`` shows it (report.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import duckdb
import sqlglot

from warehouse_native.project import load_project, load_target
from warehouse_native.runner import run_experiment
from warehouse_native.warehouse.connect import connect

from . import data as D
from . import postgres_cell as P
from . import queries as Q
from .run_benchmarks import compare, machine_info, wn_aggregates

HERE = Path(__file__).resolve().parent


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


def spark_sql(duck_sql: str) -> str:
    return ";\n".join(sqlglot.transpile(duck_sql.replace("arg_min(", "min_by("), read="duckdb", write="spark"))


def load_spark(adapter, db: Path) -> dict[str, int]:
    """The raw tables as Parquet tables in the Spark warehouse (kept between runs)."""
    duck = duckdb.connect(str(db), read_only=True)
    counts = {t: duck.execute(f"select count(*) from raw.{t}").fetchone()[0] for t in ("exposures", "events")}
    have = {}
    for t in counts:
        cols = adapter.table_columns("raw", t)
        have[t] = int(adapter.fetch(f"select count(*) as n from raw.{t}")[0]["n"]) if cols else None
    if have == counts:
        log(f"reusing Spark raw tables: {counts}")
        return counts
    adapter.ensure_schema("raw")
    folder = Path(tempfile.mkdtemp(prefix="wn_spark_load_"))
    try:
        for t in counts:
            t0 = time.perf_counter()
            duck.execute(f"copy raw.{t} to '{folder / t}.parquet' (format parquet)")
            adapter.execute(f"drop table if exists raw.{t}")
            adapter.execute(f"create table raw.{t} using parquet as select * from parquet.`{folder / t}.parquet`")
            log(f"loaded Spark raw.{t}: {counts[t]:,} rows ({time.perf_counter() - t0:.0f}s)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        duck.close()
    return counts


def project_for(engine: str, root: Path, db: Path, cfg) -> Path:
    root = D.write_project(root, db, 8, True, cfg)
    if engine == "postgres":
        outputs = (f"    pg: {{type: postgres, host: {P.PG['host']}, port: {P.PG['port']}, user: {P.PG['user']}, "
                   f"password: '', dbname: {P.DBNAME}, schema: wn}}\n")
    elif engine == "spark":
        outputs = (f"    spark: {{type: spark, method: session, master: 'local[2]', "
                   f"warehouse_dir: '{HERE / '.data' / 'spark'}', schema: wn, "
                   f"conf: {{spark.sql.shuffle.partitions: 8, spark.driver.memory: 6g}}}}\n")
    else:
        return root
    (root / "profiles.yml").write_text(f"wn_bench:\n  target: {'pg' if engine == 'postgres' else engine}\n"
                                       f"  outputs:\n{outputs}")
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--scale", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--engines", default="duckdb,postgres,spark")
    p.add_argument("--label", default=None)
    args = p.parse_args()
    P.DBNAME = "wn_bench_engines"
    cfg = D.demo_config(args.users, args.days, args.scale, args.seed)
    db = HERE / ".data" / f"{args.users}u_{args.days}d_x{args.scale:g}_s{args.seed}.duckdb"
    if not db.exists():
        log(f"generating {db}")
        info = D.write_raw_tables(db, args.users, args.days, args.scale, args.seed, say=log)
        db.with_suffix(".info.json").write_text(json.dumps(info.as_dict(), indent=1))
    as_of = D.as_of(cfg)
    win = Q.window_of(cfg, as_of)
    metrics = D.metric_set(8)
    reference = Q.reference_sql(metrics, win, True, shape="plain")
    dialect_sql = {"duckdb": lambda s: s, "postgres": P.pg_sql, "spark": spark_sql}
    results: dict[str, dict] = {}
    for engine in args.engines.split(","):
        log(f"== {engine}")
        root = project_for(engine, Path(tempfile.mkdtemp(prefix=f"wn_{engine}_bench_")) / "project", db, cfg)
        project, target = load_project(root), load_target(root)
        t0 = time.perf_counter()
        counts = P.load(db) if engine == "postgres" else None      # (creates the database)
        adapter = connect(target)
        if engine == "spark":
            counts = load_spark(adapter, db)
        load_s = time.perf_counter() - t0
        ref_sql = dialect_sql[engine](reference)
        def reference_case(sql=ref_sql, adapter=adapter, engine=engine):
            if engine != "postgres":
                return adapter.fetch(sql)
            # hand-tuned as a person writing it would: PostgreSQL estimates one row for the
            # exposures CTE (a HAVING on min = max) and picks a quadratic nested loop
            adapter.execute("set enable_nestloop = off")
            try:
                return adapter.fetch(sql)
            finally:
                adapter.execute("reset enable_nestloop")

        cases = {
            "wn": lambda: run_experiment(project, target, adapter, D.EXPERIMENT_NAME, as_of=as_of,
                                         strategy="auto", mode="stateless"),
            "reference": reference_case,
        }
        times: dict[str, list[float]] = {c: [] for c in cases}
        check = ""
        wn_aggs = None
        order = list(cases)
        for rnd in range(args.repeats + 1):    # round 0: warm-up and the numbers check
            for name in order[rnd % 2:] + order[:rnd % 2]:
                t_start = time.perf_counter()
                out = cases[name]()
                wall = time.perf_counter() - t_start
                if name == "wn":
                    wn_aggs = wn_aggregates(out)
                elif rnd == 0:
                    ok, msg = compare(wn_aggs, out) if wn_aggs else (False, "wn did not run first")
                    check = ("ok: " if ok else "MISMATCH: ") + msg
                log(f"  {'warm-up' if rnd == 0 else f'round {rnd}'} {name}: {wall:.2f}s")
                if rnd:
                    times[name].append(wall)
        adapter.close()
        med = {c: statistics.median(v) for c, v in times.items()}
        results[engine] = {"times": times, "median": med, "wn / reference": med["wn"] / med["reference"],
                           "check": check, "load_seconds": round(load_s, 1), "rows": counts}
        log(f"{engine}: wn {med['wn']:.2f}s, reference {med['reference']:.2f}s, "
            f"ratio {med['wn'] / med['reference']:.2f}; {check}")
    duck = duckdb.connect(str(db), read_only=True)
    rows = {t: duck.execute(f"select count(*) from raw.{t}").fetchone()[0] for t in ("exposures", "events")}
    duck.close()
    out = {"label": args.label or f"engines_{args.users}u_{args.days}d_x{args.scale:g}",
           "started_at": dt.datetime.now().isoformat(timespec="seconds"), "machine": machine_info(),
           "code": subprocess.run(["git", "-C", str(HERE), "log", "-1", "--format=%h %s"], capture_output=True,
                                  text=True).stdout.strip()[:100] or "unknown",
           "rows": rows, "cell": {"metrics": 8, "dimension": 1, "mode": "stateless"}, "engines": results}
    path = HERE / "results" / f"{out['label']}.json"
    path.write_text(json.dumps(out, indent=1, default=str))
    log(f"wrote {path}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
