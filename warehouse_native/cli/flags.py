"""Flags shared by every command, declared once (as dbt does)."""

from __future__ import annotations

import datetime as dt
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from ..errors import ProjectError

if TYPE_CHECKING:
    from ..project import Project, Target


@dataclass
class Flags:
    project_dir: Path
    profiles_dir: Path
    profile: str | None
    target: str | None
    as_of: dt.date
    debug: bool

    def load_project(self) -> Project:
        from ..project import load_project

        return load_project(self.project_dir)

    def load_target(self) -> Target:
        from ..project import load_target

        return load_target(self.profiles_dir, self.profile, self.target)

    @property
    def target_dir(self) -> Path:
        return self.project_dir / "target"


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a date; write YYYY-MM-DD") from None


def common_flags(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add --project-dir, --profiles-dir, --profile, --target, --as-of, --debug to a command."""
    options = [
        click.option("--project-dir", type=click.Path(file_okay=False, path_type=Path), default=".",
                     show_default=True, help="Folder holding metrics/, experiments/, models/."),
        click.option("--profiles-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Folder holding profiles.yml (default: the project dir)."),
        click.option("--profile", default=None, help="Profile to use when profiles.yml holds several."),
        click.option("--target", "-t", default=None, help="Target (output) of the profile; default: its 'target'."),
        click.option("--as-of", default=None, callback=_parse_date, metavar="DATE",
                     help="Treat DATE (YYYY-MM-DD) as today for windows and --all. Default: today."),
        click.option("--debug", is_flag=True, default=bool(os.environ.get("WN_DEBUG")),
                     help="Show Python tracebacks for internal errors."),
    ]

    @functools.wraps(fn)
    def wrapper(*args: Any, project_dir: Path, profiles_dir: Path | None, profile: str | None,
                target: str | None, as_of: dt.date, debug: bool, **kwargs: Any) -> Any:
        if not project_dir.is_dir():
            raise ProjectError(f"--project-dir {project_dir} is not a folder")
        flags = Flags(project_dir.resolve(), (profiles_dir or project_dir).resolve(), profile, target,
                      as_of, debug)
        click.get_current_context().meta["wn_debug"] = debug
        return fn(*args, flags=flags, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


strategy_option = click.option(
    "--strategy", type=click.Choice(["auto", "cte", "temp"]), default="auto", show_default=True,
    help="Run intermediate steps as CTEs of one statement, as temporary tables, or choose per step.")

unit_metrics_option = click.option(
    "--unit-metrics", type=click.Choice(["view", "table"]), default="view", show_default=True,
    help="How a run without state publishes unit_metrics__<experiment>: a view that recomputes it "
         "from the sources when read (no per-unit write), or a table (a snapshot; costs a write "
         "of one row per unit).")

experiment_option = click.option("--experiment", "-e", "experiments", multiple=True, metavar="NAME",
                                 help="Experiment to process (repeatable).")
