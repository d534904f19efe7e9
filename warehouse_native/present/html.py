"""The Jinja environment of the pages: templates under ``present/templates``, shared filters."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from . import formats

TEMPLATES = Path(__file__).parent / "templates"


def _exact(x: Any) -> str:
    """The full-precision value for a ``data-value`` attribute (tests compare it to the warehouse)."""
    if formats.missing(x):
        return ""
    return repr(float(x)) if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


@functools.lru_cache(maxsize=1)
def environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters.update(pct=formats.pct, num=formats.num, pvalue=formats.pvalue, count=formats.count,
                       exact=_exact)
    return env


def render_page(template: str, **context: Any) -> str:
    import markupsafe

    env = environment()
    context.setdefault("css", markupsafe.Markup((TEMPLATES / "style.css").read_text(encoding="utf-8")))
    return env.get_template(template).render(**context)
