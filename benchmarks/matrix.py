"""The benchmark matrix (issue 10): wn against the fastest hand-written single pass, cell by cell.

    python -m benchmarks.matrix --quick                       # 50k users, every cell, 1 round
    python -m benchmarks.matrix                               # 1.5M users x 42 days x scale 0.3
    python -m benchmarks.matrix --cells base,int_ids --cases ref,stateless --repeats 5

A **covering design**, not a full factorial: a base cell (every metric type mixed, CUPED on
every metric, text ids, 1 dimension, 1 event table), then one factor varied at a time (each
metric type alone, CUPED off, integer ids, 0 dimensions, 3 event tables), plus the new user's
workload of issue 10 (7 metrics incl. active_days and a ratio, CUPED on all, integer ids).
See :data:`CELLS` and ``benchmarks/README.md``.

Cases per cell: ``ref`` (the hand-written single pass, :mod:`benchmarks.references`),
``stateless`` (``run_experiment(mode="stateless", strategy="auto")``), ``refresh``
(``mode="full-refresh"`` as of the last day of data), ``incr`` (after an untimed full refresh
as of the day before, the incremental run as of the last day: one new day + the default 2-day
lookback on a 28-day history), ``per_metric`` (one query per metric, exposures shared),
``table`` (stateless with ``unit_metrics="table"``: the per-unit table written, as before the view).

Per cell: every case once as warm-up, each comparison's numbers checked against wn's stateless
``metric_aggregates`` (relative 1e-9); one untimed profiled run of ``stateless``, ``ref`` and
``per_metric`` (DuckDB's JSON profiling: table scans of the raw tables and their rows); then
``--repeats`` rounds in rotating order (wall and CPU time, medians).  After all cells, each
case once more in a fresh child process for its peak RSS (``run_benchmarks.run_child``).

The data: the demo generator (``data.write_raw_tables``) at ``--users``/``--days``/``--scale``
into ``benchmarks/.data/matrix_*.duckdb``, plus derived tables in the same file:
``raw_int.exposures``/``raw_int.events`` (``user_id`` BIGINT: the text id ``u0001234`` ->
1234) and ``raw.events_web``/``events_commerce``/``events_api`` (``raw.events`` split by
event name, same columns).  Generated once, reused.

Results: ``benchmarks/results/matrix_<label>.json``; ``benchmarks/RESULTS.md`` re-rendered
(section "Matrix", :func:`benchmarks.report.render_matrix`).
"""

from __future__ import annotations

import sys

if __name__ == "__main__":   # first re-execute from a copy of the code under test, before importing wn
    from benchmarks.snapshot import reexec_early

    reexec_early("benchmarks.matrix", sys.argv[1:])

import argparse  # noqa: E402
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb

from warehouse_native.project import load_project, load_target
from warehouse_native.project.config_models import METRIC_TYPES
from warehouse_native.demo import story as S
from warehouse_native.runner import run_experiment

from . import data as D
from . import queries as Q
from . import run_benchmarks as RB
from .references import Layout, MetricDef, Spec, per_metric_sqls, reference_sql
from .run_benchmarks import _timed, as_rows, compare, log, machine_info, step_table, wn_aggregates
from .snapshot import reexec_in_snapshot

HERE = RB.HERE
RESULTS_DIR = HERE / "results"
CASES = ("ref", "stateless", "refresh", "incr", "per_metric", "table")
# wn cases: (mode, how a stateless run publishes unit_metrics); ``table``: the per-unit snapshot
WN_MODES = {"stateless": ("stateless", "view"), "refresh": ("full-refresh", "view"),
            "incr": ("incremental", "view"), "table": ("stateless", "table")}
REF_SHAPES = ("join", "left", "union")
RAW_SCHEMAS = ("raw", "raw_int")

# -- metrics and cells ----------------------------------------------------------------------

WEB = ("session_start", "page_view")
COMMERCE = ("visited_signup", "signup_success", "purchase")
API = ("api_request", "api_success")
assert sorted(WEB + COMMERCE + API) == sorted(S.EVENT_NAMES)

