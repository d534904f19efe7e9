"""``wn report``: one static, self-contained HTML page per experiment from its published results."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import WnError
from .console import console, err_console
from .flags import Flags, common_flags, experiment_option

class MissingLibrary(WnError):
    """A library of an optional extra is not installed."""

    exit_code = 2


def require_chart_libraries() -> None:
    missing = []
    for module in ("altair", "vl_convert"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingLibrary(f"wn report needs {' and '.join(missing)} to draw its charts, and "
                             f"{'they are' if len(missing) > 1 else 'it is'} not installed\n"
                             "    fix: pip install 'warehouse-native[report]'")


@click.command("report")
@experiment_option
@click.option("--all", "all_", is_flag=True, help="Every experiment of the project with a published run.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the pages (default: target/report/ in the project).")
@common_flags
def command(flags: Flags, experiments: tuple[str, ...], all_: bool, out_dir: Path | None) -> None:
    """Write target/report/<experiment>.html: read from the published tables, not recomputed.

    The page works offline, opened from disk: charts are inline SVG, no script or font is fetched.
    """
    if all_ and experiments:
        raise click.UsageError("give --experiment NAME or --all, not both")
    if not all_ and not experiments:
        raise click.UsageError("say which experiment: --experiment NAME (or --all)")
    project = flags.load_project()
    for name in experiments:
        project.experiment(name)  # a clear error for an unknown name before connecting
    require_chart_libraries()
    from ..present.published import latest_runs, read_published
    from ..present.report import build_report, write_report
    from ..warehouse import connect

    target = flags.load_target()
    out = (out_dir if out_dir is not None else flags.target_dir / "report")
    descriptions = {m.name: m.description for m in project.metrics.values()}
    failures = 0
    with connect(target, read_only=target.type == "duckdb") as adapter:
        names = list(experiments)
        if all_:
            published = latest_runs(adapter, target.schema)
            names = sorted(n for n in project.experiments if n in published)
            if not names:
                console.print(f"no experiment of this project has a successful run in {target.describe()}; "
                              "nothing to report")
                return
        for name in names:
            try:
                data = read_published(adapter, target.schema, name, where=target.describe())
                page = build_report(data, project.experiments.get(name), as_of=flags.as_of,
                                    descriptions=descriptions)
                path = write_report(page, out)
            except WnError as exc:
                if not all_ and len(names) == 1:
                    raise
                failures += 1
                err_console.print(f"[bold red]✗ {name}[/bold red]: {exc.render()}", highlight=False)
                continue
            size = path.stat().st_size
            console.print(f"[green]report[/green] {name}: {_rel(path, flags.project_dir)} "
                          f"({size / 1024:,.0f} KiB, run {page.run.get('run_id')})")
    if failures:
        raise SystemExit(4)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)
