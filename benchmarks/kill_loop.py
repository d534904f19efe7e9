"""``kill -9`` of ``wn run`` in a loop, on DuckDB and PostgreSQL: nothing lost, the next run recovers.

    .venv/bin/python -m benchmarks.kill_loop [--kills 30] [--users 3000] [--engines duckdb,postgres] [--seed 13]

For each engine: seeds the demo data, then ``--kills`` times starts ``wn run`` (incremental,
full refresh, stateless ``--strategy temp`` / ``cte``, as of moving days: ``tests/killing.py``
PLAN) and ``SIGKILL``s it, aimed in turn at the scans, the publish transaction, just after the
COMMIT was sent, and a random time.  After each kill it checks every row of the ``wn`` schema
against a copy taken before (or, when the COMMIT made it, the killed run's results against a
clean run), then runs again and checks that run against a clean one (1e-9) and that no
staging table is left.  Any failure stops the loop with the reason.  Writes
``benchmarks/results/kill_loop.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))   # the kill machinery shared with tests/test_kills.py

import killing  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=30, help="kills per engine")
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--engines", default="duckdb,postgres")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "kill_loop.json")
    args = parser.parse_args(argv)
    engines = args.engines.split(",")
    if "postgres" in engines and (why := killing.pg_available()):
        raise SystemExit(f"PostgreSQL at 127.0.0.1:5432 is not available: {why}")
    results, t0 = {}, time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wn_kill_loop_") as tmp:
        for engine in engines:
            kills = killing.kill_loop(engine, Path(tmp) / engine, args.kills, args.users, seed=args.seed,
                                      say=lambda m: print(m, flush=True))
            results[engine] = {"summary": killing.summary(kills), "kills": [asdict(k) for k in kills]}
            print(json.dumps(results[engine]["summary"]), flush=True)
    payload = {"kills_per_engine": args.kills, "users": args.users, "seed": args.seed,
               "seconds": round(time.monotonic() - t0, 1), "machine": f"{platform.machine()}, {platform.python_version()}",
               "engines": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