CATALOG: dict[str, MetricDef] = {m.name: m for m in (
    MetricDef("sessions", "count", ("session_start",)),
    MetricDef("revenue", "sum", ("purchase",), "value"),
    MetricDef("purchasers", "conversion", ("purchase",)),
    MetricDef("active_days", "active_days", WEB),
    MetricDef("daily_active", "daily_participation", ("session_start",)),
    MetricDef("active_hours", "count_distinct", ("page_view",), "date_trunc('hour', ts)"),
    MetricDef("order_value", "mean", ("purchase",), "value"),
    MetricDef("api_success_rate", "ratio", numerator="api_successes", denominator="api_requests"),
    MetricDef("api_requests", "count", ("api_request",)),
    MetricDef("api_successes", "count", ("api_success",)),
    MetricDef("page_views", "count", ("page_view",)),
    MetricDef("visited_signup", "conversion", ("visited_signup",)),
    MetricDef("pages_per_session", "ratio", numerator="page_views", denominator="sessions"),
    MetricDef("day7_return", "retention", ("session_start",), day=7),
    MetricDef("signup_funnel", "funnel", COMMERCE, steps=(("visited_signup",), ("signup_success",), ("purchase",)),
              within_hours=72),
    # the demo data's only value column is the purchase amount: a p95 of it stands for any
    # quantile of events (a latency guardrail reads the same way)
    MetricDef("order_value_p95", "percentile", ("purchase",), "value", percentile=0.95),
)}
# the base cell: one metric of each type, over every event family (web, commerce, API)
BASE = ("sessions", "revenue", "purchasers", "active_days", "daily_active", "active_hours",
        "order_value", "api_success_rate")
# types measured in a cell of their own only (the base cell stays comparable with earlier
# results): retention and funnel are unit columns of the same scan; percentile metrics are an
# extra statement per metric (a sort of their events), not a unit column
OWN_CELL = ("day7_return", "signup_funnel", "order_value_p95")
BY_TYPE = {CATALOG[n].type: n for n in BASE + OWN_CELL}
# issue 10's "new user": 7 metrics incl. active_days and a ratio, CUPED on all, integer ids
NEW_USER = ("sessions", "page_views", "revenue", "purchasers", "visited_signup", "active_days",
            "pages_per_session")


@dataclass(frozen=True)
class Cell:
    name: str
    metrics: tuple[str, ...]
    cuped: bool = True
    int_ids: bool = False
    dimension: bool = True
    sources: int = 1
    what: str = ""

    def describe(self) -> str:
        return (f"{len(self.metrics)} metrics, CUPED {'on' if self.cuped else 'off'}, "
                f"{'integer' if self.int_ids else 'text'} ids, {int(self.dimension)} dim, "
                f"{self.sources} source{'s' if self.sources > 1 else ''}")


def cells() -> list[Cell]:
    missing = [t for t in METRIC_TYPES if t not in BY_TYPE]
    if missing:   # wn gained a metric type: the matrix must cover it
        raise SystemExit(f"metric type(s) {', '.join(missing)} not in the matrix: add a metric of each to "
                         "CATALOG and BASE (benchmarks/matrix.py) and its reference to benchmarks/references.py")
    out = [Cell("base", BASE, what="every metric type mixed")]
    out += [Cell(f"only_{t}", (BY_TYPE[t],), what=f"`{BY_TYPE[t]}` alone") for t in METRIC_TYPES]
    out += [
        Cell("cuped_off", BASE, cuped=False, what="base, CUPED off"),
        Cell("int_ids", BASE, int_ids=True, what="base, BIGINT user ids"),
        Cell("no_dims", BASE, dimension=False, what="base, no dimension"),
        Cell("three_sources", BASE, sources=3, what="base over 3 event tables (web, commerce, API)"),
        Cell("new_user", NEW_USER, int_ids=True, what="issue 10's workload: 7 metrics incl. active_days "
             "and a ratio, CUPED on all, integer ids"),
    ]
    return out


CELLS = {c.name: c for c in cells()}


def layout(cell: Cell) -> Layout:
    raw = "raw_int" if cell.int_ids else "raw"
    if cell.sources == 1:
        srcs = (("events", f"{raw}.events", tuple(S.EVENT_NAMES)),)
    else:
        assert cell.sources == 3 and not cell.int_ids
        srcs = (("web_events", "raw.events_web", WEB), ("commerce_events", "raw.events_commerce", COMMERCE),
                ("api_events", "raw.events_api", API))
    return Layout(f"{raw}.exposures", srcs, cell.int_ids)


