"""``kill -9`` of ``wn run`` in scans, inside the publish transaction and just after its COMMIT,
on DuckDB and PostgreSQL: the previous results stay exactly as they were (or the killed run's
are complete), the next run succeeds, equals a clean run to 1e-9 and leaves no staging table.

The machinery is ``tests/killing.py``; ``benchmarks/kill_loop.py`` runs the long loop (30+
kills per engine) whose figures are in README "Guarantees".  PostgreSQL: the local server on
127.0.0.1:5432, else these tests skip loudly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import killing

USERS = 1000
# one kill per aim, each in another kind of run
PLAN = [((), "2026-10-26"), (("--no-state", "--strategy", "temp"), "2026-10-28"), ((), "2026-11-01")]
AIMS = ("scans", "publish", "commit")


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_kill_9_leaves_old_or_new_results_and_the_next_run_recovers(tmp_path: Path, engine: str) -> None:
    if engine == "postgres":
        killing.skip_without_postgres("kill tests")
    kills = killing.kill_loop(engine, tmp_path, len(AIMS), USERS, aims=AIMS, plan=PLAN, say=print)
    assert [k.aim for k in kills] == list(AIMS)
    # every kill hit a live process (none had finished), in the phase it was aimed at
    assert [k.phase for k in kills][:2] == ["scans", "publish"], [k.how for k in kills]
    assert kills[2].phase in ("publish", "commit sent")
    assert all(k.values_compared > 1000 for k in kills)
