"""The ``wn`` command: one module per verb, errors shown as one clear message.

Start-up is kept small: ``wn --help`` imports no command module, and each command module
imports what only it needs (duckdb, scipy, the runner, the stats layer, ...) inside the
function that runs it.  ``COMMANDS`` names each command's module and its one-line help;
``tests/test_startup.py`` checks both against the commands themselves and which modules
each start-up imports.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from .. import __version__
from ..errors import WnError

# command name -> (module in warehouse_native.cli, first paragraph of the command's help)
COMMANDS: dict[str, tuple[str, str]] = {
    "compile": ("compile", "Compile experiments into readable SQL files, one per step."),
    "docs": ("docs", "Write target/docs/index.html: every source, metric (guardrails first) and experiment, "
                     "each metric's compiled SQL, a search box and links to the reports. Never connects."),
    "ls": ("ls", "List experiments: status running / ended / not started on --as-of. Never connects."),
    "power": ("power", "Estimate sample size and duration (traffic vs duration) from the metric's recent data."),
    "report": ("report", "Write target/report/<experiment>.html: read from the published tables, not recomputed."),
    "run": ("run", "Run experiments: exposures -> unit metrics -> aggregates -> statistics -> scorecard."),
    "seed": ("seed", "Write the demo tables raw.exposures and raw.events (replacing them)."),
    "show": ("show", "Read wn.scorecard_latest and the health checks of that run, and print them."),
    "validate": ("validate", "Validate profiles, catalog, experiments and models; list every problem with file:line."),
}

# exceptions of these top-level modules are warehouse driver errors (matched by name: the
# driver need not be imported to recognise its exceptions)
DRIVER_MODULES = ("duckdb", "_duckdb", "psycopg", "pyspark", "py4j", "grpc")


class _LazyCommands(dict):  # type: ignore[type-arg]
    """``group.commands`` that imports a command's module on first lookup by name."""

    def __init__(self, modules: dict[str, str]):
        super().__init__()
        self._modules = modules

    def __missing__(self, name: str) -> click.Command:
        if name not in self._modules:
            raise KeyError(name)
        module = importlib.import_module(f"{__package__}.{self._modules[name]}")
        command: click.Command = module.command
        self[name] = command
        return command


class LazyGroup(click.Group):
    """A group that lists its commands from ``COMMANDS`` and imports a command's module only
    when that command runs, or its own ``--help`` is shown."""

    def __init__(self, *args: Any, lazy_commands: dict[str, tuple[str, str]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)
        self.commands = _LazyCommands({name: module for name, (module, _) in self.lazy_commands.items()})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name in self.lazy_commands:
            return self.commands[cmd_name]
        return None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click's, from the one-line help in ``COMMANDS`` (commands not yet imported)."""
        commands: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            cmd = dict.get(self.commands, name) or click.Command(name, help=self.lazy_commands[name][1])
            if not cmd.hidden:
                commands.append((name, cmd))
        if commands:
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in commands])


@click.group(cls=LazyGroup, lazy_commands=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="wn")
def cli() -> None:
    """wn: experiment metrics computed inside your warehouse.

    \b
    Typical day:   wn seed            (demo data, once)
                   wn validate
                   wn run --experiment button_color_v3
                   wn show --experiment button_color_v3
    """


def _print_error(markup: str, **kwargs: Any) -> None:
    from .console import err_console

    err_console.print(markup, **kwargs)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="wn", standalone_mode=False)
    except click.exceptions.Abort:
        _print_error("[red]aborted[/red]")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except WnError as exc:
        from rich.markup import escape

        _print_error(f"[bold red]error:[/bold red] {escape(exc.render())}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _print_error("[red]interrupted[/red]")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last line of defence: never a bare traceback
        from rich.markup import escape

        if type(exc).__module__.split(".")[0] in DRIVER_MODULES:
            from ..warehouse.adapter import as_warehouse_error

            err = as_warehouse_error(exc)
            _print_error(f"[bold red]error:[/bold red] {escape(err.render())}")
            sys.exit(err.exit_code)
        ctx_debug = "--debug" in (argv or sys.argv)
        _print_error(f"[bold red]internal error:[/bold red] {type(exc).__name__}: {escape(str(exc))}\n"
                     "    this is a bug in wn; rerun with --debug for the traceback and report it",
                     highlight=False)
        if ctx_debug:
            import traceback

            traceback.print_exc()
        sys.exit(70)
    else:
        sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
