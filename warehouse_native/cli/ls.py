"""``wn ls``: the project's experiments and where each stands on --as-of (for people and schedulers)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from .console import console
from .flags import Flags, common_flags

if TYPE_CHECKING:
    from ..project.config_models import Experiment

STATUSES = ("running", "ended", "not started")


def experiment_entry(e: Experiment, as_of: Any, lookback_days: int) -> dict[str, Any]:
    """One experiment as ``wn ls --json`` prints it (the documented, stable shape)."""
    return {
        "name": e.name,
        "status": e.status(as_of),
        "active": e.is_active(as_of, grace_days=lookback_days),
        "start": e.start.isoformat(),
        "end": e.end.isoformat() if e.end else None,
        "unit": e.unit,
        "kind": e.kind,
        "owner": e.owner,
        "variants": [{"name": v.name, "control": v.control, "weight": v.weight} for v in e.variants],
        "primary_metrics": list(e.primary_metrics),
        "hypothesis": e.hypothesis or e.description,
    }


@click.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (for schedulers) instead of a table.")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES),
              help="Only experiments in this status on --as-of (repeatable).")
@click.option("--active", "active_only", is_flag=True,
              help="Only the experiments `wn run --all` would run on --as-of.")
@click.option("--lookback-days", type=click.IntRange(min=0, max=365), default=2, show_default=True,
              help="As in `wn run`: an experiment stays active this many days after its end.")
@common_flags
def command(flags: Flags, as_json: bool, statuses: tuple[str, ...], active_only: bool, lookback_days: int) -> None:
    """List experiments: status running / ended / not started on --as-of. Never connects."""
    project = flags.load_project()
    entries = [experiment_entry(e, flags.as_of, lookback_days)
               for _, e in sorted(project.experiments.items())]
    entries = [x for x in entries if (not statuses or x["status"] in statuses) and (not active_only or x["active"])]
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"experiments on {flags.as_of}", title_justify="left", header_style="bold")
    for col in ("experiment", "status", "start", "end", "unit", "owner", "variants"):
        table.add_column(col, no_wrap=col != "variants")
    style = {"running": "green", "ended": "dim", "not started": "yellow"}
    for x in entries:
        table.add_row(x["name"], f"[{style[x['status']]}]{x['status']}[/]", x["start"], x["end"] or "open",
                      x["unit"], x["owner"] or "—", ", ".join(v["name"] + (" (control)" if v["control"] else "")
                                                            for v in x["variants"]))
    console.print(table)
