"""Start-up of the ``wn`` command: wall time of ``wn --help``, ``wn validate``, ``wn compile`` and
the overhead of ``wn run`` before its first SQL statement, for two versions of the code.

    .venv/bin/python -m benchmarks.startup --before <rev> [--after HEAD|worktree|<rev>] [--rounds 10]

Each version is exported into a temp folder (``git archive`` of ``warehouse_native/`` and the demo
project: ``profiles.yml``, ``metrics/``, ``experiments/``, ``models/``; ``worktree`` copies the
files as they are now) and run by this venv's Python with ``PYTHONPATH`` set to that folder, as
the ``wn`` console script does (``from warehouse_native.cli.main import main``), in a fresh
interpreter each time. Per command: one warm-up run per version (writes the ``.pyc`` files), then
``--rounds`` rounds, the versions alternating so both see the same load; the median wall time
(and median CPU time, user + system, of the child) is reported.

``wn run`` start-up: the child installs an import hook that wraps the SQL methods of
``DuckDBAdapter`` (``execute``, ``fetch``, ``table_columns``, ...) when wn imports the DuckDB
adapter (nothing is imported ahead of wn), and records the wall-clock time of the run's first
call of any of them; the overhead is that time minus the time just before
the parent started the child (interpreter start, imports, project loading, connecting). The
demo warehouse is seeded once per version (``wn seed``, default size).

The import breakdown: ``python -X importtime`` of each command (median of 3 runs per module),
summed per top-level package: *self* (the package's own modules, exclusive: the column adds up
to the total) and *cumulative* (the imports of the package entered from outside it, including
what the package imports in turn).
For ``wn run`` only the imports before the first SQL statement count.

Writes ``benchmarks/startup.json``, ``benchmarks/startup.md`` and the "Start-up" section of
``benchmarks/RESULTS.md`` (``python -m benchmarks.report`` keeps it). Nothing in
``warehouse_native/`` depends on this file.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from .report import put_section

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SECTION = "## Start-up (`benchmarks/startup.py`)"
PROJECT_FILES = ("warehouse_native", "profiles.yml", "metrics", "experiments", "models")
EXPERIMENT, AS_OF = "button_color_v3", "2026-11-01"
COMMANDS = {  # label -> wn arguments
    "wn --help": ["--help"],
    "wn validate": ["validate"],
    "wn compile": ["compile"],
}
TARGETS = {"wn --help": 0.4, "wn validate": 0.4, "wn run (to 1st SQL)": 0.5}

# the console script's body: what `.venv/bin/wn` runs
ENTRY = "import sys; from warehouse_native.cli.main import main; sys.argv[0] = 'wn'; sys.exit(main())"

# `wn run`, recording the time of the run's first SQL statement (and the modules imported by then);
# an import hook patches the DuckDB adapter when wn imports it, so nothing is imported ahead of wn
RUN_PROBE = r"""
import importlib.util, json, os, sys, time
OUT = os.environ["WN_STARTUP_PROBE"]

def _first_sql(method):
    name = method.__name__
    def first(self, *args, **kwargs):
        if not os.path.exists(OUT):
            now = time.time()
            sys.stderr.write("@@FIRST_SQL@@\n")
            sys.stderr.flush()
            with open(OUT, "w") as f:
                json.dump({"first_sql": now, "method": name, "modules": sorted(sys.modules)}, f)
        return method(self, *args, **kwargs)
    return first

def _patch(cls):   # every adapter method that sends SQL
    for name in ("execute", "fetch", "table_columns", "relations", "begin"):
        if hasattr(cls, name):
            setattr(cls, name, _first_sql(getattr(cls, name)))

class _Hook:
    def find_spec(self, name, path=None, target=None):
        if name != "warehouse_native.warehouse.duckdb_adapter":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module
        def patched(module):
            exec_module(module)
            _patch(module.DuckDBAdapter)
        spec.loader.exec_module = patched
        return spec

