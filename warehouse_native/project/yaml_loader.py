"""YAML loading that remembers where every key and list item came from.

Mappings load as :class:`LineDict` and sequences as :class:`LineList`; both know the
1-based line of each entry, so a validation error can say ``metrics/x.yml:12``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import yaml

from ..errors import Problem, ProjectError


class LineDict(dict):
    """A dict that knows the line of itself (``line``) and of each key (``key_lines``)."""

    line: int = 0
    key_lines: dict

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list):
    """A list that knows the line of itself and of each item."""

    line: int = 0
    item_lines: list

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


# a file whose aliases expand to more values than this is refused ("billion laughs")
MAX_EXPANDED_VALUES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses an alias inside the node it names (a cycle) and documents whose
    aliases would expand to more than MAX_EXPANDED_VALUES values."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._open_anchors: set[str] = set()

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open_anchors:
                raise yaml.composer.ComposerError(
                    None, None, f"the alias *{event.anchor} is inside the node &{event.anchor} it refers to",
                    event.start_mark)
            return super().compose_node(parent, index)
        anchor = getattr(event, "anchor", None)
        if anchor is None:
            return super().compose_node(parent, index)
        self._open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open_anchors.discard(anchor)

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_EXPANDED_VALUES:
            raise yaml.composer.ComposerError(
                None, None, f"too many YAML aliases: the file expands to more than {MAX_EXPANDED_VALUES:,} values",
                node.start_mark)
        return node


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values ``node`` stands for once every alias is written out (memoised per node)."""
    if id(node) not in memo:
        if isinstance(node, yaml.SequenceNode):
            memo[id(node)] = 1 + sum(_expanded_size(n, memo) for n in node.value)
        elif isinstance(node, yaml.MappingNode):
            memo[id(node)] = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
        else:
            memo[id(node)] = 1
    return memo[id(node)]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain name, not a list or mapping", key_node.start_mark)
        # every key wn reads is a name: keep it as written (`on:`, `1:`, `null:` stay text)
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key_node.value)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


def _construct_timestamp_as_text(loader: _Loader, node: yaml.ScalarNode) -> str:
    # Dates stay strings; the config models parse them and can explain a bad one.
    return loader.construct_scalar(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_as_text)


def load_yaml_text(text: str, file: str) -> Any:
    """Parse YAML text; a syntax error becomes a ProjectError naming file and line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ProjectError(Problem(
            f"YAML syntax error: {exc.problem or exc}", file, line,
            hint="check indentation and quoting around this line")) from None
    except yaml.reader.ReaderError as exc:   # a character YAML does not allow (e.g. NUL)
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else 1
        raise ProjectError(Problem(
            f"YAML syntax error: character {exc.character!r} is not allowed in YAML", file, line,
            hint="remove it (control characters must be written as escapes inside double quotes)")) from None
    except yaml.YAMLError as exc:
        raise ProjectError(Problem(f"YAML syntax error: {exc}", file, 1)) from None


def load_yaml_file(path: Path, display: str | None = None) -> Any:
    display = display or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProjectError(Problem(f"cannot read file: {exc.strerror}", display, 1)) from None
    return load_yaml_text(decode_text(data, display), display)


def decode_text(data: bytes, display: str) -> str:
    """A file's bytes as text: UTF-8 (a byte order mark is dropped), else a located error."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ProjectError(Problem(
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start})", display, line,
            hint="save the file as UTF-8")) from None


def locate(data: Any, path: Sequence[Any]) -> int | None:
    """The best line for a path of keys/indexes into loaded YAML (deepest known)."""
    line = getattr(data, "line", None)
    node = data
    for part in path:
        if isinstance(node, LineDict) and part in node:
            line = node.line_of(part)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.line_of(part)
            node = node[part]
        else:
            break
    return line
