"""An in-repo fake target that records every call, for tests.

It behaves like a vendor that honours idempotency keys: every call is recorded, but an effect is
applied once per key; a repeated key is answered as a duplicate. With a ``path`` the record is a
file shared by any number of processes (``flock`` makes check-and-append atomic) and fsynced before
``send`` returns, so tests that kill worker processes can read it afterwards.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from baton.connectors.base import Delivery, OutboundAction

__all__ = ["FakeConnector", "read_calls"]


class FakeConnector:
    name = "fake"

    def __init__(
        self, *, path: Path | None = None, fail: Callable[[OutboundAction], Exception | None] | None = None
    ) -> None:
        self.path = path
        self.fail = fail
        self.calls: list[OutboundAction] = []
        self.effects: dict[str, OutboundAction] = {}
        self._lock = threading.Lock()
        self._offset = 0

    def send(self, action: OutboundAction) -> Delivery:
        error = self.fail(action) if self.fail else None
        with self._lock:
            self.calls.append(action)
            if error is not None:
                raise error
            duplicate = action.key in self.effects if self.path is None else self._record(action)
            self.effects.setdefault(action.key, action)
        return Delivery(external_id=f"fake-{action.key[:12]}", detail={"duplicate": duplicate})

    def _record(self, action: OutboundAction) -> bool:
        assert self.path is not None
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._catch_up(fd)
            duplicate = action.key in self.effects
            line = json.dumps(
                {
                    "key": action.key,
                    "ticket": action.ticket_id,
                    "kind": action.kind,
                    "params": dict(action.params),
                    "duplicate": duplicate,
                },
                sort_keys=True,
            )
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
            self._offset = os.lseek(fd, 0, os.SEEK_END)
            return duplicate
        finally:
            os.close(fd)  # closing releases the lock

    def _catch_up(self, fd: int) -> None:
        """Learn the keys other processes recorded since we last looked."""
        size = os.fstat(fd).st_size
        if size <= self._offset:
            return
        chunk = os.pread(fd, size - self._offset, self._offset)
        for line in chunk.decode(errors="replace").splitlines():
            try:
                key = json.loads(line)["key"]
            except (ValueError, KeyError, TypeError):
                continue  # a torn line from a killed writer
            self.effects.setdefault(key, OutboundAction(key, "", "fake", "", {}, 0))
        self._offset = size


def read_calls(path: Path) -> list[dict[str, Any]]:
    """Every call recorded at ``path``; a torn last line (killed mid-write) is ignored."""
    calls: list[dict[str, Any]] = []
    if not path.exists():
        return calls
    for line in path.read_text().splitlines():
        try:
            calls.append(json.loads(line))
        except ValueError:
            continue
    return calls
