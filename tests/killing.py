"""``kill -9`` of ``wn run`` at chosen moments, and what must hold afterwards.

Shared by ``tests/test_kills.py`` (a handful of kills in CI) and ``benchmarks/kill_loop.py``
(the long loop).  Each kill:

1. copies every row of the warehouse's ``wn`` schema (the "before" copy);
2. starts ``wn run`` in a process of its own (the real CLI, with a tracer that appends each
   statement it sends to a file) and ``SIGKILL``s it: once it has sent its k-th statement
   (k drawn over a clean run's statements, so kills land in scans, in the publish transaction
   and around its commit) plus a random few milliseconds, or after a random time;
3. checks that the warehouse holds either exactly the "before" copy or (the kill came after
   the commit) the killed run's results, equal to a clean run's, and nothing else;
4. runs ``wn run`` again with the same arguments: it must succeed, equal a clean run (a
   stateless run on a pristine copy of the data) to 1e-9, and leave no staging table behind.

``python tests/killing.py child TRACE ARGS...`` is the child: wn's CLI with the tracer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
EXPERIMENT = "button_color_v3"
SCHEMA = "wn"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
LOCK_TIMEOUT = "\"{{ env_var('WN_LOCK_TIMEOUT', '60') }}\""
# the runs a kill interrupts: (mode flags, as-of); incremental runs move forward day by day and
# are reset by a full refresh, so the state is built, extended, rebuilt and replaced by tables
PLAN: list[tuple[tuple[str, ...], str]] = [
    ((), "2026-10-24"), ((), "2026-10-26"), (("--full-refresh",), "2026-10-27"), ((), "2026-10-29"),
    (("--no-state", "--strategy", "temp"), "2026-10-30"), ((), "2026-10-31"),
    (("--no-state", "--strategy", "cte"), "2026-11-01"), ((), "2026-11-01"),
]


# -- the child -------------------------------------------------------------------------------

def _child(trace: str, argv: list[str]) -> None:
    """wn's CLI, with every statement the adapters send appended to ``trace`` (one line each,
    written straight to the file so that the parent sees it before the statement runs)."""
    from warehouse_native.cli.main import main
    from warehouse_native.warehouse.duckdb_adapter import DuckDBAdapter
    from warehouse_native.warehouse.postgres_adapter import PostgresAdapter

    fd = os.open(trace, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def traced(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            what = " ".join(str(args[0]).split())[:100] if args and isinstance(args[0], str) else ""
            os.write(fd, f"{name} {what}\n".encode())
            return method(self, *args, **kwargs)
        return wrapper

    for cls in (DuckDBAdapter, PostgresAdapter):
        for name in ("execute", "fetch", "begin", "commit", "insert_rows"):
            setattr(cls, name, traced(name, getattr(cls, name)))
    main(argv)


# -- the warehouse under test ------------------------------------------------------------------

@dataclasses.dataclass
class Warehouse:
    """A copy of the demo project whose profile points at a DuckDB file or a PostgreSQL database."""

    kind: str            # duckdb | postgres
    project: Path
    db: str              # DuckDB file, or PostgreSQL database name

    @property
    def target(self) -> str:
        return "dev" if self.kind == "duckdb" else "pg"

    def connect(self) -> Any:
        """A plain driver connection (not wn's adapter) for checking."""
        if self.kind == "duckdb":
            import duckdb

            return duckdb.connect(self.db)
        import psycopg

        return psycopg.connect(**PG, dbname=self.db, autocommit=True, application_name="wn_check")

    def rows(self, sql: str) -> list[dict[str, Any]]:
        con = self.connect()
        try:
            cur = con.execute(sql)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]
        finally:
            con.close()

    def wait_for_dead_sessions(self, timeout: float = 30.0) -> None:
        """PostgreSQL finishes a killed client's statement (or notices it is gone) on its own
        time; wait until no wn session of that client is left, so that what we read is final."""
        if self.kind != "postgres":
            return
        deadline = time.monotonic() + timeout
        while self.rows(f"select pid from pg_stat_activity where datname = '{self.db}' and application_name = 'wn'"):
            if time.monotonic() > deadline:
                raise AssertionError("a killed run's PostgreSQL session is still alive after 30 s")
            time.sleep(0.1)


