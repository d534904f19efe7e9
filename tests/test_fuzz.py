"""Property-based tests (hypothesis) of what a human may write in the YAML.

Random mutations of the demo project (wrong types, missing and unknown keys, unicode, huge
numbers, odd identifiers, YAML anchors and aliases, tabs, truncated files, bytes that are not
UTF-8) must never give a traceback: the project loads, or every problem names its file and
line (and the field, when one is to blame), ``wn run`` exits 2 and never connects to the
warehouse.  The same for profiles.yml, and for filter / value expressions on their own.

CI-sized and deterministic: derandomized, a few hundred examples, well under a minute.
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed: pip install -e '.[dev]'")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import REPO  # noqa: E402
from warehouse_native.errors import ProjectError  # noqa: E402
from warehouse_native.project import load_project, load_target  # noqa: E402
from warehouse_native.project.expressions import check_filter, check_value  # noqa: E402

FILES = ["metrics/sources.yml", "metrics/engagement.yml", "metrics/commerce.yml",
         "experiments/button_color_v3.yml", "experiments/show_new_homepage.yml", "profiles.yml"]
# problems about a whole file rather than one field of it
WHOLE_FILE = ("YAML syntax error", "cannot read file", "cannot render", "expected a mapping",
              "expected a top-level", "must map profile names", "unknown top-level key", "holds several profiles",
              "no profile named", "needs 'outputs'", "a target must be a mapping", "too many YAML aliases",
              "is not UTF-8")
ODD_STRINGS = [
    "", " ", "select", "a b", "Ä_ß", '"quoted"', "x;drop table raw.events", "'; drop table raw.events; --",
    "__multiple__", "2026-02-30", "1e999", "-0", "NaN", "ü" * 300, "\t", "{{ env_var('NOPE_NOT_SET') }}",
    "{% for %}", "名前", "a" * 41, "\u202e", "null", "~", "yes", "0x1F", "user_id", "raw.events",
    'raw."odd events"', "ts", "event_name = 'purchase'", "sum(value)", "(select 1)", "value /* c */",
    "country -- x", "1 = 1) or (1 = 1", "$$x$$", "\\", "ts\n- x", "\x00", "\ud7ff", "duckdb", "postgres",
]
ODD = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.text(max_size=20),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([10**400, -(10**400), 2**63, 0, -1, 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.lists(st.sampled_from(["a", "user_id", 1, None]), max_size=3),
    st.dictionaries(st.sampled_from(["a", "name", "upper", "x y"]), st.sampled_from([1, "b", None]), max_size=2),
)
# WN_FUZZ_EXAMPLES=5000 WN_FUZZ_RANDOM=1: a longer, non-deterministic search (by hand, not in CI)
EXAMPLES = int(os.environ.get("WN_FUZZ_EXAMPLES", "220"))
DERANDOMIZE = not os.environ.get("WN_FUZZ_RANDOM")
SETTINGS = settings(derandomize=DERANDOMIZE, database=None, deadline=None, max_examples=EXAMPLES,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


class Touched(BaseException):
    """Raised instead of connecting: the test sees whether a command reached the warehouse."""


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _get(node: Any, path: tuple) -> Any:
    for p in path:
        node = node[p]
    return node


def _mutate(data: Any, draw: Any) -> Any:
    """One structural mutation of parsed YAML."""
    data = copy.deepcopy(data)
    paths = _paths(data)
    path = draw(st.sampled_from(paths))
    op = draw(st.sampled_from(["replace", "replace", "delete", "rename", "add", "share", "duplicate", "wrap"]))
    if not path:
        return draw(ODD) if op == "replace" else data
    parent, last = _get(data, path[:-1]), path[-1]
    if op == "replace":
        parent[last] = draw(ODD)
    elif op == "delete":
        del parent[last]
    elif op == "rename" and isinstance(parent, dict):
        parent[draw(st.one_of(st.sampled_from(ODD_STRINGS), st.integers(), st.booleans()))] = parent.pop(last)
    elif op == "add":
        target = parent[last] if isinstance(parent[last], dict) else parent
        if isinstance(target, dict):
            target[draw(st.sampled_from(["nme", "typ", "extra", "Name", "na me", "tables", "units"]))] = draw(ODD)
        else:
            target.append(draw(ODD))
    elif op == "share":      # the same object twice: yaml writes an anchor and an alias
        source = draw(st.sampled_from(paths))
        if path[:len(source)] != source:   # (an ancestor would make a cycle: see "self_alias")
            parent[last] = _get(data, source)
    elif op == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))
    elif op == "wrap":
        parent[last] = [parent[last]]
    return data


@st.composite
def mutated_file(draw: Any) -> tuple[str, bytes]:
    name = draw(st.sampled_from(FILES))
    text = (REPO / name).read_text(encoding="utf-8")
    if name == "profiles.yml":
        text = text.replace("{{ env_var('WN_DUCKDB_PATH', 'warehouse/demo.duckdb') }}", "warehouse/demo.duckdb")
    kind = draw(st.sampled_from(["structure", "structure", "structure", "text"]))
    if kind == "structure":
        data = yaml.safe_load(text)
        for _ in range(draw(st.integers(1, 3))):
            data = _mutate(data, draw)
        text = yaml.dump(data, allow_unicode=draw(st.booleans()), sort_keys=False,
                         default_flow_style=draw(st.sampled_from([False, None])))
    raw = text.encode("utf-8")
    op = draw(st.sampled_from(["none", "tab", "truncate", "bytes", "bom", "dup_line", "alias_bomb", "self_alias",
                               "merge", "crlf"]))
    lines = raw.split(b"\n")
    at = draw(st.integers(0, max(len(lines) - 1, 0)))
    if op == "tab":
        lines[at] = b"\t" + lines[at]
    elif op == "truncate":
        return name, raw[:draw(st.integers(0, len(raw)))]
    elif op == "bytes":
        lines.insert(at, draw(st.binary(min_size=1, max_size=8)))
    elif op == "bom":
        return name, b"\xef\xbb\xbf" + raw
    elif op == "dup_line":
        lines.insert(at, lines[at])
    elif op == "alias_bomb":   # "billion laughs": each level refers to the one above ten times
        bomb = [b"x0: &a0 [lol]"] + [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]".encode() for i in range(1, 9)]
        return name, b"\n".join(bomb + lines)
    elif op == "self_alias":   # a node that contains itself
        lines.insert(at, b"loop: &self [1, *self]")
    elif op == "merge":        # a merge key from an anchored mapping
        lines = [b"defaults: &d {description: merged, tags: [x]}"] + lines
        lines.insert(at + 1, lines[at + 1][:len(lines[at + 1]) - len(lines[at + 1].lstrip())] + b"<<: *d")
    elif op == "crlf":
        return name, raw.replace(b"\n", b"\r\n")
    return name, b"\n".join(lines)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "project"
    for folder in ("metrics", "experiments", "models"):
        shutil.copytree(REPO / folder, root / folder)
    text = (REPO / "profiles.yml").read_text().replace(
        "{{ env_var('WN_DUCKDB_PATH', 'warehouse/demo.duckdb') }}", "warehouse/demo.duckdb")
    (root / "profiles.yml").write_text(text)
    return root


def _assert_located(exc: ProjectError, file: str) -> None:
    for p in exc.problems:
        where = p.render()
        assert p.file, f"a problem without a file: {where}"
        assert p.line and p.line >= 1, f"a problem without a line: {where}"
        if p.file.endswith(file) and not p.message.startswith(WHOLE_FILE) and not any(w in p.message for w in WHOLE_FILE):
            assert p.field, f"a problem without a field: {where}"


def _cli_exit(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, bool]:
    """``wn run`` in this process, with connecting replaced by Touched: (exit code, connected?)."""
    import warehouse_native.warehouse as warehouse
    from warehouse_native.cli.main import main

    def touched(*_a: Any, **_k: Any) -> None:
        raise Touched()

    monkeypatch.setattr(warehouse, "connect", touched)
    try:
        main(["run", "-e", "button_color_v3", "--project-dir", str(root), "-q"])
    except Touched:
        return 0, True
    except SystemExit as exc:
        return int(exc.code or 0), False
    return 0, False


@SETTINGS
@given(mutation=mutated_file())
def test_mutated_project_loads_or_says_where_and_never_connects(
        scratch: Path, monkeypatch: pytest.MonkeyPatch, mutation: tuple[str, bytes]) -> None:
    name, content = mutation
    original = (scratch / name).read_bytes()
    (scratch / name).write_bytes(content)
    try:
        invalid = None
        try:
            load_target(scratch)
            load_project(scratch)
        except ProjectError as exc:
            invalid = exc
            _assert_located(exc, name)
        code, connected = _cli_exit(scratch, monkeypatch)
        event("refused (exit 2)" if invalid is not None else "valid")
        if invalid is not None:
            assert code == 2 and not connected, f"exit {code}, connected={connected} for:\n{invalid.render()}"
        else:
            assert code != 70, "internal error"
            assert connected or code == 2   # valid: it runs (an experiment may have been renamed away)
    finally:
        (scratch / name).write_bytes(original)


EXPRESSION_PARTS = st.sampled_from([
    "event_name", "value", "'purchase'", "=", "<>", "and", "or", "not", "(", ")", ";", "--", "/*", "*/", "'",
    '"', "select", "from", "drop table raw.events", "1", "1e999", "null", "is", "in", "case when", "then",
    "else", "end", "sum(", "over ()", ",", "$$", "\\", "\n", "名", "\x00", "::int", "[1]", "{'a': 1}",
    "lambda x: x", "->", "count(*)", "exists", "union all", "copy", "attach 'x'", "pragma", "?", "$1",
])


@settings(derandomize=DERANDOMIZE, database=None, deadline=None, max_examples=2 * EXAMPLES)
@given(parts=st.lists(st.one_of(EXPRESSION_PARTS, st.text(max_size=6)), min_size=1, max_size=8))
def test_expression_checks_accept_one_expression_or_say_why(parts: list[str]) -> None:
    text = " ".join(parts)
    for check in (check_filter, check_value):
        try:
            node = check(text, {"event_name", "value", "country"})
        except ValueError as exc:
            assert str(exc), text
            event(f"{check.__name__}: refused")
            continue
        event(f"{check.__name__}: accepted")
        # what is accepted is one row-level expression: no statement, no sub-query
        from sqlglot import exp

        assert not node.find(exp.Query, exp.DDL, exp.DML, exp.Command), text
