"""Reading policy YAML with positions, so every problem can be reported as ``file:line:col``.

PyYAML's safe composer gives nodes with marks; we build plain Python data from them and keep, for
every path into the data (``("routing", 2, "when")``), where it was written. Limits guard against
hostile files: size, nesting depth, and total nodes (which also defeats alias "billion laughs").
"""

from __future__ import annotations

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
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else f"{name}:1:1"
        raise SourceError(where, f"invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SourceError(f"{name}:1:1", f"invalid YAML: {exc}") from None
    locator = Locator(name)
    if node is None:
        return Located(None, locator, raw)
    builder = _Builder(locator)
    return Located(builder.build(node, (), 0), locator, raw)


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
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise SourceError(self._where(node), f"invalid value: {exc.problem}") from None
        except ValueError as exc:  # e.g. an impossible timestamp such as 2026-02-30
            raise SourceError(self._where(node), f"invalid value: {exc}") from None

    def _where(self, node: yaml.Node) -> str:
        return f"{self.locator.file}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"
