"""Typed errors that reach the user as one clear message (never a traceback).

Every problem names where it is (file, line, field) and how to fix it.  A
``ProjectError`` may carry many problems: ``wn validate`` reports all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


# secret values from the profile (passwords, tokens): never shown in a message, whatever wrote it
_SECRETS: set[str] = set()


def register_secret(value: object) -> None:
    text = "" if value is None else str(value)
    if len(text) >= 4:   # shorter ones would blank out ordinary words
        _SECRETS.add(text)


def redact(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "****")
    return text


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's project, located as precisely as we can."""

    message: str
    file: str | None = None
    line: int | None = None
    field: str | None = None
    hint: str | None = None

    def location(self) -> str:
        where = self.file or "<project>"
        if self.line:
            where += f":{self.line}"
        if self.field:
            where += f" [{self.field}]"
        return where

    def render(self) -> str:
        text = f"{self.location()}: {self.message}"
        if self.hint:
            text += f"\n    fix: {self.hint}"
        return redact(text)


class WnError(Exception):
    """Base of every error wn shows to a user."""

    exit_code = 1

    def render(self) -> str:
        return redact(str(self))


class ProjectError(WnError):
    """The project (profiles, catalog, experiments, models) is invalid."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} found in the project:"
        return redact("\n".join([head] + [f"  {p.render()}" for p in self.problems]))


class CompileError(WnError):
    """The analysis plan could not be turned into SQL for the target dialect."""

    exit_code = 3


class WarehouseError(WnError):
    """The warehouse refused a statement or could not be reached."""

    exit_code = 4

    def __init__(self, message: str, *, step: str | None = None, sql_path: Path | str | None = None,
                 hint: str | None = None):
        self.step = step
        self.sql_path = sql_path
        self.hint = hint
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        text = self.message
        if self.step:
            text = f"step '{self.step}' failed: {text}"
        if self.sql_path:
            text += f"\n    compiled SQL: {self.sql_path}"
        if self.hint:
            text += f"\n    fix: {self.hint}"
        return redact(text)


@dataclass
class ProblemCollector:
    """Accumulates problems while loading, so that validation reports all of them."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, message: str, *, file: str | Path | None = None, line: int | None = None,
            field: str | None = None, hint: str | None = None) -> None:
        self.problems.append(Problem(message, str(file) if file else None, line, field, hint))

    def raise_if_any(self) -> None:
        if self.problems:
            raise ProjectError(self.problems)
