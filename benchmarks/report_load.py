"""How fast a big ``wn report`` page loads in headless Chromium, and how big it is.

    .venv/bin/python -m benchmarks.report_load [--metrics 30] [--variants 4] [--slices 20] [--rounds 9]

Builds a synthetic project (``--metrics`` metrics, two of them guardrails, three primaries) and a
DuckDB warehouse whose published tables (``scorecard``, ``health_checks``, ``runs``,
``exposures``, ``scorecard_daily``) hold one run of it with ``--variants`` variants and
``--slices`` values of one dimension: nothing is computed, the rows are written directly, like a
run would publish them. Then it times ``wn report`` (build) and opens the page ``--rounds`` times,
each in a fresh tab of one headless Chromium with the network cut, and reports the medians of:
the load event (navigation start -> end of ``load``: HTML parsed, every inline SVG laid out),
the first contentful paint, and the wall time from the navigate command to the load event seen
by the driver. The page's size and every number go to ``benchmarks/report_load.json`` and to a
section of ``benchmarks/RESULTS.md`` (``python -m benchmarks.report`` keeps it).
``WN_BENCH_KEEP=DIR`` keeps the synthetic project and its page in DIR.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))   # the DevTools driver shared with the page tests

from chromium import Chromium, find_chromium  # noqa: E402

from warehouse_native.cli.main import main as wn_main  # noqa: E402
from warehouse_native.warehouse.tables import HEALTH_CHECKS, RUNS, SCORECARD, scorecard_latest_view  # noqa: E402

from .report import put_section  # noqa: E402

SECTION = "## Report page load (`benchmarks/report_load.py`)"
START = dt.date(2026, 9, 1)


def write_project(root: Path, n_metrics: int, n_variants: int) -> tuple[list[str], list[str]]:
    (root / "metrics").mkdir(parents=True)
    (root / "experiments").mkdir()
    (root / "profiles.yml").write_text("bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
                                       "      path: bench.duckdb\n      schema: wn\n")
    (root / "metrics" / "sources.yml").write_text(
        "sources:\n  - name: exposures\n    table: raw.exposures\n    timestamp: ts\n    units: {user_id: user_id}\n"
        "    experiment_column: experiment\n    variant_column: variant\n    dimensions: [country]\n"
        "  - name: events\n    table: raw.events\n    timestamp: ts\n    units: {user_id: user_id}\n")
    metrics = [f"metric_{i:02d}" for i in range(n_metrics)]
    lines = ["metrics:"]
    for i, name in enumerate(metrics):
        lines += [f"  - name: {name}", f"    description: Synthetic metric number {i}", "    source: events",
                  "    type: count", f"    filter: \"event_name = 'e{i}'\"",
                  f"    direction: {'decrease' if i % 5 == 4 else 'increase'}",
                  f"    tags: [{'guardrail' if i >= n_metrics - 2 else 'bench'}]"]
    (root / "metrics" / "bench.yml").write_text("\n".join(lines) + "\n")
    variants = ["control"] + [f"treatment_{i}" for i in range(1, n_variants)]
    weight = 1 / n_variants
    var_yaml = "\n".join(f"    - {{name: {v}, weight: {weight:.6f}{', control: true' if i == 0 else ''}}}"
                         for i, v in enumerate(variants))
    (root / "experiments" / "bench.yml").write_text(
        f"experiment:\n  name: bench\n  hypothesis: A synthetic experiment to time the report page\n"
        f"  owner: bench-team\n  unit: user_id\n  exposures: {{source: exposures}}\n  start: {START}\n"
        f"  end: {START + dt.timedelta(days=27)}\n  variants:\n{var_yaml}\n"
        f"  primary_metrics: [{', '.join(metrics[:3])}]\n  secondary_metrics: [{', '.join(metrics[3:-2])}]\n"
        f"  dimensions: [country]\n")
    return metrics, variants


def _create(con: duckdb.DuckDBPyConnection, name: str, columns, extra: str = "") -> None:
    cols = ", ".join(f"{c} {'timestamp' if k == 'timestamp' else k}" for c, k in columns)
    con.execute(f"create table wn.{name} ({cols}{extra})")


def write_warehouse(path: Path, metrics: list[str], variants: list[str], n_slices: int, days: int = 28) -> int:
    rng = np.random.default_rng(7)
    run_id, now = "20260930T060000_bench0", dt.datetime(2026, 9, 30, 6)
    names = [c for c, _ in SCORECARD]
    rows = []
    slices = [(None, None)] + [("country", f"C{i:02d}") for i in range(n_slices)]
    for dim, value in slices:
        n = 200_000 if dim is None else 200_000 // n_slices
        for m_i, metric in enumerate(metrics):
            role = "primary" if m_i < 3 else "guardrail" if m_i >= len(metrics) - 2 else "secondary"
            base = float(rng.uniform(0.05, 20))
            for v in variants[1:]:
                rel = float(rng.normal(0, 0.02))
                half = float(rng.uniform(0.005, 0.05)) * (1 if dim is None else np.sqrt(n_slices))
                p = float(min(1.0, abs(rng.normal(0.3, 0.3))))
                status = None if role != "guardrail" else ("fail" if rel < -half else "warn" if rel - half < 0 else "pass")
                row = dict.fromkeys(names)
                row.update(run_id=run_id, computed_at=now, experiment="bench", metric=metric, metric_type="count",
                           role=role, tags="bench", direction="increase", dimension=dim, dimension_value=value,
                           control_variant=variants[0], variant=v, control_units=n, variant_units=n,
                           control_mean=base, variant_mean=base * (1 + rel), abs_delta=base * rel,
                           rel_delta=rel, rel_ci_lower=rel - half, rel_ci_upper=rel + half, p_value=p,
                           adjusted_p_value=min(1.0, p * 3) if role == "primary" and dim is None else p,
                           correction="holm" if role == "primary" and dim is None else "none",
                           adjusted_rel_ci_lower=rel - 1.2 * half, adjusted_rel_ci_upper=rel + 1.2 * half,
                           confidence_level=0.95, significant=p < 0.05, cuped=True, variance_reduction=0.1,
                           guardrail_status=status, srm_status="pass")
                rows.append(row)
    with duckdb.connect(str(path)) as con:
        con.execute("create schema wn")
        _create(con, "scorecard", SCORECARD)
        con.executemany(f"insert into wn.scorecard values ({', '.join('?' * len(names))})",
                        [[r[c] for c in names] for r in rows])
        _create(con, "runs", RUNS)
        con.execute("insert into wn.runs (run_id, experiment, started_at, finished_at, status, mode, as_of) "
                    "values (?, 'bench', ?, ?, 'success', 'incremental', '2026-09-30')", [run_id, now, now])
        con.execute(f"create view wn.scorecard_latest as {scorecard_latest_view('wn')}")
        _create(con, "health_checks", HEALTH_CHECKS)
        checks = [(run_id, now, "bench", "srm", d, v, "pass", 1.2, 0.75, "units: …") for d, v in slices]
        checks.append((run_id, now, "bench", "multi_exposure", None, None, "pass", 12.0, None, "12 units"))
        con.executemany("insert into wn.health_checks values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", checks)
        con.execute("create table wn.exposures (experiment varchar, unit_type varchar, unit_id varchar, "
                    "variant varchar, first_exposure_at timestamp, exposure_count bigint, country varchar)")
        con.execute(f"""insert into wn.exposures
            select 'bench', 'user_id', cast(i as varchar), '{variants[0]}' , timestamp '{START}' + to_days(cast(i % {days} as integer)),
                   1, 'C' || lpad(cast(i % {n_slices} as varchar), 2, '0') from range(200000) t(i)""")
        for v in variants[1:]:
            con.execute(f"insert into wn.exposures select experiment, unit_type, unit_id || '{v}', '{v}', "
                        f"first_exposure_at, exposure_count, country from wn.exposures where variant = '{variants[0]}'")
        con.execute(f"""create table wn.scorecard_daily as
            select s.* replace (s.rel_delta * (0.5 + 0.5 * k / {days - 1}) as rel_delta,
                                s.rel_delta * (0.5 + 0.5 * k / {days - 1}) - (s.rel_delta - s.rel_ci_lower) * sqrt({days} / (k + 1)) as rel_ci_lower,
                                s.rel_delta * (0.5 + 0.5 * k / {days - 1}) + (s.rel_ci_upper - s.rel_delta) * sqrt({days} / (k + 1)) as rel_ci_upper),
                   cast(date '{START}' + cast(k as integer) as date) as day
            from wn.scorecard as s, range({days}) as t(k) where s.dimension is null""")
        con.execute("create view wn.scorecard_daily_latest as select * from wn.scorecard_daily")
    return len(rows)


def time_loads(page: Path, rounds: int) -> dict:
    loads, paints, walls, charts = [], [], [], None
    with Chromium() as browser:
        version = browser.version
        for i in range(rounds + 1):   # the first round warms the browser up and is not counted
            tab = browser.open("about:blank")
            wall = tab.goto(page.as_uri())
            timing = tab.evaluate("""new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => {
                const nav = performance.getEntriesByType('navigation')[0];
                const fcp = performance.getEntriesByType('paint').find(p => p.name === 'first-contentful-paint');
                done({load: nav.loadEventEnd, dcl: nav.domContentLoadedEventEnd, fcp: fcp ? fcp.startTime : null,
                      charts: document.querySelectorAll('figure.chart svg').length});
            })))""")
            state = tab.collect()
            assert not state.console_errors, state.console_errors
            tab.close()
            if i:
                loads.append(timing["load"])
                walls.append(wall * 1000)
                if timing["fcp"] is not None:   # a tab may load before it first paints
                    paints.append(timing["fcp"])
            charts = timing["charts"]
    return {"chromium": version, "rounds": rounds, "charts": charts,
            "load_ms": loads, "fcp_ms": paints, "wall_ms": walls,
            "median_load_ms": statistics.median(loads),
            "median_fcp_ms": statistics.median(paints) if paints else float("nan"),
            "median_wall_ms": statistics.median(walls), "max_load_ms": max(loads)}


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "loadavg_before": os.getloadavg()}


def render_section(res: dict) -> str:
    t, m, size = res["timing"], res["machine"], res["page_bytes"]
    return "\n".join([
        SECTION + "\n",
        f"`python -m benchmarks.report_load`: a synthetic experiment with {res['metrics']} metrics × "
        f"{res['variants']} variants × {res['slices']} slice values ({res['scorecard_rows']:,} scorecard rows, "
        f"{res['days']} days of time series), published rows written directly into DuckDB; the page opened "
        f"{t['rounds']} times (after one warm-up) in fresh tabs of one headless {t['chromium']} with the network "
        "cut. Load: navigation start to the end of the `load` event (HTML parsed, every inline SVG laid out); "
        "FCP: first contentful paint; wall: the driver's navigate command to the load event. Targets: load "
        "< 2 s, page < 3 MB.\n",
        "| run | code | page | charts | build (wn report) | load median [max] | FCP median | wall median | machine |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
        f"| {res['label']} | {res['code']} | {size / 2**20:.2f} MiB ({size:,} B) {'✅' if size < 3 * 2**20 else '❌'} | "
        f"{t['charts']} | {res['build_s']:.1f} s | {t['median_load_ms']:.0f} ms [{t['max_load_ms']:.0f}] "
        f"{'✅' if t['median_load_ms'] < 2000 else '❌'} | {t['median_fcp_ms']:.0f} ms | {t['median_wall_ms']:.0f} ms | "
        f"{m['cores']} cores, {m['cpu']}, load avg {m['loadavg_before'][0]:.1f} |",
        ""])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics", type=int, default=30)
    ap.add_argument("--variants", type=int, default=4)
    ap.add_argument("--slices", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--label", default="report_30m_4v_20s")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()
    if not find_chromium():
        sys.exit("no chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="wn-report-bench-") as tmp:
        if os.environ.get("WN_BENCH_KEEP"):
            tmp = os.environ["WN_BENCH_KEEP"]
        root = Path(tmp)
        metrics, variants = write_project(root, args.metrics, args.variants)
        n_rows = write_warehouse(root / "bench.duckdb", metrics, variants, args.slices)
        started = time.perf_counter()
        try:
            wn_main(["report", "-e", "bench", "--project-dir", str(root), "--as-of", "2026-09-30"])
        except SystemExit as exc:
            if exc.code:
                raise
        build = time.perf_counter() - started
        page = root / "target" / "report" / "bench.html"
        res = {"label": args.label, "metrics": args.metrics, "variants": args.variants, "slices": args.slices,
               "days": 28, "scorecard_rows": n_rows, "page_bytes": page.stat().st_size, "build_s": build,
               "machine": machine(), "measured_at": dt.datetime.now().isoformat(timespec="seconds"),
               "code": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                      cwd=REPO).stdout.strip()}
        res["timing"] = time_loads(page, args.rounds)
    section = render_section(res)
    print(section)
    if not args.no_write:
        put_section("report_load", SECTION, section, res)


if __name__ == "__main__":
    main()
