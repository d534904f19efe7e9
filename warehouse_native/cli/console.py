"""The rich consoles every command prints through, created on first use (``wn --help`` and
the start of every command import no rich module)."""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def _width() -> int | None:
    # wide enough for the scorecard when output is piped (CI logs, files); the real
    # terminal width otherwise
    if os.environ.get("COLUMNS"):
        return None
    cols = shutil.get_terminal_size((120, 40)).columns
    return max(cols, 120)


class _LazyConsole:
    """Stands for a ``rich.console.Console``; makes it (importing rich) on first attribute use."""

    def __init__(self, **kwargs: Any):
        self._kwargs = kwargs
        self._console: Console | None = None

    def get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False, width=_width(), **self._kwargs)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


console: Console = _LazyConsole()  # type: ignore[assignment]
err_console: Console = _LazyConsole(stderr=True)  # type: ignore[assignment]
