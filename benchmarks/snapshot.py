"""Run a benchmark on a private copy of the code under test (no wn import here).

Edits made to the work tree while a benchmark runs (wn reads its Jinja templates lazily) must
not mix two versions, so a benchmark's first act is to copy ``warehouse_native/`` (the work
tree as it is, or a git revision) and ``benchmarks/`` into a temporary folder and re-execute
itself from there: :func:`reexec_in_snapshot`.  This module imports nothing of wn, so a
benchmark can re-execute before it imports wn, i.e. measure ``--code HEAD`` while the work tree
is half-edited.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# results and data stay in the real benchmarks/ folder (WN_BENCH_HOME in a snapshot)
HERE = Path(os.environ.get("WN_BENCH_HOME") or Path(__file__).resolve().parent)
CODE_DIR = Path(__file__).resolve().parent.parent   # the folder holding the imported packages


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _git(*cmd: str, cwd: Path) -> str:
    return subprocess.run(["git", *cmd], cwd=cwd, capture_output=True, text=True, check=True).stdout


def _snapshot(code: str) -> Path:
    """Copy the code under test into a private folder, so that edits made to the work tree
    while the benchmark runs (Jinja templates are read lazily!) cannot mix two versions.
    ``code``: ``worktree`` (the files as they are now) or a git revision (``HEAD``, a hash)."""
    import shutil

    repo = Path(__file__).resolve().parent.parent
    dest = Path(tempfile.mkdtemp(prefix="wn_bench_code_"))
    if code == "worktree":
        shutil.copytree(repo / "warehouse_native", dest / "warehouse_native",
                        ignore=shutil.ignore_patterns("__pycache__"))
    else:
        archive = subprocess.run(["git", "archive", code, "warehouse_native"], cwd=repo,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    shutil.copytree(repo / "benchmarks", dest / "benchmarks",
                    ignore=shutil.ignore_patterns("__pycache__", ".data", "results", "*.md"))
    return dest


def reexec_in_snapshot(module: str, code: str, argv: list[str]) -> None:
    """Replace this process by ``python -m <module> <argv>`` running from a private copy of the
    code under test (:func:`_snapshot`); results and data stay in the real ``benchmarks/``."""
    info = code_info(code)   # before the copy: the work tree may move on meanwhile
    snap = _snapshot(code)
    env = dict(os.environ, WN_BENCH_SNAPSHOT=str(snap), WN_BENCH_HOME=str(HERE),
               WN_BENCH_REPO=str(CODE_DIR), PYTHONPATH=str(snap), WN_BENCH_CODE=json.dumps(info))
    log(f"benchmarking code '{code}' copied to {snap}")
    os.chdir(snap)
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)


def code_info(code: str) -> dict[str, Any]:
    repo = Path(os.environ.get("WN_BENCH_REPO") or CODE_DIR)
    info: dict[str, Any] = {"code": code}
    try:
        info["head"] = _git("rev-parse", "--short", "HEAD", cwd=repo).strip()
        info["rev"] = _git("rev-parse", "--short", code, cwd=repo).strip() if code != "worktree" else None
        info["subject"] = _git("log", "-1", "--format=%s", code if code != "worktree" else "HEAD", cwd=repo).strip()
        if code == "worktree":
            info["dirty"] = [l[3:] for l in _git("status", "--porcelain", "warehouse_native",
                                                   cwd=repo).splitlines()]
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        info["error"] = str(exc)
    return info




def reexec_early(module: str, argv: list[str]) -> None:
    """At the top of a benchmark's ``__main__``, before it imports wn: re-execute from a snapshot
    of the code given by ``--code`` (default: the work tree), unless this already is one or a
    ``--child`` process."""
    if os.environ.get("WN_BENCH_SNAPSHOT") or "--child" in argv:
        return
    code = "worktree"
    for i, a in enumerate(argv):
        if a == "--code" and i + 1 < len(argv):
            code = argv[i + 1]
        elif a.startswith("--code="):
            code = a.split("=", 1)[1]
    if any(a in ("-h", "--help") for a in argv):
        return
    reexec_in_snapshot(module, code, argv)
