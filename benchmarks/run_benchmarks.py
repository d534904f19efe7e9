"""wn benchmarks: "fast and cheap at scale".

    python -m benchmarks.run_benchmarks --quick
    python -m benchmarks.run_benchmarks --users 1320000 --scale 1.0
    python -m benchmarks.run_benchmarks --users 2600000 --scale 1.35 --memory-test

Timing pass — ONE process, ONE DuckDB connection (the project's target: threads and
memory_limit from the generated profiles.yml), the SAME DuckDB file for every case:

  (a) wn full run: ``warehouse_native.runner.run_experiment`` (strategy auto), compile ->
      exposures -> unit metrics -> aggregates -> statistics -> publish
  (b) wn incremental run after one more day (``incr``): before each timed run, an untimed
      ``--full-refresh`` as of the day before the last day of data; the timed run is then
      ``wn run`` (incremental, default lookback 2 days) as of the last day.  ``refresh`` times
      ``--full-refresh`` as of the last day, the baseline of the "<= 20%" target.
  (c) reference: one hand-written single-pass SQL statement, same sufficient statistics
  (d) one query per metric, each joining the exposures to the events again
      (``pm``: exposures materialised once and shared; ``pm_self``: recomputed per query)
  (e) wn with each strategy (cte, temp, auto) for 1/8/32 metrics x 0/1 dimension

Each cell runs every case once as warm-up, then ``--repeats`` rounds in which the cases are
interleaved (rotating order), and reports the median.  Before timing, each comparison query's
numbers are checked against the aggregates wn computed for the same cell.

Memory pass — each listed case runs once in a fresh child process (``--child``).  Peak RSS is
the child's ``VmHWM`` (read from its own /proc/self/status as its last act: Python + wn +
DuckDB's buffer pool + result sets).  The parent also reaps the child with ``os.wait4`` and
records its ``ru_maxrss``, but that number is not usable here: Linux keeps, across exec, the
RSS high-water mark of the image exec replaced — the (v)forked copy of this big parent — so
``ru_maxrss`` (like RUSAGE_CHILDREN) reads as the parent's peak for every child.  A ``noop``
child (imports, connects, ``select 1``) gives the fixed floor.

Results go to ``benchmarks/results/<label>.json``; ``benchmarks/RESULTS.md`` is re-rendered
from every JSON there (see :mod:`benchmarks.report`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from warehouse_native.project import load_project, load_target
from warehouse_native.runner import run_experiment
from warehouse_native.warehouse import connect
from warehouse_native.warehouse.tables import METRIC_AGGREGATES, MOMENTS

from . import data as D
from . import queries as Q
from .snapshot import CODE_DIR, reexec_in_snapshot

# When running from a code snapshot (see snapshot.py), results and data stay in the real
# benchmarks/ folder, named by WN_BENCH_HOME.
HERE = Path(os.environ.get("WN_BENCH_HOME") or Path(__file__).resolve().parent)
RESULTS_DIR = HERE / "results"
STRATEGIES = ("cte", "temp", "auto")
ALL_CASES = ("ref", "ref_plain", "ref_coded", "cte", "temp", "auto", "pm", "pm_self", "refresh", "incr")
WN_MODES = {"refresh": "full-refresh", "incr": "incremental"}   # (b): wn runs that keep state
REF_SHAPES = {"ref": "bucketed", "ref_plain": "plain", "ref_coded": "coded"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- machine ---------------------------------------------------------------------------

def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kib = int(line.split()[1])
    import sqlglot

    return {"nproc": os.cpu_count(), "ram_gib": round(mem_kib / 2**20, 1), "cpu": cpu,
            "python": platform.python_version(), "duckdb": duckdb.__version__,
            "sqlglot": sqlglot.__version__, "platform": platform.platform()}


# -- cases -----------------------------------------------------------------------------

class Connected:
    """One warehouse connection to ``self.target``, opened and closed around a pass."""

    target = None
    adapter = None

    def open(self) -> None:
        self.adapter = connect(self.target)

    def close(self) -> None:
        if self.adapter is not None:
            self.adapter.close()
            self.adapter = None


class Bench(Connected):
    """Everything a case needs: projects per cell, the target, the data window."""

    def __init__(self, db: Path, cfg, workdir: Path, metrics: list[int], dims: list[int],
                 memory_limit: str, threads: int):
        self.db, self.cfg, self.workdir = db, cfg, workdir
        self.as_of = D.as_of(cfg)
        self.win = Q.window_of(cfg, self.as_of)
        self.last_day = cfg.experiment_end   # the last day of data (see data.demo_config)
        self.roots: dict[tuple[int, int], Path] = {}
        for n in metrics:
            for d in dims:
                self.roots[(n, d)] = D.write_project(workdir / f"project_m{n}_d{d}", db, n, bool(d), cfg,
                                                     memory_limit=memory_limit, threads=threads)
        self.projects = {k: load_project(r) for k, r in self.roots.items()}
        self.target = load_target(next(iter(self.roots.values())))

    # each case returns (seconds, payload)
    def wn(self, cell, strategy: str, mode: str | None = None, as_of: dt.date | None = None):
        kw = {"mode": mode} if mode else {}   # older wn: no mode argument (stateless only)
        t0 = time.perf_counter()
        r = run_experiment(self.projects[cell], self.target, self.adapter, D.EXPERIMENT_NAME,
                           as_of=as_of or self.as_of, strategy=strategy, **kw)
        return time.perf_counter() - t0, r

    def prepare(self, case: str, cell) -> None:
        """Untimed set-up before a timed case: ``incr`` starts from a state one day behind."""
        if case == "incr":
            self.wn(cell, "auto", "full-refresh", as_of=self.last_day - dt.timedelta(days=1))

    def ref(self, cell, shape: str = "bucketed"):
        n, d = cell
        sql = Q.reference_sql(D.metric_set(n), self.win, bool(d), shape=shape)
        t0 = time.perf_counter()
        rows = self.adapter.fetch(sql)
        return time.perf_counter() - t0, rows

    def pm(self, cell, shared: bool = True):
        n, d = cell
        setup, queries, teardown = Q.per_metric_sqls(D.metric_set(n), self.win, bool(d),
                                                     shared_exposures=shared)
        t0 = time.perf_counter()
        rows = run_per_metric(self.adapter, setup, queries, teardown)
        return time.perf_counter() - t0, rows

    def timed_case(self, case: str, cell):
        """(wall seconds, CPU seconds of this process and all its threads, payload)."""
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        secs, payload = self.run_case(case, cell)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        return secs, cpu, payload

    def run_case(self, case: str, cell):
        if case in STRATEGIES:
            return self.wn(cell, case)
        if case in WN_MODES:
            return self.wn(cell, "auto", WN_MODES[case], as_of=self.last_day)
        if case in REF_SHAPES:
            return self.ref(cell, REF_SHAPES[case])
        if case == "pm":
            return self.pm(cell, True)
        if case == "pm_self":
            return self.pm(cell, False)
        raise ValueError(case)


def run_per_metric(adapter, setup: list[str], queries: list[tuple[str, str]], teardown: list[str]) -> list[dict]:
    """Run one-query-per-metric statements; the rows of all queries merged per slice."""
    for s in setup:
        adapter.execute(s)
    merged: dict[tuple, dict] = {}
    for _name, sql in queries:
        for row in adapter.fetch(sql):
            key = (row["variant"], row["dimension"], row["dimension_value"])
            merged.setdefault(key, {}).update(row)
    for s in teardown:
        adapter.execute(s)
    return list(merged.values())


def wn_aggregates(result) -> dict[tuple, dict[str, float]]:
    names = [c for c, _ in METRIC_AGGREGATES]
    out: dict[tuple, dict[str, float]] = {}
    for row in result.outputs.metric_aggregates:
        r = dict(zip(names, row))
        key = (r["variant"], r["dimension"], r["dimension_value"])
        slot = out.setdefault(key, {"n": r["n"]})
        for m in MOMENTS + ("quantile", "quantile_lower", "quantile_upper"):   # (percentile metrics)
            if r.get(m) is not None:
                slot[f"{r['metric']}__{m}"] = r[m]
    return out


def as_rows(aggs: dict[tuple, dict[str, float]]) -> list[dict]:
    return [{"variant": k[0], "dimension": k[1], "dimension_value": k[2], **v} for k, v in aggs.items()]


def compare(wn: dict[tuple, dict[str, float]], rows: list[dict]) -> tuple[bool, str]:
    """Every number of a comparison query equals wn's (relative 1e-9)."""
    checked = 0
    for row in rows:
        key = (row["variant"], row["dimension"], row["dimension_value"])
        if key not in wn:
            return False, f"slice {key} not in wn's aggregates"
        for col, val in row.items():
            if col in ("variant", "dimension", "dimension_value"):
                continue
            ref = wn[key].get(col)
            if ref is None:
                return False, f"{col} missing in wn's aggregates"
            val, ref = float(val or 0.0), float(ref)
            if abs(val - ref) > 1e-9 * max(1.0, abs(ref)):
                return False, f"{key} {col}: {val} vs wn {ref}"
            checked += 1
    if len(rows) != len(wn):
        return False, f"{len(rows)} slices vs wn {len(wn)}"
    return True, f"{checked} numbers equal"