def spec(cell: Cell) -> Spec:
    return Spec(tuple(CATALOG[n] for n in cell.metrics), CATALOG, cell.cuped, cell.dimension, layout(cell))


def _needed(names: tuple[str, ...]) -> list[MetricDef]:
    out: list[MetricDef] = []
    for n in names:
        m = CATALOG[n]
        for part in ((m.numerator, m.denominator) if m.type == "ratio" else ()):
            if CATALOG[part] not in out:
                out.append(CATALOG[part])
        if m not in out:
            out.append(m)
    return out


def write_project(root: Path, db: Path, cell: Cell, cfg, *, memory_limit: str, threads: int) -> Path:
    """A wn project for one cell (README's YAML): sources, the cell's metrics (and a ratio's
    parts, catalog only), experiment ``bench`` with the cell's dimension and CUPED setting."""
    lay = layout(cell)
    (root / "metrics").mkdir(parents=True, exist_ok=True)
    (root / "experiments").mkdir(parents=True, exist_ok=True)
    (root / "profiles.yml").write_text(D.profiles_yml(db, memory_limit=memory_limit, threads=threads))
    src = [f"""\
sources:
  - name: exposures
    table: {lay.exposures}
    timestamp: ts
    units: {{user_id: user_id, stable_id: stable_id}}
    experiment_column: experiment
    variant_column: group_name
    dimensions: [country, device]
    columns: [user_id, stable_id, experiment, group_name, ts, country, device]
"""]
    for name, table, _events in lay.sources:
        src.append(f"""\
  - name: {name}
    table: {table}
    timestamp: ts
    units: {{user_id: user_id}}
    dimensions: [country]
    columns: [user_id, ts, event_name, value, country]
""")
    (root / "metrics" / "sources.yml").write_text("\n".join(src))
    lines = ["metrics:"]
    for m in _needed(cell.metrics):
        lines.append(f"  - name: {m.name}\n    type: {m.type}")
        if m.type == "ratio":
            lines.append(f"    numerator: {m.numerator}\n    denominator: {m.denominator}")
        elif m.type == "funnel":
            lines.append(f"    source: {lay.source_of(m.events)}\n    funnel:\n      within_hours: {m.within_hours}\n"
                         "      steps:")
            for step, events in zip(m.step_names, m.steps):
                lines.append(f"        - {{name: {step}, filter: \"{MetricDef('', '', events).filter}\"}}")
        else:
            if m.type == "retention":
                lines.append(f"    retention: {{day: {m.day}}}")
            lines.append(f"    source: {lay.source_of(m.events)}\n    filter: \"{m.filter}\"")
            if m.value:
                lines.append(f"    value: \"{m.value}\"")
        if m.type == "percentile":   # no CUPED for a quantile of events (writing it is an error)
            lines.append(f"    percentile: {m.percentile}")
            continue
        lines.append("    cuped: true")
    (root / "metrics" / "bench.yml").write_text("\n".join(lines) + "\n")
    (root / "experiments" / f"{D.EXPERIMENT_NAME}.yml").write_text(
        D.experiment_yml(cfg, list(cell.metrics), dimension=cell.dimension, cuped=cell.cuped,
                         cuped_days=Q.CUPED_DAYS))
    return root


# -- data -------------------------------------------------------------------------------------

def data_path(users: int, days: int, scale: float, seed: int) -> Path:
    return HERE / ".data" / f"matrix_{users}u_{days}d_x{scale:g}_s{seed}.duckdb"


