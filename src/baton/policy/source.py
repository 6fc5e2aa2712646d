"""Reading policy YAML with positions, so every problem can be reported as ``file:line:col``.

PyYAML's safe composer gives nodes with marks; we build plain Python data from them and keep, for
every path into the data (``("routing", 2, "when")``), where it was written. Limits guard against
hostile files: size, nesting depth, and total nodes (which also defeats alias "billion laughs").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Located", "Locator", "SourceError", "parse_yaml", "read_yaml"]

MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 40
MAX_NODES = 200_000

PathKey = tuple[str | int, ...]


class SourceError(ValueError):
    """A YAML file that could not be read; ``where`` is ``file:line:col``."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass
class Locator:
    """Where each path of a document was written."""

    file: str
    marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    text: str = ""
    scalars: dict[PathKey, int] = field(default_factory=dict)  # path -> index of the scalar in text

    def where_in(self, path: Sequence[str | int], value: str, line: int, col: int) -> str:
        """``file:line:col`` of character ``line:col`` (1-based) of the scalar ``value`` at ``path``.

        The value's characters are matched in order against the text from where the scalar was
        written, skipping what is not part of the value (quotes, folded line breaks, indentation,
        a ``{{`` around it)."""
        start = self.scalars.get(tuple(path))
        if start is None:
            return self.where(path)
        lines = re.split(r"\r\n|\r|\n", value)
        offset = sum(len(text) + 1 for text in lines[: line - 1]) + col - 1
        i = start
        for ch in value[: offset + 1]:
            while i < len(self.text) and self.text[i] != ch:
                i += 1
            i += 1
        i = max(i - 1, start)
        found_line = self.text.count("\n", 0, i) + 1
        found_col = i - (self.text.rfind("\n", 0, i) + 1) + 1
        return f"{self.file}:{found_line}:{found_col}"

    def where(self, path: Sequence[str | int]) -> str:
        """``file:line:col`` of ``path``, or of its nearest written ancestor."""
        key = tuple(path)
        while key not in self.marks and key:
            key = key[:-1]
        line, col = self.marks.get(key, (1, 1))
        return f"{self.file}:{line}:{col}"


@dataclass(frozen=True)
class Located:
    data: Any
    locator: Locator
    raw: bytes


def read_yaml(path: Path, *, display: str | None = None) -> Located:
    """Parse ``path`` safely; raise :class:`SourceError` with a position for anything wrong."""
    name = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{name}:1:1", f"cannot read ({exc.strerror})") from None
    return parse_yaml(raw, name=name)


def parse_yaml(raw: bytes, *, name: str) -> Located:
    """Parse YAML bytes safely; ``name`` is what error locations call the file."""
    if len(raw) > MAX_FILE_BYTES:
        raise SourceError(f"{name}:1:1", f"file is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{name}:1:1", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else f"{name}:1:1"
        raise SourceError(where, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SourceError(f"{name}:1:1", f"invalid YAML: {exc}") from None
    locator = Locator(name, text=text)
    if node is None:
        return Located(None, locator, raw)
    builder = _Builder(locator)
    return Located(builder.build(node, (), 0), locator, raw)


class _Loader(yaml.SafeLoader):
    """PyYAML's composer recurses once per level: stop it at MAX_DEPTH, before Python's stack does."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Builder:
    def __init__(self, locator: Locator) -> None:
        self.locator = locator
        self.nodes = 0
        self.constructor = yaml.SafeLoader("")  # only used to resolve scalar tags (int, bool, date...)

    def build(self, node: yaml.Node, path: PathKey, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise SourceError(self._where(node), f"more than {MAX_NODES} values (aliases expanded)")
        if depth > MAX_DEPTH:
            raise SourceError(self._where(node), f"nested deeper than {MAX_DEPTH} levels")
        self.locator.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise SourceError(self._where(key_node), "mapping keys must be plain scalars")
                # Keys are names: take their text as written, so YAML 1.1 never turns `on:` or
                # `no:` into a boolean.
                key = str(key_node.value)
                if key == "<<":
                    raise SourceError(self._where(key_node), "merge keys (<<) are not supported")
                if key in result:
                    raise SourceError(self._where(key_node), f"duplicate key {key!r}")
                self.locator.marks[(*path, key)] = (
                    key_node.start_mark.line + 1,
                    key_node.start_mark.column + 1,
                )
                result[key] = self.build(value_node, (*path, key), depth + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        self._path = path
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        self.locator.scalars.setdefault(self._path, node.start_mark.index)
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise SourceError(self._where(node), f"invalid value: {exc.problem}") from None
        except ValueError as exc:  # e.g. an impossible timestamp such as 2026-02-30
            raise SourceError(self._where(node), f"invalid value: {exc}") from None

    def _where(self, node: yaml.Node) -> str:
        return f"{self.locator.file}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"
