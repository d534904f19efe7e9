"""The rich consoles every command prints through."""

from rich.console import Console

import os
import shutil


def _width() -> int | None:
    # wide enough for the scorecard when output is piped (CI logs, files); the real
    # terminal width otherwise
    if os.environ.get("COLUMNS"):
        return None
    cols = shutil.get_terminal_size((120, 40)).columns
    return max(cols, 120)


console = Console(highlight=False, width=_width())
err_console = Console(stderr=True, highlight=False, width=_width())
