"""The canonical JSON event format: Baton's own signal adapter, used by ``POST /v1/events`` and
``baton ingest``. Other adapters (vendors, e-mail, imports) produce the same :class:`Event`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from pydantic import ValidationError

from baton.errors import InputError, TooLargeError
from baton.model import Event

__all__ = ["JsonlLine", "parse_event", "read_jsonl"]


def _depth_ok(value: Any, max_depth: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return True


def validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())


def parse_event(raw: bytes | str, *, max_depth: int = 32) -> Event:
    """Raw JSON to a validated canonical event, or an :class:`InputError` saying what is wrong."""
    try:
        data = json.loads(raw)
    except RecursionError:
        raise TooLargeError(f"JSON nested deeper than {max_depth} levels", limit="depth") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError("an event is a JSON object")
    if not _depth_ok(data, max_depth):
        raise TooLargeError(f"JSON nested deeper than {max_depth} levels", limit="depth")
    try:
        return Event.model_validate(data)
    except ValidationError as exc:
        raise InputError(validation_message(exc)) from None


@dataclass(frozen=True)
class JsonlLine:
    number: int
    event: Event | None
    error: str | None = None


def read_jsonl(handle: IO[bytes], *, max_line_bytes: int, max_depth: int = 32) -> Iterator[JsonlLine]:
    """Stream events from a JSONL file. A bad line is reported by number and skipped; an oversized
    line is skipped without ever being held in memory whole."""
    number = 0
    while True:
        line = handle.readline(max_line_bytes + 1)
        if not line:
            return
        number += 1
        if len(line) > max_line_bytes and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # drain the rest of the long line
                line = handle.readline(1 << 20)
            yield JsonlLine(number, None, f"line longer than {max_line_bytes} bytes")
            continue
        if not line.strip():
            continue
        try:
            yield JsonlLine(number, parse_event(line, max_depth=max_depth))
        except InputError as exc:
            yield JsonlLine(number, None, str(exc))