sys.meta_path.insert(0, _Hook())
sys.argv = ["wn"] + sys.argv[1:]
from warehouse_native.cli.main import main
main()
"""


# -- code versions ------------------------------------------------------------------------------

def export(rev: str, dest: Path) -> str:
    """Put ``warehouse_native/`` and the demo project of ``rev`` (or the work tree) into ``dest``."""
    dest.mkdir(parents=True)
    if rev == "worktree":
        for name in PROJECT_FILES:
            src = REPO / name
            if src.is_dir():
                shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(src, dest / name)
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "warehouse_native")
        return head + ("+uncommitted" if dirty else "")
    data = subprocess.run(["git", "archive", "--format=tar", rev, *PROJECT_FILES], cwd=REPO, check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return git("rev-parse", "--short", rev)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


def child_env(code: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WN_", "PYTHON"))}
    env.update(PYTHONPATH=str(code), COLUMNS="120", **extra)
    return env


def run(code: Path, argv: list[str], *, env: dict[str, str] | None = None, check: bool = True
        ) -> tuple[float, float, subprocess.CompletedProcess]:
    """One fresh interpreter: (wall s, child CPU s, result)."""
    if env and "WN_STARTUP_PROBE" in env:   # the probe records the first SQL call of this process
        Path(env["WN_STARTUP_PROBE"]).unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, *argv], cwd=code, env=env or child_env(code), capture_output=True,
                         text=True, timeout=600)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if check and out.returncode != 0:
        raise SystemExit(f"{argv} failed in {code} ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), out


def wn(code: Path, args: list[str]) -> tuple[float, float]:
    wall, cpu, _ = run(code, ["-c", ENTRY, *args])
    return wall, cpu


def run_startup(code: Path, probe: Path) -> tuple[float, float, float]:
    """``wn run``: (s from start to the first SQL statement, wall s of the whole run, CPU s)."""
    env = child_env(code, WN_STARTUP_PROBE=str(probe))
    probe.unlink(missing_ok=True)
    start = time.time()
    wall, cpu, _ = run(code, ["-c", RUN_PROBE, "run", "-e", EXPERIMENT, "--as-of", AS_OF], env=env)
    return json.loads(probe.read_text())["first_sql"] - start, wall, cpu


# -- import breakdown ---------------------------------------------------------------------------

LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


def importtime(code: Path, argv: list[str], env: dict[str, str]) -> list[tuple[str, int, int, int]]:
    """(module, depth, self µs, cumulative µs) in -X importtime's order (a module after the modules
    it imported); for `wn run` up to the first SQL statement."""
    _, _, out = run(code, ["-X", "importtime", *argv], env=env)
    rows = []
    for line in out.stderr.splitlines():
        if line.startswith("@@FIRST_SQL@@"):
            break
        m = LINE.match(line)
        if m:
            rows.append((m.group(4), len(m.group(3)) // 2, int(m.group(1)), int(m.group(2))))
    return rows


def by_package(rows: list[tuple[str, int, int, int]]) -> tuple[dict[str, int], dict[str, int]]:
    """Per top-level package: its modules' self µs summed, and the cumulative µs of its imports
    entered from outside it (each includes what the package imports in turn)."""
    self_us: dict[str, int] = {}
    cum_us: dict[str, int] = {}
    parent_at: dict[int, str] = {}   # walking backwards, a module's importer is met before it
    for name, depth, self_t, cum_t in reversed(rows):
        top = name.split(".")[0]
        parent = parent_at.get(depth - 1) if depth else None
        parent_at[depth] = name
        self_us[top] = self_us.get(top, 0) + self_t
        if parent is None or parent.split(".")[0] != top:
            cum_us[top] = cum_us.get(top, 0) + cum_t
    return self_us, cum_us


def breakdown(samples: list[list[tuple[str, int, int, int]]]) -> dict[str, Any]:
    """The per-package import times, medians over the samples."""
    per_run = [by_package(rows) for rows in samples]
    tops = {t for s, _ in per_run for t in s}
    med = lambda vals: int(statistics.median(vals))  # noqa: E731
    packages = {t: {"self_us": med([s.get(t, 0) for s, _ in per_run]),
                    "cumulative_us": med([c.get(t, 0) for _, c in per_run])} for t in tops}
    return {"total_us": med([sum(r[2] for r in rows) for rows in samples]),
            "modules": med([len(rows) for rows in samples]),
            "packages": dict(sorted(packages.items(), key=lambda kv: -kv[1]["self_us"]))}


FORBIDDEN = ("duckdb", "scipy", "numpy", "pyspark", "psycopg", "altair", "warehouse_native.stats",
             "warehouse_native.results", "warehouse_native.runner")


def imported(rows: list[tuple[str, int, int, int]], names: tuple[str, ...] = FORBIDDEN) -> list[str]:
    found = {r[0] for r in rows}
    return [x for x in names if any(m == x or m.startswith(x + ".") for m in found)]


# -- the benchmark -------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def other_benchmarks() -> list[str]:
    out = subprocess.run(["pgrep", "-af", "benchmarks"], capture_output=True, text=True).stdout.splitlines()
    mine = {str(os.getpid()), str(os.getppid())}
    return [ln for ln in out if ln.split()[0] not in mine and "pgrep" not in ln]


def measure(versions: dict[str, tuple[Path, str]], rounds: int, breakdown_runs: int) -> dict[str, Any]:
    res: dict[str, Any] = {"versions": {v: {"code": c} for v, (_, c) in versions.items()}}
    for name, (code, _) in versions.items():   # seed each version's demo warehouse with its own code
        print(f"[{name}] seeding the demo warehouse", flush=True)
        wn(code, ["seed"])
    cases = list(COMMANDS) + ["wn run (to 1st SQL)"]
    samples: dict[str, dict[str, dict[str, list[float]]]] = {v: {c: {"wall": [], "cpu": [], "run_wall": []}
                                                                 for c in cases} for v in versions}
    order = list(versions)
    for r in range(-1, rounds):   # round -1: warm-up, not counted
        for case in cases:
            for name in (order if r % 2 else order[::-1]):
                code = versions[name][0]
                if case in COMMANDS:
                    wall, cpu = wn(code, COMMANDS[case])
                    run_wall = 0.0
                else:
                    wall, run_wall, cpu = run_startup(code, code / "probe.json")
                if r >= 0:
                    s = samples[name][case]
                    s["wall"].append(wall)
                    s["cpu"].append(cpu)
                    s["run_wall"].append(run_wall)
        print(f"round {r + 1}/{rounds} done, load {os.getloadavg()[0]:.2f}", flush=True)
    for name, (code, _) in versions.items():
        out = res["versions"][name]
        out["times"] = {case: {"median_s": statistics.median(s["wall"]), "min_s": min(s["wall"]),
                               "max_s": max(s["wall"]), "median_cpu_s": statistics.median(s["cpu"]),
                               "walls": [round(x, 4) for x in s["wall"]],
                               **({"median_run_s": statistics.median(s["run_wall"])}
                                  if case not in COMMANDS else {})}
                        for case, s in samples[name].items()}
        out["imports"] = {}
        for case in cases:
            if case in COMMANDS:
                argv, env = ["-c", ENTRY, *COMMANDS[case]], child_env(code)
            else:
                argv = ["-c", RUN_PROBE, "run", "-e", EXPERIMENT, "--as-of", AS_OF]
                env = child_env(code, WN_STARTUP_PROBE=str(code / "probe.json"))
            rows = [importtime(code, argv, env) for _ in range(breakdown_runs)]
            out["imports"][case] = {**breakdown(rows), "heavy_imported": imported(rows[0])}
    return res


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    names = list(res["versions"])
    cases = list(COMMANDS) + ["wn run (to 1st SQL)"]
    load = ", ".join(f"{x:.2f}" for x in res["loadavg_before"])
    load_after = ", ".join(f"{x:.2f}" for x in res["loadavg_after"])
    out = [SECTION, "",
           f"`python -m benchmarks.startup --before {res['versions'][names[0]]['code']}`: each command in a fresh "
           "interpreter on the demo project (a temp copy), as the `wn` console script runs it; "
           f"{res['rounds']} rounds after one warm-up, the two versions alternating; median wall time [median CPU "
           "time of the process]. `wn run (to 1st SQL)`: from just before the process starts to the run's first "
           "SQL statement (the first call of a `DuckDBAdapter` method that sends SQL, wrapped by an import hook in the "
           "benchmark), "
           f"`wn run -e {EXPERIMENT}` (incremental, the default) on the seeded demo warehouse (DuckDB; in brackets the "
           f"whole run's wall time). Machine: {m['cores']} cores, "
           f"{m['cpu']}, Python {m['python']}; load average {load} before, {load_after} after "
           f"({res['load_note']}). Targets: `wn --help` and `wn validate` ≤ 0.4 s, `wn run` start-up ≤ 0.5 s.",
           "",
           "| command | " + " | ".join(f"{n} ({res['versions'][n]['code']})" for n in names) + " | target |",
           "|---|" + "---:|" * len(names) + "---|"]
    for case in cases:
        cells = []
        for n in names:
            t = res["versions"][n]["times"][case]
            cells.append(f"{t['median_s']:.3f} s [{t['median_cpu_s']:.3f}]" if case in COMMANDS
                         else f"{t['median_s']:.3f} s (whole run {t['median_run_s']:.2f} s)")
        target = TARGETS.get(case)
        last = res["versions"][names[-1]]["times"][case]["median_s"]
        mark = "" if target is None else f"≤ {target} s {'✅' if last <= target else '❌'}"
        out.append(f"| `{case}` | " + " | ".join(cells) + f" | {mark} |")
    out += ["", "Heavy modules imported (of duckdb, scipy, numpy, pyspark, psycopg, altair, "
            "`warehouse_native.stats`, `.results`, `.runner`; for `wn run`: before the first SQL statement):", ""]
    out += ["| command | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for case in cases:
        out.append(f"| `{case}` | " + " | ".join(
            ", ".join(res["versions"][n]["imports"][case]["heavy_imported"]) or "none" for n in names) + " |")
    out += ["", "Import time per top-level package (`-X importtime`, median of "
            f"{res['breakdown_runs']} runs, ms): self = the package's own modules (the column adds up to the "
            "total), cum. = its imports entered from other packages, including what it imports in turn; the 8 "
            "largest by self time, per "
            "command and version.", ""]
    for case in cases:
        out.append(f"**`{case}`**: " + "; ".join(
            f"{n}: {res['versions'][n]['imports'][case]['total_us'] / 1000:.0f} ms in "
            f"{res['versions'][n]['imports'][case]['modules']} modules" for n in names))
        out.append("")
        out.append("| " + " | ".join(f"{n}: package | self | cum." for n in names) + " |")
        out.append("|" + "---|---:|---:|" * len(names))
        tops = [list(res["versions"][n]["imports"][case]["packages"].items())[:8] for n in names]
        for i in range(max(len(t) for t in tops)):
            cells = []
            for t in tops:
                if i < len(t):
                    pkg, v = t[i]
                    cells.append(f"{pkg} | {v['self_us'] / 1000:.0f} | {v['cumulative_us'] / 1000:.0f}")
                else:
                    cells.append(" | | ")
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="revision of the baseline (e.g. the commit before a change)")
    ap.add_argument("--after", default="HEAD", help="revision to compare, or 'worktree' (default: HEAD)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--breakdown-runs", type=int, default=3)
    ap.add_argument("--load-note", default="other sessions' work on the machine",
                    help="what else ran on the machine, for the report")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()
    others = other_benchmarks()
    if others:
        print("other benchmark processes are running:\n  " + "\n  ".join(others), file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="wn-startup-") as tmp:
        versions = {}
        for name, rev in (("before", args.before), ("after", args.after)):
            code = Path(tmp) / name
            versions[name] = (code, export(rev, code))
            where = run(code, ["-c", "import warehouse_native; print(warehouse_native.__file__)"])[2].stdout.strip()
            assert where.startswith(str(code)), f"{name} imports wn from {where}, not {code}"
        res = {"machine": machine(), "loadavg_before": os.getloadavg(), "rounds": args.rounds,
               "breakdown_runs": args.breakdown_runs, "load_note": args.load_note,
               "other_benchmarks": others}
        res.update(measure(versions, args.rounds, args.breakdown_runs))
        res["loadavg_after"] = os.getloadavg()
    section = render(res)
    print(section)
    if not args.no_write:
        put_section("startup", SECTION, section, res)


if __name__ == "__main__":
    main()
