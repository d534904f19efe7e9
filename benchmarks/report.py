"""Render benchmarks/RESULTS.md from every benchmarks/results/*.json (one per run/size).

    python -m benchmarks.report        # re-render without running anything
"""

from __future__ import annotations

import json
from pathlib import Path

import os

HERE = Path(os.environ.get("WN_BENCH_HOME") or Path(__file__).resolve().parent)
TARGET_REF = 1.3      # wn full <= 1.3 x reference
TARGET_PM = 3.0       # one-query-per-metric >= 3 x wn full
TARGET_AUTO = 1.10    # auto within 10% of the best fixed strategy
TARGET_INCR = 0.2     # incremental after one new day <= 0.2 x full refresh

CASE_NAMES = {
    "auto": "(a) wn full run, strategy auto",
    "ref": "(c) single-pass SQL reference, bucketed shape",
    "ref_plain": "(c') single-pass SQL reference, plain shape (one FILTER aggregate per unit column on the joined rows)",
    "ref_coded": "(c'') reference, coded shape (int event code + int time since exposure)",
    "pm": "(d) one query per metric (exposures materialised once, shared)",
    "pm_self": "(d') one query per metric (each recomputes the exposures)",
    "cte": "(e) wn, strategy cte",
    "temp": "(e) wn, strategy temp",
    "refresh": "(b0) wn run --full-refresh (rebuilds the state)",
    "incr": "(b) wn incremental run after one more day (state built the day before)",
    "noop": "floor: python + wn imports + DuckDB connection, `select 1`",
}


