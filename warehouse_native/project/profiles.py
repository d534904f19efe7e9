"""profiles.yml: dbt-shaped targets -> warehouse connections.

``<profile>: {target: dev, outputs: {dev: {type: duckdb, path: ..., schema: wn}}}``.
The file is rendered with Jinja first, so ``{{ env_var('X', 'default') }}`` works; a
relative DuckDB path is relative to the profiles file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from ..errors import Problem, ProjectError, register_secret
from .yaml_loader import LineDict, decode_text, load_yaml_text

SUPPORTED_TYPES = ("duckdb", "postgres", "spark")
DIALECT_OF = {"duckdb": "duckdb", "postgres": "postgres", "spark": "spark"}
# the settings a spark target takes (a typo is an error, not a silently ignored key)
SPARK_SETTINGS = {"session": ("method", "master", "warehouse_dir", "metastore", "conf", "catalog", "app_name",
                              "log_level"),
                  "connect": ("method", "url", "token", "conf", "catalog")}


@dataclass(frozen=True)
class Target:
    """One resolved warehouse connection."""

    profile: str
    name: str
    type: str
    schema: str
    settings: dict[str, Any] = field(default_factory=dict, repr=False)   # may hold a password

    @property
    def dialect(self) -> str:
        return DIALECT_OF[self.type]

    def describe(self) -> str:
        """Where the target points, for logs and wn.runs (never a password or token)."""
        where = self.settings.get("path") or self.settings.get("dbname") or ""
        if self.type == "spark":
            where = (str(self.settings.get("url", "")).split(";")[0] if self.settings.get("method") == "connect"
                     else self.settings.get("master", "local[*]"))
        return f"{self.profile}.{self.name} ({self.type}{': ' + str(where) if where else ''})"


def _env_var(name: str, default: str | None = None) -> str:
    if name in os.environ:
        return os.environ[name]
    if default is not None:
        return default
    raise jinja2.UndefinedError(
        f"environment variable '{name}' is not set and has no default; "
        f"set it or write env_var('{name}', 'default')")


def render_profiles_text(text: str) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(text).render(env_var=_env_var)


def _line_naming(text: str, message: str) -> int:
    """The first line of ``text`` holding a name quoted in ``message`` (e.g. an unset env_var), else 1."""
    for name in re.findall(r"'([^']+)'", message):
        for i, line in enumerate(text.splitlines(), 1):
            if name in line:
                return i
    return 1


def load_target(profiles_dir: Path, profile: str | None = None, target: str | None = None) -> Target:
    """Resolve the target to run against, with an actionable error for every mistake."""
    path = profiles_dir / "profiles.yml"
    display = str(path)
    if not path.exists():
        raise ProjectError(Problem(
            "profiles.yml not found", display,
            hint="create it (see README 'profiles.yml') or pass --profiles-dir"))
    raw = decode_text(path.read_bytes(), display)
    try:
        text = render_profiles_text(raw)
    except jinja2.TemplateError as exc:
        raise ProjectError(Problem(f"cannot render: {exc}", display, getattr(exc, "lineno", None)
                                   or _line_naming(raw, str(exc)))) from None
    data = load_yaml_text(text, display)
    if not isinstance(data, LineDict) or not data:
        raise ProjectError(Problem("must map profile names to {target, outputs}", display, 1))
    if profile is None:
        if len(data) > 1:
            raise ProjectError(Problem(
                f"holds several profiles ({', '.join(data)})", display, 1,
                hint="choose one with --profile NAME"))
        profile = next(iter(data))
    if profile not in data:
        raise ProjectError(Problem(f"no profile named '{profile}'", display, 1,
                                   hint=f"use one of: {', '.join(data)}"))
    body = data[profile]
    if not isinstance(body, LineDict) or not isinstance(body.get("outputs"), LineDict):
        raise ProjectError(Problem(f"profile '{profile}' needs 'outputs'", display,
                                   data.line_of(profile), "outputs"))
    outputs = body["outputs"]
    target = target or body.get("target") or "dev"
    if target not in outputs:
        raise ProjectError(Problem(f"profile '{profile}' has no target '{target}'", display,
                                   body.line_of("target"), "target",
                                   hint=f"use one of: {', '.join(outputs)}"))
    out = outputs[target]
    line = outputs.line_of(target)
    if not isinstance(out, dict):
        raise ProjectError(Problem("a target must be a mapping", display, line, target))
    kind = out.get("type")
    if kind not in SUPPORTED_TYPES:
        raise ProjectError(Problem(f"unsupported warehouse type '{kind}'", display,
                                   out.line_of("type") if isinstance(out, LineDict) else line,
                                   f"outputs.{target}.type",
                                   hint=f"use one of: {', '.join(SUPPORTED_TYPES)}"))
    _check_secrets(raw, display, profile, target, out)
    settings = {k: v for k, v in out.items() if k not in ("type", "schema")}
    _check_settings(kind, settings, out, display, f"outputs.{target}")
    if kind == "duckdb":
        raw = str(settings.get("path", ":memory:"))
        if raw != ":memory:" and not Path(raw).is_absolute():
            raw = str((profiles_dir / raw).resolve())
        settings["path"] = raw
    if kind == "spark" and settings.get("warehouse_dir") and not Path(str(settings["warehouse_dir"])).is_absolute():
        settings["warehouse_dir"] = str((profiles_dir / str(settings["warehouse_dir"])).resolve())
    schema = str(out.get("schema", "wn"))
    return Target(profile=profile, name=target, type=kind, schema=schema, settings=settings)


SECRET_KEY = re.compile(r"password|passwd|secret|token|credential|api_?key|private_?key", re.IGNORECASE)
_URL_TOKEN = re.compile(r";\s*token=([^;]*)", re.IGNORECASE)
_FROM_ENV = "__wn_from_env_var__"


def _secrets(node: Any, path: str) -> list[tuple[str, Any, Any, str]]:
    """(field path, mapping, key, value) of every secret-looking setting, conf entries included,
    and of tokens inside connection URLs."""
    out: list[tuple[str, Any, Any, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}"
            if isinstance(value, dict):
                out += _secrets(value, here)
            elif SECRET_KEY.search(str(key)) and value not in (None, ""):
                out.append((here, node, key, str(value)))
            elif str(key).lower() == "url" and (match := _URL_TOKEN.search(str(value))) and match[1]:
                out.append((here, node, key, match[1]))
    return out


def _check_secrets(raw: str, display: str, profile: str, target: str, out: Any) -> None:
    """Secrets come from the environment, never from the file (which lives in git): each secret
    setting of the target must be written with env_var().  Their values are registered so that
    no message shows them."""
    for *_, value in _secrets(out, ""):
        register_secret(value)
    env = jinja2.Environment(undefined=jinja2.ChainableUndefined, keep_trailing_newline=True)
    try:   # the file as written, each env_var() call standing as a marker
        data = load_yaml_text(env.from_string(raw).render(env_var=lambda *_a, **_k: _FROM_ENV), display)
        written = data[profile]["outputs"][target]
    except Exception:  # noqa: BLE001 - the real rendering was fine; nothing more to learn here
        return
    for path, node, key, value in _secrets(written, f"outputs.{target}"):
        if _FROM_ENV not in value:
            name = "WN_" + re.sub(r"\W+", "_", str(key)).upper()
            raise ProjectError(Problem(
                f"'{key}' is written in the file; secrets come only from the environment", display,
                node.line_of(key) if isinstance(node, LineDict) else None, path,
                hint=f"write {key}: \"{{{{ env_var('{name}') }}}}\" and set {name} where wn runs "
                     "(profiles.yml is kept in git)"))


_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)
_INTEGER_SETTINGS = {"duckdb": ("threads",), "postgres": ("port",)}


def _check_settings(kind: str, settings: dict[str, Any], node: Any, file: str, prefix: str) -> None:
    """Typos in connection settings become a located error, not a driver traceback."""
    def line(key: str) -> int | None:
        return node.line_of(key) if isinstance(node, LineDict) else None

    for key in _INTEGER_SETTINGS.get(kind, ()):
        if key in settings:
            try:
                settings[key] = int(str(settings[key]))
                if settings[key] <= 0:
                    raise ValueError
            except ValueError:
                raise ProjectError(Problem(f"{key} must be a positive whole number, not "
                                           f"'{settings[key]}'", file, line(key), f"{prefix}.{key}")) from None
    if kind in ("duckdb", "postgres") and "lock_timeout" in settings:
        try:
            seconds = float(str(settings["lock_timeout"]).strip())
            if not 0 <= seconds <= 86_400:
                raise ValueError
            settings["lock_timeout"] = seconds
        except ValueError:
            raise ProjectError(Problem(f"lock_timeout must be a number of seconds from 0 to 86400, not "
                                       f"'{settings['lock_timeout']}'", file, line("lock_timeout"),
                                       f"{prefix}.lock_timeout",
                                       hint="e.g. lock_timeout: 60 (how long a run waits for another one "
                                            "holding the database or the experiment; 0: do not wait)")) from None
    if kind == "spark":
        _check_spark(settings, line, file, prefix)
    if kind == "duckdb" and "memory_limit" in settings and not _MEMORY.match(str(settings["memory_limit"])):
        raise ProjectError(Problem(f"memory_limit '{settings['memory_limit']}' is not a size", file,
                                   line("memory_limit"), f"{prefix}.memory_limit",
                                   hint="write it like 4GB or 512MB"))


def _check_spark(settings: dict[str, Any], line: Any, file: str, prefix: str) -> None:
    method = settings.setdefault("method", "session")
    if method not in SPARK_SETTINGS:
        raise ProjectError(Problem(f"unknown spark method '{method}'", file, line("method"), f"{prefix}.method",
                                   hint="use method: session (a SparkSession in this process) or method: connect "
                                        "(a Spark Connect URL, e.g. Databricks)"))
    for key in settings:
        if key not in SPARK_SETTINGS[method]:
            raise ProjectError(Problem(f"'{key}' is not a setting of a spark target with method: {method}", file,
                                       line(key), f"{prefix}.{key}",
                                       hint=f"use: {', '.join(SPARK_SETTINGS[method])}"))
    if method == "connect" and not str(settings.get("url", "")).startswith("sc://"):
        raise ProjectError(Problem("method: connect needs url: sc://host:port", file, line("url") or line("method"),
                                   f"{prefix}.url", hint="e.g. url: sc://localhost:15002, or for Databricks "
                                   "sc://<workspace-host>:443/;x-databricks-cluster-id=<id> with "
                                   "token: \"{{ env_var('DATABRICKS_TOKEN') }}\""))
    if settings.get("metastore", "derby") not in ("derby", "none"):
        raise ProjectError(Problem("metastore must be derby or none", file, line("metastore"), f"{prefix}.metastore",
                                   hint="derby: an embedded metastore in warehouse_dir (local runs); none: the "
                                        "session's own catalog settings (conf) decide"))
    if "conf" in settings and not isinstance(settings["conf"], dict):
        raise ProjectError(Problem("conf must map Spark settings to values", file, line("conf"), f"{prefix}.conf",
                                   hint="e.g. conf: {spark.sql.shuffle.partitions: 8}"))
