"""Files of e-mail: one ``.eml`` message, or an mbox archive of many, read as a stream.

An mbox archive separates messages by a line starting with ``From `` at the start of the file or
after an empty line; ``>From `` lines are unquoted once (mboxrd). A message over the size limit is
skipped and reported without ever being held in memory whole, like an oversized JSONL line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

__all__ = ["FileKind", "MailItem", "read_eml", "read_mbox", "sniff"]

FileKind = Literal["jsonl", "eml", "mbox"]

_SUFFIXES: dict[str, FileKind] = {
    ".eml": "eml",
    ".msg": "eml",
    ".mbox": "mbox",
    ".mbx": "mbox",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")
_QUOTED_FROM = re.compile(rb"^>+From ")
_LINE = 1 << 20  # read at most this much per call, whatever the line length


@dataclass(frozen=True, slots=True)
class MailItem:
    """One message of a file: its number (1-based) and bytes, or why it was skipped."""

    number: int
    raw: bytes | None
    error: str | None = None


def sniff(path: Path) -> FileKind:
    """What ``path`` holds: by its extension, else by its first bytes (JSONL when unsure)."""
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is not None:
        return kind
    try:
        with path.open("rb") as handle:
            head = handle.read(4_096)
    except OSError:
        return "jsonl"  # the JSONL reader reports the missing or unreadable file
    if head.startswith(b"From "):
        return "mbox"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"{", b"[")):
        return "jsonl"
    return "eml" if _HEADER_LINE.match(head) else "jsonl"


def read_eml(handle: IO[bytes], *, max_bytes: int) -> Iterator[MailItem]:
    """The one message of an ``.eml`` file."""
    raw = handle.read(max_bytes + 1)
    if len(raw) > max_bytes:
        yield MailItem(1, None, f"message larger than {max_bytes} bytes")
    else:
        yield MailItem(1, raw)


def read_mbox(handle: IO[bytes], *, max_bytes: int) -> Iterator[MailItem]:
    """Messages of an mbox archive, in order (see the module docstring)."""
    number = 0
    chunks: list[bytes] = []
    size = 0
    too_big = False
    started = False
    previous_blank = True

    def finish() -> MailItem:
        raw = b"".join(chunks)
        if too_big:
            return MailItem(number, None, f"message larger than {max_bytes} bytes")
        # The empty line before the next separator belongs to the archive, not the message.
        if raw.endswith(b"\r\n\r\n"):
            raw = raw[:-2]
        elif raw.endswith(b"\n\n"):
            raw = raw[:-1]
        return MailItem(number, raw)

    line_start = True
    while True:
        line = handle.readline(_LINE)
        if not line:
            break
        at_line_start, line_start = line_start, line.endswith(b"\n")
        if at_line_start and previous_blank and line.startswith(b"From "):
            if started:
                yield finish()
            number += 1
            started, chunks, size, too_big = True, [], 0, False
            previous_blank = False
            continue
        if at_line_start:
            previous_blank = line in (b"\n", b"\r\n")
        if not started:
            if line.strip():  # text before the first separator: not an mbox message
                number += 1
                started = True
            else:
                continue
        if at_line_start and _QUOTED_FROM.match(line):
            line = line[1:]
        size += len(line)
        if size > max_bytes:
            too_big, chunks = True, []
        elif not too_big:
            chunks.append(line)
    if started:
        yield finish()