def step_table(results) -> dict[str, float]:
    """Median seconds per step (create and drop of the same step kept apart), plus the
    orchestration overhead not inside any step (compile, schema checks, count queries)."""
    per: dict[str, list[float]] = {}
    for wall, r in results:
        seen: dict[str, float] = {}
        for s in r.steps:
            key = s.step if s.action != "drop" else f"{s.step} (drop)"
            if s.choice and s.action != "drop":
                key = f"{s.step} [{s.choice}]"
            seen[key] = seen.get(key, 0.0) + s.seconds
        seen["(outside steps)"] = wall - sum(s.seconds for s in r.steps)
        for k, v in seen.items():
            per.setdefault(k, []).append(v)
    return {k: statistics.median(v) for k, v in per.items()}


def timing_pass(bench: Bench, cells, cases: list[str], repeats: int, per_metric_max: int) -> list[dict]:
    out = []
    for cell in cells:
        n, d = cell
        cell_cases = [c for c in cases if not (c.startswith("pm") and n > per_metric_max)]
        log(f"cell {n} metrics, {d} dimension: warm-up {', '.join(cell_cases)}")
        times: dict[str, list[float]] = {c: [] for c in cell_cases}
        cpus: dict[str, list[float]] = {c: [] for c in cell_cases}
        wn_runs: dict[str, list] = {c: [] for c in cell_cases if c in STRATEGIES or c in WN_MODES}
        checks: dict[str, str] = {}
        warm: dict[str, float] = {}
        wn_ref = None
        # warm-up: wn first, then every comparison query, whose numbers are checked against wn's
        for c in sorted(cell_cases, key=lambda c: c not in STRATEGIES):
            bench.prepare(c, cell)
            secs, cpu, payload = bench.timed_case(c, cell)
            warm[c] = secs
            log(f"  warm-up {c}: {secs:.2f}s (cpu {cpu:.2f}s)")
            if c in STRATEGIES:
                if wn_ref is None:
                    wn_ref = wn_aggregates(payload)
                continue
            if wn_ref is None:
                _, r = bench.wn(cell, "auto")
                wn_ref = wn_aggregates(r)
            ok, why = compare(wn_ref, as_rows(wn_aggregates(payload)) if c in WN_MODES else payload)
            checks[c] = ("ok: " if ok else "MISMATCH: ") + why
            if not ok:
                log(f"  {c}: {checks[c]}")
        for i in range(repeats):
            order = cell_cases[i % len(cell_cases):] + cell_cases[:i % len(cell_cases)]
            for c in order:
                bench.prepare(c, cell)
                secs, cpu, payload = bench.timed_case(c, cell)
                times[c].append(secs)
                cpus[c].append(cpu)
                log(f"  round {i + 1} {c}: {secs:.2f}s (cpu {cpu:.2f}s)")
                if c in STRATEGIES or c in WN_MODES:
                    wn_runs[c].append((secs, payload))
        med = {c: statistics.median(v) for c, v in times.items()}
        log("  " + ", ".join(f"{c} {med[c]:.2f}s" for c in cell_cases))
        out.append({
            "metrics": n, "dimension": d, "times": times, "median": med, "warmup": warm,
            "cpu": cpus, "cpu_median": {c: statistics.median(v) for c, v in cpus.items()},
            "checks": checks, "load_avg": os.getloadavg(),
            "steps": {c: step_table(v) for c, v in wn_runs.items()},
            "rows": {c: [(s.step, s.action, s.rows) for s in v[0][1].steps if s.rows is not None]
                     for c, v in wn_runs.items() if v},
            "notes": {c: getattr(v[0][1], "note", None) for c, v in wn_runs.items() if v},
        })
    return out


