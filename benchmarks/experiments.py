"""Targeted query-shape experiments behind the suggestions in notes.md.

    python -m benchmarks.experiments --db benchmarks/.data/1600000u_28d_x0.5_s7.duckdb \
        --users 1600000 --scale 0.5 [--repeats 3]

X1  exposures step: wn's compiled statement (ROW_NUMBER window for the dimension at first
    exposure) against the same table built with arg_min (no window, no sort); same rows checked.
X2  per-unit scan shapes for the 32-metric cell (1 dimension): the reference statement with
    the plain / coded / bucketed unit-column shape (see queries._unit_query).

Runs on one connection with the profile's settings (threads 2, memory_limit 4GB); prints a
markdown table and writes benchmarks/results/experiments_<label>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

from warehouse_native.project import load_project
from warehouse_native.runner import compile_experiment

from . import data as D
from . import queries as Q

HERE = Path(os.environ.get("WN_BENCH_HOME") or Path(__file__).resolve().parent)


def timed(con, sql: str, repeats: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeats):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        con.execute(sql).fetchall()
        walls.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--users", type=int, required=True)
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--label", default="acceptance")
    p.add_argument("--x2", action="store_true", help="also time the three reference shapes at 32 metrics")
    p.add_argument("--explain", type=Path, help="write EXPLAIN ANALYZE of wn's 32-metric unit_metrics select "
                   "and of the bucketed reference into this folder")
    args = p.parse_args()
    cfg = D.demo_config(args.users, args.days, args.scale)
    win = Q.window_of(cfg, D.as_of(cfg))
    con = duckdb.connect(str(args.db), config={"threads": 2, "memory_limit": "4GB"})
    con.execute("SET enable_progress_bar = false")
    rows = []

    # X1: exposures
    root = D.write_project(Path(tempfile.mkdtemp()) / "p", args.db, 8, True, cfg)
    _plan, compiled = compile_experiment(load_project(root), D.EXPERIMENT_NAME, as_of=D.as_of(cfg),
                                         schema="wn", dialect="duckdb", strategy="auto",
                                         stage_prefix="wn.__x1")
    wn_sql = next(s.sql for s in compiled.statements if s.step == "exposures")
    select = wn_sql[wn_sql.index(" AS\n") + 4:]
    argmin = (f"select 'bench' as experiment, 'user_id' as unit_type, cast(user_id as varchar) as unit_id,\n"
              f"  case when min(group_name) = max(group_name) then min(group_name) else '__multiple__' end as variant,\n"
              f"  min(ts) as first_exposure_at, count(*) as exposure_count,\n"
              f"  cast(arg_min(country, (ts, group_name)) as varchar) as country\n"
              f"from raw.exposures where experiment = 'button_color_v3' and ts >= {Q._ts(win.start)}"
              f" and ts < {Q._ts(win.end)} and user_id is not null group by user_id")
    diff = con.execute(f"select count(*) from (({select}) except all ({argmin}))").fetchone()[0] + \
        con.execute(f"select count(*) from (({argmin}) except all ({select}))").fetchone()[0]
    for name, sql in (("X1 exposures: wn (ROW_NUMBER window)", select),
                      ("X1 exposures: arg_min, no window", argmin)):
        w, c = timed(con, f"create or replace temp table __x1 as {sql}", args.repeats)
        rows.append({"experiment": name, "wall_s": w, "cpu_s": c,
                     "note": "same rows" if diff == 0 else f"{diff} rows differ"})

    # X2: scan shapes, 32 metrics, 1 dimension
    metrics = D.metric_set(32)
    for shape in (("plain", "coded", "bucketed") if args.x2 else ()):
        w, c = timed(con, Q.reference_sql(metrics, win, True, shape=shape), args.repeats)
        rows.append({"experiment": f"X2 32 metrics, 1 dim: reference, {shape} shape", "wall_s": w, "cpu_s": c,
                     "note": ""})
    if args.explain:
        args.explain.mkdir(parents=True, exist_ok=True)
        root32 = D.write_project(Path(tempfile.mkdtemp()) / "p32", args.db, 32, True, cfg)
        _plan, comp32 = compile_experiment(load_project(root32), D.EXPERIMENT_NAME, as_of=D.as_of(cfg),
                                           schema="wn", dialect="duckdb", strategy="auto",
                                           stage_prefix="wn.__x3")
        by_step = {s.step: s.sql for s in comp32.statements}
        con.execute(by_step["exposures"])
        um = by_step["unit_metrics"]
        um_select = um[um.index(" AS\n") + 4:]
        for name, sql in (("wn_unit_metrics_32_1", um_select),
                          ("ref_bucketed_32_1", Q.reference_sql(metrics, win, True, shape="bucketed"))):
            plan = con.execute("EXPLAIN ANALYZE " + sql).fetchall()[0][1]
            (args.explain / f"{name}.txt").write_text(sql + "\n\n" + plan)
        con.execute("DROP TABLE IF EXISTS wn.__x3_exposures")
    con.close()
    print("| experiment | median wall s | median CPU s | note |\n|---|---:|---:|---|")
    for r in rows:
        print(f"| {r['experiment']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['note']} |")
    out = HERE / "results" / f"experiments_{args.label}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