def derive_tables(db: Path, threads: int) -> dict[str, int]:
    """Integer-id copies and the 3-table split of ``raw.events``, in the same file."""
    con = duckdb.connect(str(db), config={"threads": threads})
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("CREATE SCHEMA IF NOT EXISTS raw_int")
        for t in ("exposures", "events"):
            con.execute(f"CREATE OR REPLACE TABLE raw_int.{t} AS SELECT "
                        f"cast(substr(user_id, 2) as BIGINT) AS user_id, * EXCLUDE (user_id) FROM raw.{t}")
        for name, events in (("web", WEB), ("commerce", COMMERCE), ("api", API)):
            names = ", ".join(f"'{e}'" for e in events)
            con.execute(f"CREATE OR REPLACE TABLE raw.events_{name} AS "
                        f"SELECT * FROM raw.events WHERE event_name IN ({names})")
        con.execute("CHECKPOINT")
        tables = ["raw.exposures", "raw.events", "raw_int.exposures", "raw_int.events",
                  "raw.events_web", "raw.events_commerce", "raw.events_api"]
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}
    finally:
        con.close()


def ensure_data(args) -> dict[str, Any]:
    db = args.db
    info_path = db.with_suffix(".info.json")
    if args.regenerate or not db.exists() or not info_path.exists():
        log(f"generating data: {args.users:,} users x {args.days} days x scale {args.scale} -> {db}")
        for p in (db, Path(str(db) + ".wal")):
            if p.exists():
                p.unlink()
        t0 = time.perf_counter()
        info = D.write_raw_tables(db, args.users, args.days, args.scale, args.seed, threads=args.threads,
                                  say=log).as_dict()
        log("deriving raw_int.* (BIGINT ids) and raw.events_web/commerce/api")
        info["tables"] = derive_tables(db, args.threads)
        info["file_bytes"] = db.stat().st_size
        info["seconds"] = time.perf_counter() - t0
        info_path.write_text(json.dumps(info, indent=1))
    else:
        log(f"reusing {db}")
        info = json.loads(info_path.read_text())
    return info


# -- running cases ----------------------------------------------------------------------------

class Matrix(RB.Connected):
    """The cells' projects over one DuckDB file, one connection, and the cases."""

    def __init__(self, db: Path, cfg, workdir: Path, cell_list: list[Cell], memory_limit: str, threads: int):
        self.db, self.cfg = db, cfg
        self.last_day = cfg.experiment_end          # the last day of data (data.demo_config)
        self.win = Q.window_of(cfg, self.last_day)
        self.cells = {c.name: c for c in cell_list}
        self.projects = {}
        root = None
        for c in cell_list:
            root = write_project(workdir / f"cell_{c.name}", db, c, cfg, memory_limit=memory_limit,
                                 threads=threads)
            self.projects[c.name] = load_project(root)
        self.target = load_target(root)

    def wn(self, cell: Cell, mode: str, as_of: dt.date | None = None, unit_metrics: str = "view"):
        # (unit_metrics: an argument of wn since the stop that made the view the default)
        extra = {"unit_metrics": unit_metrics} if unit_metrics != "view" else {}
        return run_experiment(self.projects[cell.name], self.target, self.adapter, D.EXPERIMENT_NAME,
                              as_of=as_of or self.last_day, strategy="auto", mode=mode, **extra)

    def prepare(self, case: str, cell: Cell) -> None:
        """Untimed set-up: ``incr`` starts from a state built as of the day before."""
        if case == "incr":
            self.wn(cell, "full-refresh", as_of=self.last_day - dt.timedelta(days=1))

    def run_case(self, case: str, cell: Cell):
        if case in WN_MODES:
            mode, unit_metrics = WN_MODES[case]
            return self.wn(cell, mode, unit_metrics=unit_metrics)
        if case == "ref" or case.startswith("ref_"):
            shape = case[4:] or default_shape(cell)
            return self.adapter.fetch(reference_sql(spec(cell), self.win, shape=shape))
        if case == "per_metric":
            return self.per_metric(cell)
        raise ValueError(case)

    def per_metric(self, cell: Cell) -> list[dict]:
        return RB.run_per_metric(self.adapter, *per_metric_sqls(spec(cell), self.win))


def default_shape(cell: Cell) -> str:
    """The reference shape used for ``ref``: the fastest measured (see README, "Matrix")."""
    return "join"


# -- profiling: table scans of the raw tables ------------------------------------------------------