# -- a week of daily runs ------------------------------------------------------------------

def week_pass(bench: Bench, cell, days: int = 8) -> dict:
    """A scheduler's week: ``--full-refresh`` as of the last day minus ``days``, then one
    incremental run per day up to the last day (each timed; the base is re-sealed once on the
    way), then ``--full-refresh`` as of the last day for comparison."""
    runs = []
    start = bench.last_day - dt.timedelta(days=days)
    secs, cpu, _ = _timed(lambda: bench.wn(cell, "auto", "full-refresh", as_of=start))
    log(f"week: full refresh as of {start}: {secs:.2f}s")
    for k in range(days - 1, -1, -1):
        day = bench.last_day - dt.timedelta(days=k)
        secs, cpu, (_, r) = _timed(lambda d=day: bench.wn(cell, "auto", "incremental", as_of=d))
        resealed = "sealing" in (r.note or "")
        runs.append({"as_of": day.isoformat(), "seconds": secs, "cpu": cpu, "resealed": resealed, "note": r.note,
                     "steps": {s.step: s.seconds for s in r.steps}})
        log(f"week: incremental as of {day}: {secs:.2f}s (cpu {cpu:.2f}s){' re-sealed' if resealed else ''}")
    secs, cpu, _ = _timed(lambda: bench.wn(cell, "auto", "full-refresh", as_of=bench.last_day))
    log(f"week: full refresh as of {bench.last_day}: {secs:.2f}s")
    return {"metrics": cell[0], "dimension": cell[1], "runs": runs,
            "refresh": {"as_of": bench.last_day.isoformat(), "seconds": secs, "cpu": cpu}}