def make_warehouse(kind: str, root: Path, users: int) -> Warehouse:
    """Seed the demo data (``users`` users) into a new DuckDB file or PostgreSQL database."""
    from warehouse_native.demo import DemoConfig, generate_demo

    project = root / "project"
    project.mkdir(parents=True)
    import shutil

    for folder in ("metrics", "experiments", "models"):
        shutil.copytree(REPO / folder, project / folder)
    if kind == "duckdb":
        db = str(root / "warehouse.duckdb")
        out = f"dev: {{type: duckdb, path: '{db}', schema: {SCHEMA}, threads: 2, lock_timeout: {LOCK_TIMEOUT}}}"
    else:
        db = f"wn_test_kill_{uuid.uuid4().hex[:8]}"
        with _pg_admin() as admin:
            admin.execute(f"CREATE DATABASE {db}")
        out = (f"pg: {{type: postgres, host: {PG['host']}, port: {PG['port']}, user: {PG['user']}, "
               f"password: '', dbname: {db}, schema: {SCHEMA}, lock_timeout: {LOCK_TIMEOUT}}}")
    (project / "profiles.yml").write_text(f"wn_kill:\n  target: {'dev' if kind == 'duckdb' else 'pg'}\n"
                                          f"  outputs:\n    {out}\n")
    from warehouse_native.project import load_target
    from warehouse_native.warehouse import connect

    with connect(load_target(project)) as adapter:
        for relation, columns in generate_demo(DemoConfig(users=users)).items():
            adapter.load_columns(relation, columns)
    return Warehouse(kind, project, db)


def drop_warehouse(wh: Warehouse) -> None:
    if wh.kind == "postgres":
        with _pg_admin() as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {wh.db} WITH (FORCE)")


def _pg_admin() -> Any:
    import psycopg

    return psycopg.connect(**PG, dbname="postgres", autocommit=True)


def skip_without_postgres(what: str) -> None:
    """In a test: skip loudly (a warning and the reason) when the server does not answer."""
    import warnings

    import pytest

    if why := pg_available():
        reason = f"POSTGRES NOT AVAILABLE at {PG['host']}:{PG['port']}: {why} — {what} on PostgreSQL skipped"
        warnings.warn(reason)
        pytest.skip(reason)


def pg_available() -> str | None:
    """None when the PostgreSQL server answers, else why not."""
    try:
        _pg_admin().close()
        return None
    except Exception as exc:  # noqa: BLE001
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# -- what is in the warehouse -------------------------------------------------------------------

def snapshot(wh: Warehouse) -> dict[str, list[tuple]]:
    """Every row of every table and view in the wn schema (staging tables aside), sorted."""
    names = [r["table_name"] for r in wh.rows(
        f"select table_name from information_schema.tables where table_schema = '{SCHEMA}'")]
    out = {}
    con = wh.connect()
    try:
        models = {p.stem for p in (wh.project / "models").glob("*.sql")}   # the user's views, not wn's
        for name in sorted(n for n in names if not n.startswith("__wn_") and n not in models):
            cur = con.execute(f'select * from {SCHEMA}."{name}"')
            cols = [d[0] for d in cur.description]
            rows = [tuple(zip(cols, r)) for r in cur.fetchall()]
            out[name] = sorted(rows, key=lambda r: [(v is None, str(v)) for _, v in r])
    finally:
        con.close()
    return out


