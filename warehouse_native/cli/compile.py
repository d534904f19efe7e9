"""``wn compile``: write the SQL a run would execute under target/compiled/ (no warehouse access)."""

from __future__ import annotations

import click

from ..errors import ProjectError
from ..sql import DIALECTS
from .console import console
from .flags import Flags, common_flags, experiment_option, strategy_option, unit_metrics_option


@click.command("compile")
@experiment_option
@click.option("--dialect", type=click.Choice(list(DIALECTS) + ["all"]), default=None,
              help="SQL dialect to write (default: the target's).")
@strategy_option
@unit_metrics_option
@common_flags
def command(flags: Flags, experiments: tuple[str, ...], dialect: str | None, strategy: str,
            unit_metrics: str) -> None:
    """Compile experiments into readable SQL files, one per step."""
    from ..artifacts import write_compiled
    from ..runner import compile_experiment, compiled_files
    from ..sql.models import model_views

    project = flags.load_project()
    schema = "wn"
    if dialect is None:
        target = flags.load_target()
        dialects = [target.dialect]
        schema = target.schema
    else:
        dialects = list(DIALECTS) if dialect == "all" else [dialect]
        try:
            schema = flags.load_target().schema
        except ProjectError:
            pass
    names = list(experiments) or sorted(project.experiments)
    for name in names:
        for d in dialects:
            plan, compiled = compile_experiment(project, name, as_of=flags.as_of, schema=schema,
                                                dialect=d, strategy=strategy, unit_metrics=unit_metrics)
            paths = write_compiled(flags.target_dir, name, d, compiled_files(plan, compiled, model_views(plan, d, schema)))
            rel = paths[0].parent.relative_to(flags.project_dir) if paths else ""
            console.print(f"[green]compiled[/green] {name} for {d} ({strategy}): "
                          f"{len(paths)} files in {rel}")
