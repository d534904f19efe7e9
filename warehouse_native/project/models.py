"""The user's own SQL models (``models/*.sql``), Jinja with ``ref()`` and ``source()``.

A model is materialised as a view named after its file in the target schema before the
pipeline runs; ``ref('name')`` resolves to that view, ``source('name')`` to a catalog
source's relation.  Models run in dependency order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import jinja2

from .yaml_loader import decode_text


@dataclass(frozen=True)
class Model:
    name: str
    path: str
    raw_sql: str


class _Recorder:
    """Collects ref()/source() calls made while rendering."""

    def __init__(self, schema: str, source_relation: Callable[[str], str] | None):
        self.schema = schema
        self.refs: list[str] = []
        self.sources: list[str] = []
        self._source_relation = source_relation

    def ref(self, name: str) -> str:
        self.refs.append(name)
        return f"{self.schema}.{name}"

    def source(self, name: str, table: str | None = None) -> str:
        self.sources.append(name)
        if self._source_relation is None:
            return name
        return self._source_relation(name)


def render_sql(text: str, *, schema: str,
               source_relation: Callable[[str], str] | None = None) -> tuple[str, list[str], list[str]]:
    """Render Jinja SQL; returns (sql, refs, sources).  Raises jinja2.TemplateError."""
    rec = _Recorder(schema, source_relation)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    sql = env.from_string(text).render(ref=rec.ref, source=rec.source)
    return sql.strip().rstrip(";").strip(), rec.refs, rec.sources


def topological_order(deps: dict[str, list[str]]) -> list[str]:
    """Order model names so every model comes after what it refs; raises ValueError on a cycle."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name):] + [name]
            raise ValueError(" -> ".join(cycle))
        state[name] = 1
        for dep in deps.get(name, []):
            if dep in deps:
                visit(dep, trail + [name])
        state[name] = 2
        order.append(name)

    for name in sorted(deps):
        visit(name, [])
    return order


def load_model_files(models_dir: Path, root: Path) -> list[Model]:
    if not models_dir.is_dir():
        return []
    return [Model(name=p.stem, path=str(p.relative_to(root)),
                  raw_sql=decode_text(p.read_bytes(), str(p.relative_to(root))))
            for p in sorted(models_dir.glob("*.sql"))]