def same_snapshot(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> list[str]:
    """What differs (empty: nothing).  Numbers read through views recomputed on each read
    (``unit_metrics__*`` after an incremental run, ``exposures``) may differ in the last bits."""
    import math

    problems = []
    for name in sorted(before.keys() | after.keys()):
        a, b = before.get(name), after.get(name)
        if a is None or b is None:
            problems.append(f"{name}: {'added' if a is None else 'missing'}")
            continue
        if len(a) != len(b):
            problems.append(f"{name}: {len(a)} rows before, {len(b)} after")
            continue
        for ra, rb in zip(a, b):
            if ra == rb:
                continue
            if [c for c, _ in ra] != [c for c, _ in rb] or not all(
                    va == vb or (isinstance(va, float) and isinstance(vb, float)
                                 and math.isclose(va, vb, rel_tol=1e-9, abs_tol=1e-12))
                    for (_, va), (_, vb) in zip(ra, rb)):
                problems.append(f"{name}: row differs: {ra[:4]}... vs {rb[:4]}...")
                break
    return problems


def stray_stages(wh: Warehouse) -> list[str]:
    return [f"{r['table_schema']}.{r['table_name']}" for r in wh.rows(
        "select table_schema, table_name from information_schema.tables where table_name like '\\_\\_wn\\_%' escape '\\'")]


def success_runs(wh: Warehouse) -> set[str]:
    return {r["run_id"] for r in wh.rows(f"select run_id from {SCHEMA}.runs where status = 'success'")}


# -- clean results to compare with ---------------------------------------------------------------

class Reference:
    """Stateless runs on a pristine DuckDB copy of the same data: the scorecard and exposures
    a run as of a day must publish (incremental runs equal them to 1e-9)."""

    def __init__(self, root: Path, users: int):
        self.wh = make_warehouse("duckdb", root, users)
        self._cache: dict[str, tuple[dict, dict]] = {}

    def results(self, as_of: str) -> tuple[dict, dict]:
        if as_of not in self._cache:
            from warehouse_native.project import load_project, load_target
            from warehouse_native.runner import run_experiment
            from warehouse_native.warehouse import connect

            with connect(load_target(self.wh.project)) as adapter:
                run_experiment(load_project(self.wh.project), load_target(self.wh.project), adapter, EXPERIMENT,
                               as_of=dt.date.fromisoformat(as_of))
            self._cache[as_of] = published(self.wh)
        return self._cache[as_of]


def published(wh: Warehouse) -> tuple[dict, dict]:
    """(scorecard_latest by key, exposures by unit) of the experiment."""
    from compare import by_key

    card = by_key(wh.rows(f"select * from {SCHEMA}.scorecard_latest where experiment = '{EXPERIMENT}'"))
    exposures = by_key(wh.rows(f"select * from {SCHEMA}.exposures where experiment = '{EXPERIMENT}'"),
                       ("unit_id",))
    return card, exposures


def assert_equals_reference(wh: Warehouse, ref: Reference, as_of: str, what: str) -> int:
    from compare import assert_same_rows

    card, exposures = published(wh)
    ref_card, ref_exposures = ref.results(as_of)
    n = assert_same_rows(ref_card, card, f"{what}: scorecard")
    return n + assert_same_rows(ref_exposures, exposures, f"{what}: exposures")


# -- one kill ------------------------------------------------------------------------------------

@dataclasses.dataclass
class Kill:
    engine: str
    run: str                 # which run was killed: mode flags and as-of
    aim: str                 # see AIMS
    how: str                 # "at statement k/n +delay" or "after t s"
    phase: str               # scans | publish | commit sent | finished before the kill
    outcome: str             # old results kept | new results committed
    seconds: float           # of the recovery run
    values_compared: int


def wn_args(wh: Warehouse, flags: tuple[str, ...], as_of: str) -> list[str]:
    return ["run", "-e", EXPERIMENT, "-q", *flags, "--project-dir", str(wh.project), "-t", wh.target,
            "--as-of", as_of]


def _spawn(args: list[str], trace: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(TESTS / "killing.py"), "child", str(trace), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=str(REPO))


def traced_run(args: list[str], trace: Path) -> tuple[int, str, list[str]]:
    """Run the child to the end: (exit code, its output, the statements it sent)."""
    trace.unlink(missing_ok=True)
    proc = _spawn(args, trace)
    out, err = proc.communicate(timeout=600)
    return proc.returncode, (out + err).decode(errors="replace"), trace.read_text().splitlines()


def phase_of(statements: list[str]) -> str:
    begins = [i for i, s in enumerate(statements) if s.startswith("begin")]
    commits = [i for i, s in enumerate(statements) if s.startswith("commit")]
    if not begins:
        return "scans"
    if not commits or commits[-1] < begins[-1]:
        return "publish"
    return "commit sent"


@dataclasses.dataclass
class Shape:
    """Where a clean run of some kind sends its statements: how many, and the publish transaction."""

    total: int
    begin: int    # index of the BEGIN (0-based), or -1
    commit: int   # index of the COMMIT, or -1

    @classmethod
    def of(cls, statements: list[str]) -> "Shape":
        begins = [i for i, s in enumerate(statements) if s.startswith("begin")]
        commits = [i for i, s in enumerate(statements) if s.startswith("commit")]
        return cls(len(statements), begins[-1] if begins else -1, commits[-1] if commits else -1)


FINISHED = "finished before the kill"
# where a kill is aimed: after the k-th statement of the scans, of the publish transaction,
# right after the COMMIT was sent, or after a random time
AIMS = ("scans", "publish", "commit", "time")


def _aim(aim: str, shape: Shape, rng: random.Random) -> tuple[int | None, float]:
    """(statements to wait for, extra seconds); None statements: wait ``extra`` seconds from the start."""
    if aim == "time":
        return None, rng.uniform(0.4, 1.8)
    if aim == "scans" or shape.begin < 0:
        return rng.randint(1, max(shape.begin if shape.begin > 0 else shape.total - 1, 1)), rng.uniform(0, 0.02)
    if aim == "publish":   # in the first half of the transaction: its last inserts take a millisecond or two
        return rng.randint(shape.begin + 1, max(shape.begin + (shape.commit - shape.begin) // 2, shape.begin + 1)), \
            rng.uniform(0, 0.002)
    return shape.commit + 1, rng.uniform(0, 0.03)   # the COMMIT completes, or not


def kill_once(wh: Warehouse, ref: Reference, flags: tuple[str, ...], as_of: str, rng: random.Random,
              work: Path, shapes: dict[tuple, Shape], aim: str) -> Kill:
    args = wn_args(wh, flags, as_of)
    before = snapshot(wh)
    runs_before = success_runs(wh)
    trace = work / "trace.txt"
    trace.unlink(missing_ok=True)
    key = (wh.kind, flags)
    k, extra = _aim(aim, shapes[key], rng)
    how = f"after {extra:.2f}s" if k is None else f"at statement {k}/{shapes[key].total} +{extra * 1000:.0f}ms"
    proc = _spawn(args, trace)
    t0 = time.monotonic()
    if k is None:
        while time.monotonic() - t0 < extra and proc.poll() is None:
            time.sleep(0.005)
    else:
        while proc.poll() is None:
            if trace.exists() and trace.read_bytes().count(b"\n") >= k:
                time.sleep(extra)
                break
            time.sleep(0.001)
    finished = proc.poll() is not None
    if not finished:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    statements = trace.read_text().splitlines() if trace.exists() else []
    phase = FINISHED if finished else phase_of(statements)
    wh.wait_for_dead_sessions()
    # 1. the warehouse holds the old results, or the killed run's, never a mix
    after = snapshot(wh)
    new_runs = success_runs(wh) - runs_before
    if finished:
        assert proc.returncode == 0, f"{args} failed: {proc.stderr}"
    if not new_runs:
        diff = same_snapshot(before, after)
        assert not diff, f"kill ({how}, {phase}) of {args}: the previous results changed: {diff[:5]}"
        outcome = "old results kept"
    else:
        assert len(new_runs) == 1
        assert_equals_reference(wh, ref, as_of, f"kill ({how}, {phase}) committed")
        outcome = "new results committed"
    # 2. the next run succeeds, equals a clean run, and leaves no staging table
    t1 = time.monotonic()
    code, output, sent = traced_run(args, trace)
    seconds = time.monotonic() - t1
    assert code == 0, f"the run after a kill ({how}, {phase}) failed with exit {code}:\n{output}"
    shapes[key] = Shape.of(sent)   # the next kill of this kind aims with the latest shape
    compared = assert_equals_reference(wh, ref, as_of, f"run after a kill ({how}, {phase})")
    stray = stray_stages(wh)
    assert not stray, f"staging tables left after the run that followed a kill ({how}, {phase}): {stray}"
    return Kill(wh.kind, f"{' '.join(flags) or 'incremental'} as of {as_of}", aim, how, phase, outcome,
                seconds, compared)


def kill_loop(kind: str, root: Path, kills: int, users: int, seed: int = 13,
              aims: tuple[str, ...] = AIMS, plan: list[tuple[tuple[str, ...], str]] = PLAN,
              say: Callable[[str], None] = lambda _m: None) -> list[Kill]:
    """``kills`` kills on one engine: the runs of ``plan`` in turn, aimed at ``aims`` in turn."""
    rng = random.Random(seed)
    ref = Reference(root / "reference", users)
    wh = make_warehouse(kind, root / kind, users)
    shapes: dict[tuple, Shape] = {}
    out = []
    try:
        # how each kind of run sends its statements; then previous results to protect
        for flags in dict.fromkeys(f for f, _ in plan):
            code, output, sent = traced_run(wn_args(wh, flags, "2026-10-22"), root / "trace.txt")
            assert code == 0, output
            shapes[(kind, flags)] = Shape.of(sent)
        i = 0
        while sum(k.phase != FINISHED for k in out) < kills:   # only kills of a live process count
            flags, as_of = plan[i % len(plan)]
            aim = aims[(i + i // len(plan)) % len(aims)]   # each run of the plan meets every aim in turn
            kill = kill_once(wh, ref, flags, as_of, rng, root, shapes, aim)
            out.append(kill)
            say(f"{kind} kill {sum(k.phase != FINISHED for k in out)}/{kills}: {kill.run}, aimed at {kill.aim} "
                f"({kill.how}): landed in {kill.phase}; {kill.outcome}; next run ok in {kill.seconds:.1f}s")
            i += 1
    finally:
        drop_warehouse(wh)
        drop_warehouse(ref.wh)
    return out


def summary(kills: list[Kill]) -> dict[str, Any]:
    from collections import Counter

    return {
        "kills": sum(k.phase != FINISHED for k in kills),
        "runs_that_finished_before_the_kill": sum(k.phase == FINISHED for k in kills),
        "by_engine": dict(Counter(k.engine for k in kills)),
        "by_aim": dict(Counter(k.aim for k in kills)),
        "by_phase": dict(Counter(k.phase for k in kills)),
        "by_outcome": dict(Counter(k.outcome for k in kills)),
        "values_compared": sum(k.values_compared for k in kills),
        "recovery_seconds_max": round(max((k.seconds for k in kills), default=0.0), 2),
    }


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "child":
        _child(sys.argv[2], sys.argv[3:])
    else:
        print(__doc__)
        print(json.dumps({"usage": "python tests/killing.py child TRACE WN_ARGS..."}))
