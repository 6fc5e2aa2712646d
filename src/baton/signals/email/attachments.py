"""A content-addressed file store for attachments and raw messages, under the workspace.

A file lives at ``<root>/<aa>/<bb>/<sha256>``: the same bytes are stored once however many
messages carry them, a path never changes meaning, and the digest recorded on the event is enough
to find (and check) the file again. Writes go to a temporary file that is flushed to disk and then
renamed into place, so a crash never leaves a truncated file under a digest, and a caller that
acknowledges a message after :meth:`AttachmentStore.put` returns has the bytes on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from baton.errors import StoreError

__all__ = ["AttachmentStore", "Budget", "Stored", "digest_only"]


@dataclass(frozen=True, slots=True)
class Stored:
    sha256: str
    size: int
    uri: str | None  # None: recorded only (over a cap, or no store)


@dataclass
class Budget:
    """Per-message storage caps: one file at most ``per_file`` bytes, all at most ``per_message``."""

    per_file: int
    per_message: int
    used: int = 0

    def admits(self, size: int) -> bool:
        return size <= self.per_file and self.used + size <= self.per_message

    def spend(self, size: int) -> None:
        self.used += size


class AttachmentStore:
    """Content-addressed files under ``root``; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> Stored:
        """Store ``data`` durably (idempotent); raises :class:`StoreError` if the disk refuses."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(digest)
        try:
            if not path.exists():
                self._write(path, data)
        except OSError as exc:
            raise StoreError(f"cannot store attachment {digest[:12]}: {exc.strerror or exc}") from exc
        return Stored(sha256=digest, size=len(data), uri=path.resolve().as_uri())

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).replace(path)
        except BaseException:
            with contextlib.suppress(OSError):
                Path(tmp).unlink()
            raise
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); platforms that cannot open directories skip it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def digest_only(data: bytes) -> Stored:
    """The record of bytes that are not stored."""
    return Stored(sha256=hashlib.sha256(data).hexdigest(), size=len(data), uri=None)