class ScanProfile:
    """While active, every statement wn or a case sends through the adapter is profiled by
    DuckDB (JSON); the table scans of the raw tables are collected: table, rows scanned
    (read from storage) and rows emitted (after the filters pushed into the scan)."""

    def __init__(self, adapter):
        self.adapter = adapter
        self.scans: list[dict] = []
        self.statements = 0

    def __enter__(self):
        con = self.adapter.con
        con.execute("PRAGMA enable_profiling='no_output'")
        con.execute("SET profiling_coverage='ALL'")
        orig_exec, orig_fetch = self.adapter.execute, self.adapter.fetch

        def execute(sql, params=None):
            out = orig_exec(sql, params)
            self._record(sql)
            return out

        def fetch(sql, params=None):
            out = orig_fetch(sql, params)
            self._record(sql)
            return out

        self.adapter.execute, self.adapter.fetch = execute, fetch
        return self

    def __exit__(self, *exc):
        del self.adapter.execute, self.adapter.fetch   # back to the class's methods
        con = self.adapter.con
        con.execute("PRAGMA disable_profiling")
        con.execute("RESET profiling_coverage")

    def _record(self, sql: str) -> None:
        info = json.loads(self.adapter.con.get_profiling_information(format="json"))
        if (info.get("query") or {}).get("sql") != sql:
            return   # not profiled (e.g. a transaction statement): the previous statement's profile
        self.statements += 1

        def walk(node):
            extra = node.get("extra_info") or {}
            table = extra.get("Table")
            if node.get("type") == "TABLE_SCAN" and table:
                parts = table.split(".")
                if len(parts) >= 2 and parts[-2] in RAW_SCHEMAS:
                    self.scans.append({"table": ".".join(parts[-2:]), "rows_scanned": node.get("rows_scanned"),
                                       "rows_out": node.get("intermediate_rows"),
                                       "statement": sql.strip().splitlines()[0][:120]})
            for child in node.get("children") or ():
                walk(child)

        for op in info.get("operator") or ():
            walk(op)

    def summary(self) -> dict:
        by_table: dict[str, dict] = {}
        for s in self.scans:
            t = by_table.setdefault(s["table"], {"scans": 0, "rows_scanned": 0, "rows_out": 0})
            t["scans"] += 1
            t["rows_scanned"] += s["rows_scanned"] or 0
            t["rows_out"] += s["rows_out"] or 0
        return {"scans": len(self.scans), "rows_scanned": sum(t["rows_scanned"] for t in by_table.values()),
                "rows_out": sum(t["rows_out"] for t in by_table.values()), "by_table": by_table,
                "statements_profiled": self.statements}


def profile_cell(m: Matrix, cell: Cell, cases: list[str]) -> dict:
    out = {}
    for case in ("stateless", "ref", "per_metric"):
        if case not in cases:
            continue
        with ScanProfile(m.adapter) as prof:
            m.run_case(case, cell)
        out[case] = prof.summary()
        log(f"  scans {case}: {out[case]['scans']} table scans, {out[case]['rows_scanned']:,} rows scanned, "
            f"{out[case]['rows_out']:,} rows out of the scans")
    return out


# -- the machine must be quiet -------------------------------------------------------------------

def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def other_benchmarks() -> list[str]:
    out = subprocess.run(["pgrep", "-af", r"benchmarks\.|run_benchmarks|matrix"], capture_output=True,
                         text=True).stdout
    mine = _ancestors()
    return [line for line in out.splitlines() if line.split()[0].isdigit() and int(line.split()[0]) not in mine]


def wait_until_quiet(enabled: bool) -> None:
    """Timed runs start only when no other benchmark process runs (the machine is shared)."""
    if not enabled:
        return
    waited = 0.0
    while others := other_benchmarks():
        if waited % 300 == 0:
            log(f"waiting for other benchmarks to finish: {'; '.join(o[:100] for o in others)}")
        time.sleep(15)
        waited += 15
    if waited:
        log(f"waited {waited / 60:.0f} min for other benchmarks")