def _s(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _x(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}×"


def _ok(value: float | None, target: float, higher_is_better: bool) -> str:
    if value is None:
        return ""
    good = value >= target if higher_is_better else value <= target
    return "✅" if good else "❌"


def _gib(b: int) -> str:
    return f"{b / 2**30:.2f} GiB"


REFS = ("ref", "ref_plain", "ref_coded")


def best_ref(cell: dict) -> tuple[str | None, float | None, float | None]:
    """The fastest reference shape measured in a cell (by median CPU time, which the shared
    machine disturbs less than wall time): (case, median wall s, median CPU s)."""
    med, cpu = cell["median"], cell.get("cpu_median", {})
    present = [c for c in REFS if c in med]
    if not present:
        return None, None, None
    c = min(present, key=lambda c: cpu.get(c, med[c]))
    return c, med[c], cpu.get(c)


def _headline(timing: list[dict]) -> dict | None:
    for cell in timing:
        if cell["metrics"] == 8 and cell["dimension"] == 1:
            return cell
    return timing[0] if timing else None


def _size(res: dict) -> str:
    d = res["data"]
    return (f"{d['users']:,} generated users, **{d['exposed_users']:,} exposed**, "
            f"**{d['events_rows']:,} events**, {d['exposures_rows']:,} exposure rows, "
            f"{d['days']} days, scale {d['scale']:g}; DuckDB file {_gib(d['file_bytes'])} "
            f"({_gib(res.get('file_bytes_after_runs', d['file_bytes']))} after the runs)")


def render_one(res: dict) -> str:
    out: list[str] = []
    m, st = res["machine"], res["settings"]
    out.append(f"## {res['label']}\n")
    out.append(f"- data: {_size(res)}")
    out.append(f"- profile: `threads: {st['threads']}`, `memory_limit: {st['memory_limit']}`; "
               f"{st['repeats']} timed repeats after 1 warm-up, median reported")
    out.append(f"- machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM; Python {m['python']}, "
               f"DuckDB {m['duckdb']}, sqlglot {m['sqlglot']}")
    code = res.get("code") or {}
    if code:
        what = (f"git {code.get('rev')} ({code.get('subject')})" if code.get("code") != "worktree"
                else f"work tree at HEAD {code.get('head')} ({code.get('subject')})"
                + (f", uncommitted changes in {', '.join(code.get('dirty') or [])}" if code.get("dirty") else ", clean"))
        out.append(f"- code under test: {what}")
    sec = res["seconds"]
    out.append(f"- wall time: data {sec['data']:.0f}s (generated or reused), timing pass "
               f"{sec['timing_pass']:.0f}s, memory pass {sec['memory_pass']:.0f}s, total {sec['total']:.0f}s; "
               f"load average at the end {', '.join(f'{x:.1f}' for x in res['load_avg_end'])}")
    out.append(f"- started {res['started_at']}; reproduce: `{res['command']}`\n")

    timing = res["timing"]
    head = _headline(timing)
    if head:
        med = head["median"]
        cmed = head.get("cpu_median", {})
        ref_case, ref, cref = best_ref(head)
        auto, cauto = med.get("auto"), cmed.get("auto")

        def ratio(a, b):
            return a / b if (a is not None and b) else None

        def row(c, label_ratio, r, cr, target=""):
            runs = ", ".join(f"{t:.2f}" for t in head["times"][c])
            return (f"| {CASE_NAMES.get(c, c)} | {_s(med[c])} | {runs} | {_s(cmed.get(c))} "
                    f"| {label_ratio} {_x(r)} | {_x(cr)} | {target} |")

        out.append(f"### Headline: {head['metrics']} metrics, {head['dimension']} dimension\n")
        out.append("| case | median wall s | runs (s) | median CPU s | ratio (wall) | ratio (CPU) | target |")
        out.append("|---|---:|---|---:|---:|---:|---|")
        if auto is not None:
            r, cr = ratio(auto, ref), ratio(cauto, cref)
            out.append(row("auto", "wn / ref =", r, cr,
                           f"≤ {TARGET_REF}× wall {_ok(r, TARGET_REF, False)} CPU {_ok(cr, TARGET_REF, False)}"))
        if "incr" in med:
            if "refresh" in med:
                out.append(row("refresh", "vs wn stateless =", ratio(med["refresh"], auto),
                               ratio(cmed.get("refresh"), cauto)))
                r, cr = ratio(med["incr"], med["refresh"]), ratio(cmed.get("incr"), cmed.get("refresh"))
                out.append(row("incr", "incr / refresh =", r, cr,
                               f"≤ {TARGET_INCR}× wall {_ok(r, TARGET_INCR, False)} CPU {_ok(cr, TARGET_INCR, False)}"))
            else:
                out.append(row("incr", "vs wn stateless =", ratio(med["incr"], auto), ratio(cmed.get("incr"), cauto)))
        else:
            out.append("| (b) wn incremental run | – | – | – | **TODO: not implemented yet** (not measured in this run) | – | – |")
        for c in REFS:
            if c in med:
                out.append(row(c, "vs fastest reference =", ratio(med[c], ref), ratio(cmed.get(c), cref),
                               "**baseline** (fastest shape)" if c == ref_case else ""))
        for c in ("pm", "pm_self"):
            if c in med:
                r, cr = ratio(med[c], auto), ratio(cmed.get(c), cauto)
                out.append(row(c, "per-metric / wn =", r, cr,
                               f"≥ {TARGET_PM}× wall {_ok(r, TARGET_PM, True)} CPU {_ok(cr, TARGET_PM, True)}"))
        for c in ("cte", "temp"):
            if c in med:
                out.append(row(c, "vs auto =", ratio(med[c], auto), ratio(cmed.get(c), cauto)))
        out.append("")

        out.append("### (e) Strategies × metrics × dimension (median wall seconds; CPU-time ratios in brackets)\n")
        cols = ["cte", "temp", "auto"]
        out.append("| metrics | dim | cte | temp | auto | auto / best fixed | fastest ref (shape) | wn auto / ref | per-metric | per-metric / wn auto | checks |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for cell in timing:
            md, cm = cell["median"], cell.get("cpu_median", {})

            def best_ratio(m):
                fixed = [m[c] for c in ("cte", "temp") if c in m]
                return ratio(m.get("auto"), min(fixed)) if fixed else None

            ra, cra = best_ratio(md), best_ratio(cm) if cm else None
            rc, rwall, rcpu = best_ref(cell)
            rr, crr = ratio(md.get("auto"), rwall), ratio(cm.get("auto"), rcpu)
            rp, crp = ratio(md.get("pm"), md.get("auto")), ratio(cm.get("pm"), cm.get("auto"))
            checks = "; ".join(f"{k}: {v.split(':')[0]}" for k, v in cell.get("checks", {}).items())
            out.append(f"| {cell['metrics']} | {cell['dimension']} | " + " | ".join(_s(md.get(c)) for c in cols)
                       + f" | {_x(ra)} {_ok(ra, TARGET_AUTO, False)} [{_x(cra)}] | {_s(rwall)} {'(' + rc + ')' if rc else ''} "
                       f"| {_x(rr)} {_ok(rr, TARGET_REF, False)} [{_x(crr)}] | {_s(md.get('pm'))} "
                       f"| {_x(rp)} {_ok(rp, TARGET_PM, True)} [{_x(crp)}] | {checks} |")
        out.append("\n`checks`: before timing, the reference and per-metric numbers (and incremental runs') were "
                   "compared with the aggregates wn computed for the same cell (every n / sum / sum_sq / CUPED / "
                   "ratio moment, relative 1e-9). CPU time = user + system time of the benchmark process "
                   "(all DuckDB threads) during the case: less sensitive than wall time to other work on a "
                   "shared machine, and what a warehouse bills for.\n")

        out.append(f"### Where wn's time goes ({head['metrics']} metrics, {head['dimension']} dimension; median s per step)\n")
        strategies = [c for c in ("cte", "temp", "auto", "refresh", "incr") if c in head["steps"]]
        steps: list[str] = []
        for c in strategies:
            for k in head["steps"][c]:
                if k not in steps:
                    steps.append(k)
        out.append("| step | " + " | ".join(strategies) + " |")
        out.append("|---|" + "---:|" * len(strategies))
        for k in steps:
            out.append(f"| {k} | " + " | ".join(_s(head["steps"][c].get(k)) for c in strategies) + " |")
        out.append("| **wall (median of runs)** | " + " | ".join(_s(head["median"][c]) for c in strategies) + " |")
        out.append("")
        if len(timing) > 1:
            out.append("Per step, strategy auto, every cell (median s):\n")
            keys: list[str] = []
            for cell in timing:
                for k in cell["steps"].get("auto", {}):
                    if k not in keys:
                        keys.append(k)
            out.append("| metrics | dim | " + " | ".join(keys) + " |")
            out.append("|---:|---:|" + "---:|" * len(keys))
            for cell in timing:
                stp = cell["steps"].get("auto", {})
                out.append(f"| {cell['metrics']} | {cell['dimension']} | " + " | ".join(_s(stp.get(k)) for k in keys) + " |")
            out.append("")

    week = res.get("week")
    if week:
        runs, ref = week["runs"], week["refresh"]
        out.append(f"### A week of daily incremental runs ({week['metrics']} metrics, {week['dimension']} dimension)\n")
        out.append("A full refresh 8 days before the last day, then one incremental run per day (default lookback 2); "
                   "each run's time against a full refresh as of the last day "
                   f"({ref['seconds']:.2f} s wall, {ref['cpu']:.2f} s CPU).\n")
        out.append("| as of | wall s | CPU s | / refresh (wall) | / refresh (CPU) | re-sealed |")
        out.append("|---|---:|---:|---:|---:|---|")
        for r in runs:
            out.append(f"| {r['as_of']} | {r['seconds']:.2f} | {r['cpu']:.2f} | {r['seconds'] / ref['seconds']:.2f}× "
                       f"| {r['cpu'] / ref['cpu']:.2f}× | {'yes' if r['resealed'] else ''} |")
        mw = sum(r["seconds"] for r in runs) / len(runs)
        mc = sum(r["cpu"] for r in runs) / len(runs)
        out.append(f"| **mean** | {mw:.2f} | {mc:.2f} | **{mw / ref['seconds']:.2f}×** | **{mc / ref['cpu']:.2f}×** | |")
        out.append("")

    if res["memory"]:
        out.append("### Peak memory (each case once in a fresh child process)\n")
        out.append("| case | cell | status | case time s | peak RSS MiB |")
        out.append("|---|---|---|---:|---:|")
        for r in res["memory"]:
            status = r.get("status")
            if r.get("error"):
                status = f"{status}: {r['error'][:200]}"
            out.append(f"| {CASE_NAMES.get(r['case'], r['case'])} | {r['metrics']} m, {r['dimension']} d | {status} "
                       f"| {_s(r.get('seconds'))} | {r['peak_rss_mib']:,.0f} |")
        out.append("")
    return "\n".join(out)


def summary(results: list[dict]) -> str:
    rows = ["| run | code | exposed users | events | wn auto s | fastest ref s | wn / ref [CPU] | per-metric / wn [CPU] | worst auto / best fixed [CPU] | incr / refresh [CPU] | wn peak RSS MiB |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for res in results:
        head = _headline(res["timing"])
        auto = ref = None
        cells = ["–"] * 4
        if head:
            med, cm = head["median"], head.get("cpu_median", {})
            auto = med.get("auto")
            _rc, ref, cref = best_ref(head)
            pmc = "pm" if "pm" in med else ("pm_self" if "pm_self" in med else None)

            def r(a, b):
                return a / b if (a and b) else None

            cells[0] = f"{_x(r(auto, ref))} [{_x(r(cm.get('auto'), cref))}]"
            if pmc:
                cells[1] = (f"{_x(r(med[pmc], auto))} [{_x(r(cm.get(pmc), cm.get('auto')))}]"
                            + (" (d')" if pmc == "pm_self" else ""))
            worst_w = worst_c = None
            for cell in res["timing"]:
                for key, store in (("median", "w"), ("cpu_median", "c")):
                    m = cell.get(key, {})
                    fixed = [m[c] for c in ("cte", "temp") if c in m]
                    if fixed and m.get("auto"):
                        v = m["auto"] / min(fixed)
                        if store == "w":
                            worst_w = v if worst_w is None else max(worst_w, v)
                        else:
                            worst_c = v if worst_c is None else max(worst_c, v)
            if worst_w is not None:
                cells[2] = f"{_x(worst_w)} [{_x(worst_c)}]"
            if med.get("incr") and med.get("refresh"):
                cells[3] = f"{_x(r(med['incr'], med['refresh']))} [{_x(r(cm.get('incr'), cm.get('refresh')))}]"
        rss = [r_["peak_rss_mib"] for r_ in res["memory"] if r_["case"] == "auto"]
        status = [r_.get("status") for r_ in res["memory"] if r_["case"] == "auto"]
        rss_s = (f"{max(rss):,.0f}" + ("" if all(s_ == "success" for s_ in status) else f" ({status[0]})")) if rss else "–"
        d = res["data"]
        code = (res.get("code") or {}).get("rev") or (res.get("code") or {}).get("head") or "?"
        rows.append(f"| {res['label']} | {code} | {d['exposed_users']:,} | {d['events_rows']:,} | {_s(auto)} | {_s(ref)} | "
                    f"{cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} | {rss_s} |")
    return "\n".join(rows)


def render_postgres(runs: list[dict]) -> str:
    """The PostgreSQL cell (``benchmarks/postgres_cell.py``): wall times only."""
    out = ["## PostgreSQL: the headline cell where scans are not pushed down\n",
           "`python -m benchmarks.postgres_cell`: the same raw tables copied into PostgreSQL (heap "
           "tables, no indexes), 8 metrics and 1 dimension, one connection; wall-clock medians (the work "
           "runs in server processes, so no CPU column).\n",
           "| run | exposure rows | events | PostgreSQL | wn auto s | reference (plain) s | per-metric s | "
           "per-metric, own exposures s | wn / ref | per-metric / wn | per-metric (own exposures) / wn | checks |",
           "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in runs:
        m, q = r["median"], r["ratios"]
        ok = "; ".join(f"{k}: {v}" for k, v in r["checks"].items())
        out.append(f"| {r['label']} | {r['rows']['exposures']:,} | {r['rows']['events']:,} | "
                   f"{r['engine']['server_version'].split()[0]}, work_mem {r['engine']['work_mem']} | "
                   f"{_s(m['auto'])} | {_s(m['ref_plain'])} | {_s(m['pm'])} | {_s(m['pm_self'])} | "
                   f"{_x(q['wn / ref_plain'])} | {_x(q['pm / wn'])} {_ok(q['pm / wn'], TARGET_PM, True)} | "
                   f"{_x(q['pm_self / wn'])} {_ok(q['pm_self / wn'], TARGET_PM, True)} | {ok} |")
    return "\n".join(out) + "\n"


TARGET_MATRIX = {"stateless/ref": 1.2, "refresh/ref": 1.4, "incr/refresh": 0.2}


def _mib(x) -> str:
    return "–" if x is None else f"{x:,.0f}"


def _scan_cell(s: dict | None) -> str:
    if not s:
        return "–"
    return f"{s['scans']} / {s['rows_scanned']:,} / {s['rows_out']:,}"


def render_matrix(runs: list[dict]) -> str:
    """The benchmark matrix (``benchmarks/matrix.py``, issue 10): one table row per cell."""
    runs = sorted(runs, key=lambda r: r["started_at"], reverse=True)   # newest first, then complete
    runs = sorted(runs, key=lambda r: (r["settings"].get("quick", False), r.get("partial", False)))   # full-size runs first
    out = ["## Matrix: wn against the hand-written single pass, cell by cell (`benchmarks/matrix.py`)\n",
           "Issue 10's targets, at 1M exposed users / 20M+ events on 2 cores: wn stateless ≤ "
           f"{TARGET_MATRIX['stateless/ref']}× the hand-written single pass in every cell, wn full refresh ≤ "
           f"{TARGET_MATRIX['refresh/ref']}× the same reference, the incremental run after one new day on a "
           f"28-day history ≤ {TARGET_MATRIX['incr/refresh']}× a full refresh. Ratios of median wall times "
           "(CPU-time ratios in brackets); `per-metric / stateless` (one query per metric) has no target. "
           "Cells and cases: `benchmarks/README.md`, \"Matrix\". No winsorization or metric windows in any "
           "cell.\n"]
    for res in runs:
        d, m, st = res["data"], res["machine"], res["settings"]
        code = res.get("code") or {}
        what = (f"git {code.get('rev')}" if code.get("code") not in (None, "worktree")
                else f"work tree at HEAD {code.get('head')}"
                + (f" + uncommitted changes in {', '.join(code.get('dirty') or [])}" if code.get("dirty") else " (clean)"))
        out.append(f"### {res['label']}{' (partial)' if res.get('partial') else ''}\n")
        out.append(f"- wn code measured: {what} — \"{code.get('subject', '?')}\"")
        out.append(f"- data: {d['users']:,} generated users, **{d['exposed_users']:,} exposed**, "
                   f"**{d['events_rows']:,} events**, {d['days']} days (experiment {d['experiment_start']} to "
                   f"{d['experiment_end']}: a {(_date(d['experiment_end']) - _date(d['experiment_start'])).days + 1}-day "
                   f"history), scale {d['scale']:g}; DuckDB file {_gib(d['file_bytes'])}")
        out.append(f"- machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM; DuckDB {m['duckdb']}, "
                   f"Python {m['python']}; profile `threads: {st['threads']}`, `memory_limit: {st['memory_limit']}`; "
                   f"{st['repeats']} timed round(s) after 1 warm-up, median")
        sec = res.get("seconds", {})
        out.append(f"- started {res['started_at']}, took {sec.get('total', 0) / 60:.0f} min; load average at the end "
                   f"{', '.join(f'{x:.1f}' for x in res['load_avg_end'])}; reproduce: `{res['command']}`\n")
        # runs from the stop that made the unit_metrics view the default also time --unit-metrics table
        table = any("table" in c["median"] for c in res["timing"])
        out.append("| cell | what | ref s | stateless s | refresh s | incr s | per-metric s | stateless / ref ≤ 1.2 "
                   "| refresh / ref ≤ 1.4 | incr / refresh ≤ 0.2 | per-metric / stateless |"
                   + (" table s | table / ref |" if table else "") + " checks | others' cores |")
        out.append("|---|---|---:|---:|---:|---:|---:|---|---|---|---|" + ("---:|---|" if table else "") + "---|---:|")
        worst: dict[str, float] = {}
        for cell in res["timing"]:
            med, r, cr = cell["median"], cell["ratios"], cell["cpu_ratios"]

            def rat(key, target=None):
                v = r.get(key)
                if v is None:
                    return "–"
                if target is not None:
                    worst[key] = max(worst.get(key, 0.0), v)
                mark = f" {_ok(v, target, False)}" if target else ""
                return f"{_x(v)}{mark} [{_x(cr.get(key))}]"

            ref = cell.get("ref_case")
            bad = [k for k, v in cell["checks"].items() if not v.startswith("ok")]
            checks = "all equal" if not bad else "MISMATCH: " + ", ".join(bad)
            out.append(f"| `{cell['cell']}` | {cell['what']} ({cell['describe']}) | {_s(med.get(ref))}"
                       f"{' (' + ref + ')' if ref and ref != 'ref' else ''} | {_s(med.get('stateless'))} "
                       f"| {_s(med.get('refresh'))} | {_s(med.get('incr'))} | {_s(med.get('per_metric'))} | "
                       + " | ".join(rat(k, TARGET_MATRIX.get(k)) for k in
                                    ("stateless/ref", "refresh/ref", "incr/refresh", "per_metric/stateless"))
                       + (f" | {_s(med.get('table'))} | {rat('table/ref')}" if table else "")
                       + f" | {checks} | {_others(cell)} |")
        if worst:
            out.append("| **worst cell** | | | | | | | " + " | ".join(
                f"**{_x(worst[k])}** {_ok(worst[k], TARGET_MATRIX[k], False)}" if k in worst else "–"
                for k in ("stateless/ref", "refresh/ref", "incr/refresh")) + " | | | |" + (" | |" if table else ""))
        out.append("\n`checks`: before timing, every number of the reference, the per-metric queries, the full "
                   "refresh and the incremental run was compared with wn's stateless `metric_aggregates` for the "
                   "same cell (relative 1e-9). `others' cores`: CPU used by other processes during the timed "
                   "cases (`/proc/stat` minus this process; median, max), each case having waited until "
                   "others used < 0.3 cores (at most 20 min).\n")

        scans = [c for c in res["timing"] if c.get("scans")]
        if scans:
            out.append("**Source scans** (DuckDB JSON profiling of one untimed run each; table scans of the raw "
                       "tables: scans / rows scanned / rows out of the scans after pushed-down filters):\n")
            out.append("| cell | wn stateless | one query per metric | reference | per-metric / wn rows scanned "
                       "| per-metric / stateless wall |")
            out.append("|---|---:|---:|---:|---:|---:|")
            for cell in scans:
                sc = cell["scans"]
                w, p = sc.get("stateless"), sc.get("per_metric")
                rr = _x(p["rows_scanned"] / w["rows_scanned"]) if (w and p and w["rows_scanned"]) else "–"
                out.append(f"| `{cell['cell']}` | {_scan_cell(w)} | {_scan_cell(p)} | {_scan_cell(sc.get('ref'))} "
                           f"| {rr} | {_x(cell['ratios'].get('per_metric/stateless'))} |")
            out.append("")

        if res.get("memory"):
            cases = [c for c in ("ref", "stateless", "refresh", "incr", "per_metric", "table")
                     if any(r_["case"] == c for r_ in res["memory"])]
            out.append("**Peak RSS** (MiB; each case once in a fresh child process, `VmHWM`):\n")
            out.append("| cell | " + " | ".join(cases) + " |")
            out.append("|---|" + "---:|" * len(cases))
            by = {(r_["cell"], r_["case"]): r_ for r_ in res["memory"]}
            for cell in res["timing"]:
                row = []
                for c in cases:
                    r_ = by.get((cell["cell"], c))
                    if r_ is None:
                        row.append("–")
                    else:
                        ok = r_.get("status") in ("ok", "success")
                        row.append(_mib(r_.get("peak_rss_mib")) + ("" if ok else f" ({r_.get('status')})"))
                out.append(f"| `{cell['cell']}` | " + " | ".join(row) + " |")
            out.append("")

        out.append("**Where wn's time goes** (median s per step; `wn.runs.steps`):\n")
        keys = []
        for cell in res["timing"]:
            for k in cell["steps"].get("stateless", {}):
                if k not in keys and not k.startswith("scan__"):
                    keys.append(k)
        out.append("| cell | stateless: " + " | ".join(keys) + " | refresh: largest steps | incr: largest steps |")
        out.append("|---|" + "---:|" * len(keys) + "---|---|")
        for cell in res["timing"]:
            st_ = cell["steps"]

            def top(case, n=4):
                steps = st_.get(case) or {}
                return ", ".join(f"{k} {v:.2f}" for k, v in sorted(steps.items(), key=lambda kv: -kv[1])[:n]
                                 if v >= 0.005) or "–"

            out.append(f"| `{cell['cell']}` | " + " | ".join(_s(st_.get("stateless", {}).get(k)) for k in keys)
                       + f" | {top('refresh')} | {top('incr')} |")
        out.append("")
    return "\n".join(out) + "\n"


def _others(cell: dict) -> str:
    vals = [v for vs in (cell.get("others_cores") or {}).values() for v in vs]
    if not vals:
        return "–"
    vals.sort()
    return f"{vals[len(vals) // 2]:.2f}, {vals[-1]:.2f}"


def _date(s: str):
    import datetime as dt

    return dt.date.fromisoformat(s)


def render_engines(runs: list[dict]) -> str:
    """``benchmarks/engines_cell.py`` (issue 9): one cell on DuckDB, PostgreSQL and Spark local[2]."""
    out = ["## Engines: the same cell on DuckDB, PostgreSQL and Spark (`benchmarks/engines_cell.py`)\n",
           "wn stateless (strategy auto, 8 metrics, 1 dimension, publishing included) against the "
           "hand-written single pass (`benchmarks/queries.py`, transpiled per engine) on the same data, "
           "engine by engine; median wall seconds of the timed rounds after a warm-up round that also "
           "checked every number of the reference against wn's (relative 1e-9). Compare the ratios, not "
           "the engines: Spark local[2] pays a fixed cost per statement and per job that dominates at this "
           "size, and PostgreSQL reads rows, not columns.\n"]
    for run in runs:
        m = run["machine"]
        out.append(f"### {run['label']}\n")
        out.append(f"- data: {run['rows']['exposures']:,} exposure rows, {run['rows']['events']:,} events; "
                   f"started {run['started_at']}; machine: {m.get('nproc')} cores ({m.get('cpu')}), "
                   f"{m.get('ram_gib')} GiB RAM, Python {m.get('python')}; code: {run.get('code', '–')}\n")
        out.append("| engine | wn s | reference s | wn / reference | rounds | numbers |")
        out.append("|---|---:|---:|---:|---:|---|")
        for engine, r in run["engines"].items():
            med = r["median"]
            out.append(f"| {engine} | {med['wn']:.2f} | {med['reference']:.2f} | {r['wn / reference']:.2f}× | "
                       f"{len(r['times']['wn'])} | {r['check'].split(':')[0]} |")
        out.append("")
    return "\n".join(out) + "\n"


def render(results_dir: Path) -> str:
    results = [json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))
               if not p.name.startswith(("experiments_", "postgres_", "matrix_", "kill_loop", "engines_"))]
    matrix_runs = [json.loads(p.read_text()) for p in sorted(results_dir.glob("matrix_*.json"))]
    pg_runs = [json.loads(p.read_text()) for p in sorted(results_dir.glob("postgres_*.json"))]
    engine_runs = [json.loads(p.read_text()) for p in sorted(results_dir.glob("engines_*.json"))]
    results.sort(key=lambda r: (r["settings"].get("memory_test", False), r["data"]["events_rows"]))
    parts = ["# wn benchmark results\n",
             "Generated by `python -m benchmarks.run_benchmarks` (see `benchmarks/README.md`); "
             "re-render with `python -m benchmarks.report`. Targets: wn full ≤ "
             f"{TARGET_REF}× the single-pass reference, one-query-per-metric ≥ {TARGET_PM}× slower than wn, "
             f"`auto` ≤ {TARGET_AUTO:.2f}× the best fixed strategy in every cell, an incremental run after one "
             f"new day ≤ {TARGET_INCR}× a full refresh.\n",
             "**Method.** Timing: one Python process, one DuckDB connection opened from the generated "
             "profile (threads and memory_limit as listed), the same database file for every case; per cell "
             "each case runs once as warm-up, then the cases run interleaved (rotating order) for the listed "
             "number of rounds; the median is reported and ratios are taken between medians measured in the "
             "same process. wn times are the wall time of `run_experiment` (compile, all SQL steps, "
             "statistics, publish). Peak memory: every case runs once more in a fresh child process "
             "(`python -m benchmarks.run_benchmarks --child ...`); the parent reaps it with `os.wait4()` and "
             "reports the child's peak RSS: `VmHWM` from the child's `/proc/self/status`, read by the child as its "
             "last act (the whole process: Python, wn, DuckDB's buffer pool and result sets). `ru_maxrss` from "
             "`os.wait4`/`RUSAGE_CHILDREN` is recorded too (`wait4_maxrss_mib` in the JSON) but is not used: Linux "
             "carries the high-water mark of the pre-exec image (the forked copy of this large parent) into "
             "`ru_maxrss`, so it reads as the parent's peak for every child. The machine is shared with other sessions' work (see load averages), so "
             "absolute times are noisy; compare ratios within one run.\n",
             "## Summary\n", summary(results),
             "\nwn / ref and per-metric / wn: the headline cell (8 metrics, 1 dimension), against the fastest "
             "reference shape measured in that run (`accept_matrix` measured only the bucketed shape, which "
             "is not the fastest at 8 metrics: see the analysis below). Worst auto / best fixed: over "
             "every cell of the run. Each row names the wn commit it measured; the `s3_` runs measured the current code, the others are kept for the record (the analysis below says what each changed).\n"]
    if matrix_runs:
        parts.append(render_matrix(matrix_runs))
    if pg_runs:
        parts.append(render_postgres(pg_runs))
    if engine_runs:
        parts.append(render_engines(engine_runs))
    for section in ("report_load.md", "startup.md"):   # written by benchmarks/report_load.py, startup.py
        if (HERE / section).exists():
            parts.append((HERE / section).read_text())
    notes = HERE / "notes.md"   # the analysis, newest session first
    if notes.exists():
        parts.append(notes.read_text())
    parts.append("# Run details\n\nEvery run's tables, in the order of the summary.\n")
    parts += [render_one(r) for r in results]
    return "\n".join(parts) + "\n"


def put_section(name: str, title: str, section: str, data: dict) -> None:
    """Write a benchmark's results to ``benchmarks/<name>.json``, its section (headed ``title``) to
    ``benchmarks/<name>.md``, and the section into RESULTS.md in place (before the analysis);
    :func:`render` reads it back from the ``.md`` file."""
    (HERE / f"{name}.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (HERE / f"{name}.md").write_text(section)
    path = HERE / "RESULTS.md"
    text = path.read_text()
    if title in text:
        start = text.index(title)
        end = text.find("\n## ", start + len(title))
        text = text[:start] + section + (text[end:] if end >= 0 else "")
    else:
        anchor = text.find("## Analysis")
        text = text[:anchor] + section + "\n" + text[anchor:] if anchor >= 0 else text + "\n" + section
    path.write_text(text)


if __name__ == "__main__":
    md = render(HERE / "results")
    (HERE / "RESULTS.md").write_text(md)
    print(f"wrote {HERE / 'RESULTS.md'}")