def _timed(fn):
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    out = fn()
    secs = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return secs, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), out


# -- memory pass (child processes) -------------------------------------------------------

def child_main(spec: dict) -> None:
    """Run one case once in this (fresh) process and print a JSON line."""
    cfg = D.demo_config(spec["users"], spec["days"], spec["scale"], spec["seed"])
    workdir = Path(spec["workdir"])
    cell = tuple(spec["cell"])
    bench = Bench(Path(spec["db"]), cfg, workdir, [cell[0]], [cell[1]], spec["memory_limit"],
                  spec["threads"])
    bench.open()
    case = spec["case"]
    status, error, secs = "ok", None, None
    try:
        if case == "noop":
            t0 = time.perf_counter()
            bench.adapter.fetch("select 1 as one")
            secs = time.perf_counter() - t0
        else:
            bench.prepare(case, cell)
            secs, payload = bench.run_case(case, cell)
            if case in STRATEGIES or case in WN_MODES:
                status = payload.status
    except Exception as exc:  # report, don't crash: "does wn complete?"
        status, error = "error", f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        bench.close()
    child_report({"case": case, "status": status, "error": error, "seconds": secs})


def child_report(result: dict) -> None:
    """A child's last act: print ``result`` with its own peak RSS (``VmHWM``) as one JSON line."""
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm_kib = None
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm_kib = int(line.split()[1])
    print("CHILD_RESULT " + json.dumps({**result, "self_maxrss_kib": self_kib, "vmhwm_kib": hwm_kib}),
          flush=True)


