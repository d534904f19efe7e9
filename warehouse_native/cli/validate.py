"""``wn validate``: check the whole project and report every problem (no warehouse access)."""

from __future__ import annotations

import click

from ..errors import ProjectError
from .console import console, err_console
from .flags import Flags, common_flags


@click.command("validate")
@common_flags
def command(flags: Flags) -> None:
    """Validate profiles, catalog, experiments and models; list every problem with file:line."""
    problems = []
    project = None
    try:
        project = flags.load_project()
    except ProjectError as exc:
        problems.extend(exc.problems)
    try:
        flags.load_target()
    except ProjectError as exc:
        problems.extend(exc.problems)
    if problems:
        from rich.markup import escape

        err_console.print(f"[bold red]{len(problems)} problem{'s' if len(problems) != 1 else ''} found[/bold red]")
        for p in sorted(problems, key=lambda p: (p.file or "", p.line or 0)):
            err_console.print(f"  [red]✗[/red] [bold]{escape(p.location())}[/bold]: {escape(p.message)}")
            if p.hint:
                err_console.print(f"      [dim]fix:[/dim] {escape(p.hint)}")
        raise SystemExit(2)
    assert project is not None
    console.print(f"[green]✓[/green] project is valid: {len(project.sources)} sources, "
                  f"{len(project.metrics)} metrics, {len(project.experiments)} experiments, "
                  f"{len(project.models)} models")