def _busy_seconds() -> float:
    """CPU seconds all processes have used since boot (every core; not idle or iowait)."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:9]]
    return (sum(vals) - vals[3] - vals[4]) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class OthersCPU:
    """Cores used by other processes while the block runs (``/proc/stat`` minus this process)."""

    def __enter__(self):
        self.t0, self.busy0, self.own0 = time.perf_counter(), _busy_seconds(), _own_seconds()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t0
        self.cores = max(0.0, (_busy_seconds() - self.busy0) - (_own_seconds() - self.own0)) / max(wall, 1e-9)


def wait_for_idle(enabled: bool, max_cores: float, max_wait: float) -> float:
    """Before a timed case: wait (at most ``max_wait`` s) until other processes use less than
    ``max_cores`` cores over 2 s (others' tests and builds share this machine).  Returns the
    others' cores measured last."""
    t0 = time.perf_counter()
    while True:
        with OthersCPU() as o:
            time.sleep(2.0)
        if not enabled or o.cores < max_cores or time.perf_counter() - t0 > max_wait:
            if enabled and o.cores >= max_cores:
                log(f"  others still use {o.cores:.2f} cores after {max_wait / 60:.0f} min: timing anyway")
            elif time.perf_counter() - t0 > 10:
                log(f"  waited {time.perf_counter() - t0:.0f}s for other processes ({o.cores:.2f} cores now)")
            return o.cores
        time.sleep(3.0)


# -- timing pass ------------------------------------------------------------------------------

def _ratio(a, b):
    return a / b if (a is not None and b) else None


def ratios(med: dict[str, float], ref_case: str | None) -> dict[str, float | None]:
    ref = med.get(ref_case) if ref_case else None
    return {"stateless/ref": _ratio(med.get("stateless"), ref),
            "refresh/ref": _ratio(med.get("refresh"), ref),
            "incr/refresh": _ratio(med.get("incr"), med.get("refresh")),
            "per_metric/stateless": _ratio(med.get("per_metric"), med.get("stateless")),
            "table/ref": _ratio(med.get("table"), ref)}


def best_ref(med: dict[str, float]) -> str | None:
    refs = [c for c in med if c == "ref" or c.startswith("ref_")]
    return min(refs, key=lambda c: med[c]) if refs else None


def time_cell(m: Matrix, cell: Cell, cases: list[str], repeats: int, profile: bool, wait: bool,
              idle_cores: float = 0.3, idle_wait: float = 1200.0) -> dict:
    wait_until_quiet(wait)
    others: dict[str, list[float]] = {c: [] for c in cases}
    log(f"cell {cell.name} ({cell.describe()}): warm-up {', '.join(cases)}")
    times: dict[str, list[float]] = {c: [] for c in cases}
    cpus: dict[str, list[float]] = {c: [] for c in cases}
    wn_runs: dict[str, list] = {c: [] for c in cases if c in WN_MODES}
    checks: dict[str, str] = {}
    warm: dict[str, float] = {}
    wn_ref = None
    for c in sorted(cases, key=lambda c: c != "stateless"):   # wn stateless first: the numbers to check
        m.prepare(c, cell)
        secs, cpu, payload = _timed(lambda c=c: m.run_case(c, cell))
        warm[c] = secs
        log(f"  warm-up {c}: {secs:.2f}s (cpu {cpu:.2f}s)")
        if wn_ref is None:
            wn_ref = wn_aggregates(payload if c == "stateless" else m.wn(cell, "stateless"))
            if c == "stateless":
                continue
        ok, why = compare(wn_ref, as_rows(wn_aggregates(payload)) if c in WN_MODES else payload)
        checks[c] = ("ok: " if ok else "MISMATCH: ") + why
        if not ok:
            log(f"  {c}: {checks[c]}")
    scans = profile_cell(m, cell, cases) if profile else {}
    for i in range(repeats):
        k = i % len(cases)
        for c in cases[k:] + cases[:k]:
            m.prepare(c, cell)
            wait_for_idle(wait, idle_cores, idle_wait)
            with OthersCPU() as o:
                secs, cpu, payload = _timed(lambda c=c: m.run_case(c, cell))
            times[c].append(secs)
            cpus[c].append(cpu)
            others[c].append(round(o.cores, 3))
            log(f"  round {i + 1} {c}: {secs:.2f}s (cpu {cpu:.2f}s; others {o.cores:.2f} cores)")
            if c in WN_MODES:
                wn_runs[c].append((secs, payload))
    med = {c: statistics.median(v) for c, v in times.items() if v}
    cmed = {c: statistics.median(v) for c, v in cpus.items() if v}
    ref_case = best_ref(med)
    log("  " + ", ".join(f"{c} {med[c]:.2f}s" for c in cases if c in med) + " | "
        + ", ".join(f"{k} {v:.2f}" for k, v in ratios(med, ref_case).items() if v is not None))
    units = None
    for c, runs in wn_runs.items():
        for s in runs[0][1].steps if runs else ():
            if s.step == "exposures" and s.rows is not None:
                units = s.rows
    return {"cell": cell.name, "what": cell.what, "describe": cell.describe(), "definition": asdict(cell),
            "times": times, "cpu": cpus, "median": med, "cpu_median": cmed, "warmup": warm,
            "ref_case": ref_case, "ratios": ratios(med, ref_case), "cpu_ratios": ratios(cmed, ref_case),
            "checks": checks, "scans": scans, "exposed_units": units, "load_avg": os.getloadavg(),
            "others_cores": others,
            "steps": {c: step_table(v) for c, v in wn_runs.items() if v},
            "notes": {c: v[0][1].note for c, v in wn_runs.items() if v}}


# -- memory pass (children) ---------------------------------------------------------------------

def child_main(spec_: dict) -> None:
    cell = CELLS[spec_["cell"]]
    cfg = D.demo_config(spec_["users"], spec_["days"], spec_["scale"], spec_["seed"])
    m = Matrix(Path(spec_["db"]), cfg, Path(spec_["workdir"]), [cell], spec_["memory_limit"], spec_["threads"])
    m.open()
    case, status, error, secs = spec_["case"], "ok", None, None
    try:
        if spec_.get("prepare"):
            m.prepare(case, cell)
        else:
            t0 = time.perf_counter()
            payload = m.run_case(case, cell)
            secs = time.perf_counter() - t0
            if case in WN_MODES:
                status = payload.status
    except Exception as exc:  # report, don't crash
        status, error = "error", f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        m.close()
    RB.child_report({"cell": cell.name, "case": case, "status": status, "error": error, "seconds": secs})


def memory_pass(args, cell_list: list[Cell], cases: list[str], workdir: Path) -> list[dict]:
    out = []
    for cell in cell_list:
        for case in cases:
            base = {"cell": cell.name, "case": case, "db": str(args.db), "users": args.users, "days": args.days,
                    "scale": args.scale, "seed": args.seed, "memory_limit": args.memory_limit,
                    "threads": args.threads, "workdir": str(workdir / f"child_{cell.name}_{case}")}
            if case == "incr":   # the state as of the day before, built by a child of its own
                prep = RB.run_child("benchmarks.matrix", {**base, "prepare": True})
                if prep.get("status") not in ("ok", None) or prep.get("exit"):
                    log(f"  memory {cell.name}/{case}: preparing failed: {prep.get('error')}")
            res = {"cell": cell.name, "case": case, **RB.run_child("benchmarks.matrix", base)}
            log(f"  memory {cell.name}/{case}: {res.get('status')} peak RSS {res['peak_rss_mib']:,.0f} MiB"
                + (f" ({res.get('error')})" if res.get("error") else ""))
            out.append(res)
    return out


# -- main -----------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="50k users (~0.9M events), 1 timed round")
    p.add_argument("--users", type=int, default=1_500_000, help="generated users (~67%% exposed at 42 days)")
    p.add_argument("--days", type=int, default=42,
                   help="days of data; the experiment starts on day 15 (42 days: a 28-day history)")
    p.add_argument("--scale", type=float, default=0.3, help="events per user-day factor")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--db", type=Path, help="DuckDB file (default benchmarks/.data/matrix_<size>.duckdb)")
    p.add_argument("--regenerate", action="store_true")
    p.add_argument("--cells", default=",".join(CELLS), help=f"cells, from {','.join(CELLS)}")
    p.add_argument("--cases", default=",".join(CASES),
                   help=f"timed cases, from {','.join(CASES)} (and ref_<shape> for {','.join(REF_SHAPES)})")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per cell (default 3; --quick 1)")
    p.add_argument("--memory-cases", default=",".join(CASES),
                   help="cases run once more in a child process for peak RSS ('' = none)")
    p.add_argument("--no-profile", action="store_true", help="skip the profiled (scan-counting) runs")
    p.add_argument("--no-wait", action="store_true",
                   help="do not wait for other benchmarks to finish nor for the machine to be idle")
    p.add_argument("--idle-cores", type=float, default=0.3,
                   help="before each timed case, wait until other processes use fewer cores than this")
    p.add_argument("--idle-wait", type=float, default=1200, help="... but at most this many seconds")
    p.add_argument("--memory-limit", default="4GB")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--label", help="results name: results/matrix_<label>.json")
    p.add_argument("--code", default="worktree", help="code under test: worktree or a git revision")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.users = 50_000
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.db is None:
        args.db = data_path(args.users, args.days, args.scale, args.seed)
    args.db = args.db.resolve()
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return 0
    if not os.environ.get("WN_BENCH_SNAPSHOT"):
        reexec_in_snapshot("benchmarks.matrix", args.code, argv)
    started = dt.datetime.now()
    t_start = time.perf_counter()
    cell_list = [CELLS[c] for c in args.cells.split(",") if c]
    cases = [c for c in args.cases.split(",") if c]
    for c in cases:
        if c not in CASES and not (c.startswith("ref_") and c[4:] in REF_SHAPES):
            raise SystemExit(f"unknown case {c}; use {', '.join(CASES)} or ref_<{'|'.join(REF_SHAPES)}>")
    label = args.label or (f"{'quick_' if args.quick else ''}{args.users}u_{args.days}d_x{args.scale:g}")
    info = ensure_data(args)
    log(f"data: {info['exposed_users']:,} exposed users, {info['events_rows']:,} events, "
        f"{info['file_bytes'] / 2**30:.2f} GiB file")
    cfg = D.demo_config(args.users, args.days, args.scale, args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="wn_matrix_"))
    m = Matrix(args.db, cfg, workdir, cell_list, args.memory_limit, args.threads)
    results = []
    t0 = time.perf_counter()
    m.open()
    try:
        for cell in cell_list:
            results.append(time_cell(m, cell, cases, args.repeats, not args.no_profile, not args.no_wait,
                                     args.idle_cores, args.idle_wait))
            _write(args, label, started, info, cell_list, cases, results, [], t_start, partial=True)
    finally:
        m.close()
    t_timing = time.perf_counter() - t0
    mem_cases = [c for c in args.memory_cases.split(",") if c]
    t0 = time.perf_counter()
    memory = memory_pass(args, cell_list, mem_cases, workdir) if mem_cases else []
    out = _write(args, label, started, info, cell_list, cases, results, memory, t_start,
                 seconds={"timing_pass": round(t_timing, 1), "memory_pass": round(time.perf_counter() - t0, 1)})
    log(f"wrote {out} and {HERE / 'RESULTS.md'} (total {time.perf_counter() - t_start:.0f}s)")
    return 0


