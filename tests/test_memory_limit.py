"""A memory limit that is truly too small gives one clear message and a failed run (exit 1,
previous results unchanged), not a crash or the kernel's OOM kill.
The 100M-event runs within 4GB are measured by benchmarks/run_benchmarks.py --memory-test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import killing
from conftest import REPO


def test_too_small_memory_limit_fails_the_run_clearly(demo_project: Path) -> None:
    def wn(*args: str) -> tuple[int, str]:
        done = subprocess.run([sys.executable, "-m", "warehouse_native.cli.main", "run", "-e", "button_color_v3",
                               "-q", *args, "--project-dir", str(demo_project), "--as-of", "2026-11-01"],
                              capture_output=True, cwd=str(REPO), timeout=300)
        return done.returncode, " ".join((done.stdout + done.stderr).decode(errors="replace").split())

    code, out = wn()
    assert code == 0, out
    wh = killing.Warehouse("duckdb", demo_project, str(demo_project.parent / "warehouse" / "demo.duckdb"))
    before = killing.snapshot(wh)
    profiles = demo_project / "profiles.yml"
    profiles.write_text(profiles.read_text().replace("memory_limit: 4GB", "memory_limit: 1MB"))
    for args in ((), ("--no-state", "--strategy", "temp")):
        code, out = wn(*args)
        assert code == 1 and "Traceback" not in out, out
        assert "Out of Memory Error" in out and "fix: the warehouse refused more memory than its limit" in out
        assert "raise memory_limit in profiles.yml" in out and "previous results are unchanged" in out
    after = killing.snapshot(wh)
    # (the error row itself may not fit in 1MB: wn.runs gains at most error rows)
    assert [r for r in after.pop("runs") if dict(r)["status"] != "error"] == before.pop("runs")
    assert killing.same_snapshot(before, after) == []
    assert killing.stray_stages(wh) == []
