"""Versioned JSON artifacts and compiled SQL under ``target/`` (as dbt does)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from . import __version__

RUN_RESULTS_SCHEMA = "https://wn.dev/schemas/run-results/v1.json"


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"metadata": {"schema_version": RUN_RESULTS_SCHEMA, "wn_version": __version__,
                         "generated_at": dt.datetime.now(dt.timezone.utc).isoformat()}, **payload}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def compiled_dir(target_dir: Path, experiment: str, dialect: str) -> Path:
    return target_dir / "compiled" / experiment / dialect


def write_compiled(target_dir: Path, experiment: str, dialect: str,
                   files: list[tuple[str, str]]) -> list[Path]:
    """Write ``NN_step.sql`` files, replacing what an earlier compile left there."""
    folder = compiled_dir(target_dir, experiment, dialect)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.sql"):
        old.unlink()
    paths = []
    for i, (name, sql) in enumerate(files, start=1):
        path = folder / f"{i:02d}_{name}.sql"
        path.write_text(sql.rstrip() + ";\n", encoding="utf-8")
        paths.append(path)
    return paths
