"""The ``wn`` command: one module per verb, errors shown as one clear message."""

from __future__ import annotations

import sys
import traceback

import click
from rich.markup import escape

from .. import __version__
from ..errors import WnError
from ..warehouse.adapter import as_warehouse_error
from . import compile as compile_cmd
from . import docs, ls, power, report, run, seed, show, validate
from .console import err_console


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="wn")
def cli() -> None:
    """wn: experiment metrics computed inside your warehouse.

    \b
    Typical day:   wn seed            (demo data, once)
                   wn validate
                   wn run --experiment button_color_v3
                   wn show --experiment button_color_v3
    """


for module in (seed, validate, compile_cmd, run, show, report, docs, ls, power):
    cli.add_command(module.command)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="wn", standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("[red]aborted[/red]")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except WnError as exc:
        err_console.print(f"[bold red]error:[/bold red] {escape(exc.render())}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/red]")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last line of defence: never a bare traceback
        if type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb", "psycopg", "pyspark", "py4j", "grpc"):
            err = as_warehouse_error(exc)
            err_console.print(f"[bold red]error:[/bold red] {escape(err.render())}")
            sys.exit(err.exit_code)
        ctx_debug = "--debug" in (argv or sys.argv)
        err_console.print(f"[bold red]internal error:[/bold red] {type(exc).__name__}: {escape(str(exc))}\n"
                          "    this is a bug in wn; rerun with --debug for the traceback and report it",
                          highlight=False)
        if ctx_debug:
            traceback.print_exc()
        sys.exit(70)
    else:
        sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
