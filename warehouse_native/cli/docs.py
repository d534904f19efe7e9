"""``wn docs``: a static, searchable catalog site of the project's sources, metrics and experiments."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ProjectError
from .console import console
from .flags import Flags, common_flags

DIALECTS = ("duckdb", "postgres", "spark", "snowflake", "bigquery")


@click.command("docs")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the site (default: target/docs/ in the project).")
@click.option("--reports-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where `wn report` wrote its pages, to link them (default: target/report/).")
@click.option("--dialect", type=click.Choice(DIALECTS), default=None,
              help="Dialect of the compiled SQL shown (default: the target's, else duckdb).")
@common_flags
def command(flags: Flags, out_dir: Path | None, reports_dir: Path | None, dialect: str | None) -> None:
    """Write target/docs/index.html: every source, metric (guardrails first) and experiment,
    each metric's compiled SQL, a search box and links to the reports. Never connects."""
    project = flags.load_project()
    schema, title = "wn", None
    try:
        target = flags.load_target()
        schema, dialect, title = target.schema, dialect or target.dialect, target.profile
    except ProjectError:
        dialect = dialect or "duckdb"
    from ..present.catalog import build_catalog, write_catalog

    out = out_dir if out_dir is not None else flags.target_dir / "docs"
    reports = reports_dir if reports_dir is not None else flags.target_dir / "report"
    page = build_catalog(project, dialect=dialect, schema=schema, as_of=flags.as_of, out_dir=out.resolve(),
                         reports_dir=reports.resolve(), title=title)
    path = write_catalog(page, out)
    linked = sum(1 for e in page.experiments if e.report_href)
    console.print(f"[green]docs[/green] {path} ({len(page.guardrails) + len(page.metrics)} metrics, "
                  f"{len(page.sources)} sources, {len(page.experiments)} experiments, {linked} reports linked)")
