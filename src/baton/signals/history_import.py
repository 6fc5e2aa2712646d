"""History import, part two: mapped events through the engine, in batches.

Every event goes through :meth:`Engine.ingest`, so the imported tickets are decided by the
policy like live ones (routing, SLA clocks, handoff records). A batch is one transaction; an
interrupted import keeps what it committed, and running it again adds only what is missing (the
engine stores each ``(source, event_id)`` once).

History is old news: :func:`shadow_engine` gives an engine whose policy decides and records its
actions as *shadow* (stored, never sent), which is what ``baton import`` uses unless told to act.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from baton.clock import to_ms
from baton.engine.runtime import Engine
from baton.model import Event, EventType, replace
from baton.signals.history import HistoryReader
from baton.store import repo

__all__ = ["ImportSummary", "import_history", "shadow_engine"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportSummary:
    """What an import did. ``tickets`` are tickets it opened, ``events`` events it stored;
    ``duplicates`` were stored before (a re-import); ``errors`` counts rows that could not be read
    or mapped and events the engine refused."""

    rows: int
    tickets: int
    events: int
    duplicates: int
    errors: int
    reordered: int

    def line(self) -> str:
        return f"tickets: {self.tickets}, events: {self.events}, errors: {self.errors}"


def shadow_engine(engine: Engine) -> Engine:
    """An engine on the same store and clock whose policy sends nothing: every action it decides
    is recorded with status ``shadow``. The policy version is unchanged, so records name it."""
    policy = engine.policy
    return Engine(db=engine.db, policy=replace(policy, shadow=True), clock=engine.clock)


def _ignore(_row: int, _reason: str) -> None:
    return None


def import_history(
    *,
    engine: Engine,
    reader: HistoryReader,
    batch: int = 500,
    on_error: Callable[[int, str], None] = _ignore,
    on_progress: Callable[[int], None] | None = None,
    retire_overdue_timers: bool = True,
) -> ImportSummary:
    """Import every row of ``reader`` through ``engine``, ``batch`` events per transaction.

    ``on_error(row, reason)`` is called for each row that yields no stored event, in the order
    found; ``on_progress(position)`` after each batch with the reader's position in the file.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    pending: list[Event] = []
    rows: list[int] = []
    counts = {"tickets": 0, "accepted": 0, "duplicate": 0, "errors": 0}
    touched: set[str] = set()

    def flush() -> None:
        for row, event, result in zip(rows, pending, engine.ingest(pending), strict=True):
            if result.status == "failed":
                counts["errors"] += 1
                on_error(row, f"not stored: {result.error}")
                continue
            counts[result.status] += 1
            if result.ticket_id is not None:
                touched.add(result.ticket_id)
            if result.status == "accepted" and event.type == EventType.TICKET_CREATED:
                counts["tickets"] += 1
        pending.clear()
        rows.clear()
        if on_progress is not None:
            on_progress(reader.position)

    for item in reader:
        if item.event is None:
            counts["errors"] += 1
            on_error(item.row, item.error or "unusable row")
            continue
        pending.append(item.event)
        rows.append(item.row)
        if len(pending) >= batch:
            flush()
    flush()
    if retire_overdue_timers and touched:
        # History is over: SLA timers that came due before now belong to the past, and a worker
        # must not fire them today (old tickets would be notified about and tiered up).
        with engine.db.write() as conn:
            repo.retire_timers(conn, sorted(touched), before_ms=to_ms(engine.clock.now()))
    return ImportSummary(
        rows=reader.rows_read,
        tickets=counts["tickets"],
        events=counts["accepted"],
        duplicates=counts["duplicate"],
        errors=counts["errors"],
        reordered=reader.reordered,
    )