def run_child(module: str, spec: dict) -> dict:
    """Run ``python -m <module> --child <spec>`` in a fresh process (from the code under test),
    reap it with ``os.wait4`` and return what it reported (:func:`child_report`) with
    ``peak_rss_mib``, ``exit``, ``wall_s`` (and ``status``/``error`` when it crashed)."""
    t0 = time.perf_counter()
    # stdout/stderr go to files so that the child can be reaped with os.wait4, which
    # returns that child's own rusage (RUSAGE_CHILDREN would be a running maximum)
    with tempfile.TemporaryFile("w+") as fout, tempfile.TemporaryFile("w+") as ferr:
        proc = subprocess.Popen([sys.executable, "-m", module, "--child", json.dumps(spec)],
                                cwd=str(CODE_DIR), stdout=fout, stderr=ferr)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        fout.seek(0)
        ferr.seek(0)
        stdout, stderr = fout.read(), ferr.read()
    wall = time.perf_counter() - t0
    res = {"exit": proc.returncode, "wait4_maxrss_mib": round(usage.ru_maxrss / 1024, 1),
           "wall_s": round(wall, 2)}
    for line in stdout.splitlines():
        if line.startswith("CHILD_RESULT "):
            res.update(json.loads(line[len("CHILD_RESULT "):]))
    # Linux carries the RSS high-water mark of the process image replaced by exec into
    # ru_maxrss (and subprocess forks/vforks this big parent), so wait4's ru_maxrss is at
    # least the parent's own peak. VmHWM belongs to the child's new address space only.
    hwm = res.get("vmhwm_kib")
    res["peak_rss_mib"] = round(hwm / 1024, 1) if hwm else res["wait4_maxrss_mib"]
    if proc.returncode != 0 and "status" not in res:
        res["status"] = "crashed"
        res["error"] = stderr[-2000:]
    return res


def memory_pass(args, cells, cases: list[str], workdir: Path) -> list[dict]:
    out = []
    for cell in cells:
        for case in cases:
            spec = {"case": case, "cell": list(cell), "db": str(args.db), "users": args.users,
                    "days": args.days, "scale": args.scale, "seed": args.seed,
                    "memory_limit": args.memory_limit, "threads": args.threads,
                    "workdir": str(workdir / f"child_{case}")}
            log(f"memory: {case} ({cell[0]} metrics, {cell[1]} dimension) in a child process")
            res = {"case": case, "metrics": cell[0], "dimension": cell[1],
                   **run_child("benchmarks.run_benchmarks", spec)}
            log(f"  {case}: {res.get('status')} peak RSS {res['peak_rss_mib']} MiB, "
                f"case {res.get('seconds') or 0:.1f}s" + (f" ({res.get('error')})" if res.get("error") else ""))
            out.append(res)
    return out


