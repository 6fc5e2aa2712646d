"""Micro-batching for the API: many concurrent requests, one transaction (one fsync) per batch.

Requests hand their event to one writer thread and wait. The writer takes whatever is queued (up
to ``max_batch``, waiting at most ``wait`` for more once the first arrives), ingests it in one
transaction, and only then answers each request. Under load this turns N fsyncs into one; when idle
it adds at most ``wait`` of latency.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from concurrent.futures import Future

from baton.engine.runtime import Engine, IngestResult
from baton.errors import StoreError
from baton.model import Event

__all__ = ["Batcher"]

_log = logging.getLogger("baton.batcher")
_STOP = object()


class Batcher:
    def __init__(self, engine: Engine, *, max_batch: int = 256, wait_seconds: float = 0.002) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.wait_seconds = wait_seconds
        self._queue: queue.SimpleQueue[tuple[Event, Future[IngestResult]] | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="baton-batcher", daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        if self._started:
            self._queue.put(_STOP)
            self._thread.join(timeout=30)
            self._started = False

    def submit(self, event: Event) -> Future[IngestResult]:
        future: Future[IngestResult] = Future()
        self._queue.put((event, future))
        return future

    async def ingest(self, event: Event) -> IngestResult:
        """Resolve once ``event`` is committed (or raise what the store raised)."""
        return await asyncio.wrap_future(self.submit(event))

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            deadline = time.monotonic() + self.wait_seconds
            stop = False
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._flush(batch)  # type: ignore[arg-type]
            if stop:
                return

    def _flush(self, batch: list[tuple[Event, Future[IngestResult]]]) -> None:
        events = [event for event, _ in batch]
        try:
            results = self.engine.ingest(events)
        except Exception as exc:  # every waiting request must hear about it, none may hang
            _log.exception("ingest of %d events failed", len(events))
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if result.status == "failed":
                future.set_exception(StoreError(result.error or "event not stored"))
            else:
                future.set_result(result)