def _write(args, label, started, info, cell_list, cases, results, memory, t_start, *, partial=False,
           seconds=None) -> Path:
    res = {
        "label": label, "kind": "matrix", "started_at": started.isoformat(timespec="seconds"),
        "command": "python -m benchmarks.matrix " + " ".join(sys.argv[1:]),
        "machine": machine_info(), "code": json.loads(os.environ.get("WN_BENCH_CODE") or "{}"), "data": info,
        "settings": {"memory_limit": args.memory_limit, "threads": args.threads, "repeats": args.repeats,
                     "cases": cases, "cells": [c.name for c in cell_list], "quick": args.quick,
                     "as_of": D.demo_config(args.users, args.days, args.scale, args.seed).experiment_end.isoformat()},
        "cells": {c.name: {"what": c.what, "describe": c.describe(), **asdict(c)} for c in cell_list},
        "timing": results, "memory": memory, "partial": partial,
        "seconds": {**(seconds or {}), "total": round(time.perf_counter() - t_start, 1)},
        "load_avg_end": os.getloadavg(),
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"matrix_{label}.json"
    out.write_text(json.dumps(res, indent=1, default=str))
    if not partial:
        from .report import render

        (HERE / "RESULTS.md").write_text(render(RESULTS_DIR))
    return out


if __name__ == "__main__":
    sys.exit(main())