# -- main ------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small preset: 100k users x scale 1 (~4M events), 1 warm-up + 1 timed round")
    p.add_argument("--users", type=int, default=1_600_000,
                   help="generated users (~63%% get exposed at scale 0.5, ~76%% at scale 1)")
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--scale", type=float, default=0.5,
                   help="events per user-day factor (1.0 ~ 1.4 events per user-day)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--db", type=Path, help="DuckDB file (default: benchmarks/.data/<label>.duckdb)")
    p.add_argument("--regenerate", action="store_true", help="rewrite the raw tables even if the file exists")
    p.add_argument("--metrics", default="1,8,32", help="metric counts (1, 8..32)")
    p.add_argument("--dims", default="0,1", help="dimension counts (0 and/or 1)")
    p.add_argument("--cases", default="ref,cte,temp,auto,pm",
                   help=f"timed cases, from {','.join(ALL_CASES)}")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per cell (default 3; --quick 1)")
    p.add_argument("--per-metric-max", type=int, default=32,
                   help="skip the per-metric cases for cells with more metrics than this")
    p.add_argument("--memory-cases", default="noop,ref,auto,cte,temp,pm",
                   help="cases run once each in a child process for peak RSS ('' = none)")
    p.add_argument("--memory-cells", default="8:1", help="cells for the memory pass, e.g. 8:1,32:1")
    p.add_argument("--memory-test", action="store_true",
                   help="only the memory pass (no timing pass): does wn complete under memory_limit?")
    p.add_argument("--no-timing", action="store_true", help="skip the timing pass")
    p.add_argument("--week", action="store_true",
                   help="after the timing pass: a full refresh, then 8 daily incremental runs (first cell)")
    p.add_argument("--memory-limit", default="4GB", help="memory_limit written into profiles.yml")
    p.add_argument("--threads", type=int, default=2, help="threads written into profiles.yml")
    p.add_argument("--label", help="results name (default from the size)")
    p.add_argument("--code", default="worktree",
                   help="code under test: 'worktree' (a copy of the files now) or a git revision, e.g. HEAD")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.users, args.days, args.scale = 100_000, 28, 1.0
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return 0
    if not os.environ.get("WN_BENCH_SNAPSHOT"):
        reexec_in_snapshot("benchmarks.run_benchmarks", args.code, sys.argv[1:] if argv is None else argv)
    import warehouse_native

    assert Path(warehouse_native.__file__).resolve().is_relative_to(CODE_DIR), warehouse_native.__file__
    t_start = time.perf_counter()
    started = dt.datetime.now()
    label = args.label or (f"{'quick_' if args.quick else ''}{args.users}u_{args.days}d_x{args.scale:g}"
                           f"_{args.memory_limit}{'_memtest' if args.memory_test else ''}")
    if args.db is None:
        args.db = HERE / ".data" / f"{args.users}u_{args.days}d_x{args.scale:g}_s{args.seed}.duckdb"
    args.db = args.db.resolve()
    cfg = D.demo_config(args.users, args.days, args.scale, args.seed)
    metrics = [int(x) for x in args.metrics.split(",") if x]
    dims = [int(x) for x in args.dims.split(",") if x]
    cases = [c for c in args.cases.split(",") if c]
    for c in cases:
        if c not in ALL_CASES:
            raise SystemExit(f"unknown case {c}; use {', '.join(ALL_CASES)}")

    info_path = args.db.with_suffix(".info.json")
    t0 = time.perf_counter()
    if args.regenerate or not args.db.exists() or not info_path.exists():
        log(f"generating data: {args.users:,} users x {args.days} days x scale {args.scale} -> {args.db}")
        if args.db.exists():
            args.db.unlink()
        info = D.write_raw_tables(args.db, args.users, args.days, args.scale, args.seed,
                                  threads=args.threads, say=log)
        info_path.write_text(json.dumps(info.as_dict(), indent=1))
    else:
        log(f"reusing {args.db}")
        info = D.DataInfo(**json.loads(info_path.read_text()))
    gen_seconds = time.perf_counter() - t0
    log(f"data: {info.exposed_users:,} exposed users, {info.events_rows:,} events, "
        f"{info.file_bytes / 2**30:.2f} GiB file ({gen_seconds:.0f}s)")

    workdir = Path(tempfile.mkdtemp(prefix="wn_bench_"))
    cells = [(n, d) for n in metrics for d in dims]
    bench = Bench(args.db, cfg, workdir, metrics, dims, args.memory_limit, args.threads)
    timing: list[dict] = []
    week: dict | None = None
    t_timing = time.perf_counter()
    if not (args.memory_test or args.no_timing):
        bench.open()
        try:
            timing = timing_pass(bench, cells, cases, args.repeats, args.per_metric_max)
            if args.week:
                week = week_pass(bench, cells[0])
        finally:
            bench.close()
    t_timing = time.perf_counter() - t_timing

    mem_cases = [c for c in args.memory_cases.split(",") if c]
    mem_cells = [tuple(int(x) for x in c.split(":")) for c in args.memory_cells.split(",") if c]
    t_mem = time.perf_counter()
    memory = memory_pass(args, mem_cells, mem_cases, workdir) if mem_cases else []
    t_mem = time.perf_counter() - t_mem
    file_bytes_after = args.db.stat().st_size

    result = {
        "label": label, "started_at": started.isoformat(timespec="seconds"),
        "command": "python -m benchmarks.run_benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine_info(), "code": json.loads(os.environ.get("WN_BENCH_CODE") or "{}"), "data": info.as_dict(), "file_bytes_after_runs": file_bytes_after,
        "settings": {"memory_limit": args.memory_limit, "threads": args.threads, "repeats": args.repeats,
                     "cases": cases, "metrics": metrics, "dims": dims, "quick": args.quick,
                     "memory_test": args.memory_test},
        "timing": timing, "memory": memory, "week": week,
        "seconds": {"data": round(gen_seconds, 1), "timing_pass": round(t_timing, 1),
                    "memory_pass": round(t_mem, 1), "total": round(time.perf_counter() - t_start, 1)},
        "load_avg_end": os.getloadavg(),
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"{label}.json"
    out.write_text(json.dumps(result, indent=1, default=str))
    from .report import render

    md = render(RESULTS_DIR)
    (HERE / "RESULTS.md").write_text(md)
    log(f"wrote {out} and {HERE / 'RESULTS.md'} (total {result['seconds']['total']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
