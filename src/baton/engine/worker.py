"""The worker loop: fire due timers, deliver the outbox, sleep only when there was nothing to do.

Run as many workers as you like against PostgreSQL: timers are claimed with ``FOR UPDATE SKIP
LOCKED`` inside the transaction that fires them, outbox rows under a lease that another worker
takes back when it runs out.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from baton.engine.outbox import Outbox
from baton.engine.runtime import Engine

__all__ = ["Worker", "worker_name"]

_log = logging.getLogger("baton.worker")
DELIVERY_BUDGET_SECONDS = 0.25


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100_000}"


class Worker:
    def __init__(self, *, engine: Engine, outbox: Outbox, batch: int, poll_seconds: float) -> None:
        self.engine = engine
        self.outbox = outbox
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.stopping = threading.Event()

    def run_once(self) -> int:
        """One round; returns how much work it did (timers fired plus actions handled)."""
        fired = self.engine.fire_due_timers(limit=self.batch)
        # Delivery can be slow (each outcome is a durable commit, vendors take their time): bound
        # each round so timers that come due meanwhile are fired within a fraction of a second.
        stats = self.outbox.deliver(limit=self.batch, budget_seconds=DELIVERY_BUDGET_SECONDS)
        return fired + stats.claimed

    def run(self) -> None:
        _log.info("worker %s started", self.outbox.worker)
        while not self.stopping.is_set():
            try:
                done = self.run_once()
            except Exception:  # keep the loop alive through a database hiccup; it is logged
                _log.exception("worker round failed; retrying after a pause")
                done = 0
            if done == 0:
                self.stopping.wait(self.poll_seconds)
        _log.info("worker %s stopped", self.outbox.worker)

    def stop(self) -> None:
        self.stopping.set()
