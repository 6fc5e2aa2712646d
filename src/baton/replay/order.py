"""A history file's events in global time order, in bounded memory.

:class:`~baton.signals.history.HistoryReader` yields one ticket's events at a time, each ticket in
time order, tickets in file order. Simulated time needs every ticket's events interleaved by time.
Sorting the whole stream would hold every event at once (about 4 KB each as objects); instead:

1. a first, cheap pass reads only the time columns and notes, for every row, the earliest instant
   its event can carry (``min(time, created)``), and from that the earliest instant any row from
   a given position to the end of the file can carry (a suffix minimum, 16 bytes a row);
2. the second pass maps rows to events through the reader and keeps them in a heap; after each
   row it releases every buffered event not later than the earliest instant of the rows still
   unread — nothing read later can come before them.

The result is exactly a stable sort by ``(time, reader order)``. The heap holds the events of the
tickets that overlap in time, not the file: for the ServiceNow log a few thousand of 120,000. A
file in no useful order (say, newest ticket first) degrades to buffering everything; past
``spill`` buffered events they are kept as compact JSON instead of objects.

The two passes need not run one after the other: given the first pass's result as a
:class:`BoundsSource`, the second starts at once and holds up to :data:`EARLY` rows until that
result arrives (a replay's parent process runs the first pass while its reader process parses).
"""

from __future__ import annotations

import bisect
import heapq
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Protocol, TypeAlias

from baton.clock import time_key
from baton.model import Event
from baton.signals.history import HistoryReader, MappedRow, time_parser
from baton.signals.history_mapping import HistoryMapping
from baton.signals.history_read import HistoryFile

__all__ = ["EARLY", "SPILL", "Bounds", "BoundsSource", "TimeOrdered", "first_pass", "time_key"]

SPILL = 20_000
EARLY = 20_480  # rows read ahead while another process runs the first pass (about 4 KB each)
_NEVER = 2**62


# What the first pass finds: row numbers in file order, the suffix minimum of their earliest
# instants, and the row where a limit stops the replay.
Bounds: TypeAlias = "tuple[array[int], array[int], int | None]"


class BoundsSource(Protocol):
    """The first pass's result, computed elsewhere while the rows are being read."""

    def ready(self) -> bool:
        """Whether :meth:`get` would return without waiting."""
        ...

    def get(self) -> Bounds: ...


class TimeOrdered:
    """Iterate for the events of ``path`` (through ``mapping``) in time order.

    ``limit`` keeps the first ``limit`` ticket ids of the file: the rows before the first row of
    the next new id (for a file that lists each ticket's rows together, exactly those tickets).
    Rows that yield no event are passed to ``on_error(row, reason)``. ``rows``, ``errors``,
    ``peak`` (most events buffered at once) and ``spilled`` are filled in as it runs. With
    ``bounds``, the first pass is another process's (:class:`~baton.replay.ahead.ReadAhead`'s
    parent runs it while its reader process starts on the rows); the stream is the same.
    """

    def __init__(
        self,
        path: Path,
        mapping: HistoryMapping,
        *,
        limit: int | None = None,
        spill: int = SPILL,
        on_error: Callable[[int, str], None] | None = None,
        bounds: BoundsSource | None = None,
    ) -> None:
        self.path, self.mapping, self.limit, self.spill = path, mapping, limit, spill
        self.on_error = on_error
        self.bounds = bounds
        self.rows = self.errors = self.peak = self.spilled = 0
        self.reordered = 0

    def __iter__(self) -> Iterator[Event]:
        if self.bounds is None:
            numbers, earliest, stop = first_pass(self.path, self.mapping, self.limit)
        unread = 0
        low = 0
        heap: list[tuple[int, int, Event | str]] = []
        serial = 0
        with HistoryReader(self.path, self.mapping) as reader:
            items: Iterator[MappedRow] = iter(reader)
            early: deque[tuple[MappedRow, int]] = deque()
            if self.bounds is not None:
                # The first pass runs elsewhere: read ahead meanwhile, up to EARLY rows, each with
                # the reader's count of reordered tickets as it was then (a limit may stop there).
                for item in items:
                    early.append((item, reader.reordered))
                    if len(early) % 256 == 0 and (len(early) >= EARLY or self.bounds.ready()):
                        break
                numbers, earliest, stop = self.bounds.get()
            stopped: int | None = None  # the reordered count as read at the row a limit stops at
            unread = len(numbers)
            seen = bytearray(unread)
            for item, count in _rows(early, items):
                if stop is not None and item.row >= stop:
                    stopped = count
                    break  # a ticket past the limit: every row before this one has been yielded
                self.rows += 1
                i = bisect.bisect_left(numbers, item.row)
                if i < unread and numbers[i] == item.row:
                    seen[i] = 1
                    while low < unread and seen[low]:
                        low += 1
                if item.event is None:
                    self.errors += 1
                    if self.on_error is not None:
                        self.on_error(item.row, item.error or "unusable row")
                else:
                    serial += 1
                    payload: Event | str = item.event
                    if len(heap) >= self.spill:
                        payload = item.event.model_dump_json()
                        self.spilled += 1
                    heapq.heappush(heap, (time_key(item.event.occurred_at), serial, payload))
                    self.peak = max(self.peak, len(heap))
                horizon = earliest[low] if low < unread else _NEVER
                while heap and heap[0][0] <= horizon:
                    yield _event(heapq.heappop(heap)[2])
            self.reordered = reader.reordered if stopped is None else stopped
        while heap:
            yield _event(heapq.heappop(heap)[2])


def _rows(
    early: deque[tuple[MappedRow, int]], rest: Iterator[MappedRow]
) -> Iterator[tuple[MappedRow, int | None]]:
    """The rows read ahead (each let go once merged) with their counts, then the rest."""
    while early:
        yield early.popleft()
    for item in rest:
        yield item, None


def first_pass(path: Path, mapping: HistoryMapping, limit: int | None) -> Bounds:
    """The first pass: row numbers in file order; for each position, the earliest instant of any
    row there or after; and, with a limit, the row where the limit stops the replay."""
    doc = mapping.doc
    empty = frozenset(("", *doc.empty))
    parse = time_parser(doc.time.format, mapping.zone)

    @lru_cache(maxsize=8_192)  # a ticket's creation time is on each of its rows
    def key(text: str) -> int:
        return time_key(parse(text))

    numbers: array[int] = array("q")
    lows: array[int] = array("q")
    tickets: set[str] = set()
    stop: int | None = None
    # Only the id and time columns are read, and no row is built or digested.
    columns = (doc.id, doc.time.column, doc.time.created or "")
    with HistoryFile(path, fmt=doc.format, delimiter=doc.delimiter) as source:
        for number, cells in source.cells(columns):
            ticket, at, created = cells or ("", "", "")
            if limit is not None:
                ticket = ticket.strip()
                if ticket and ticket not in empty and ticket not in tickets:
                    if len(tickets) >= limit:
                        stop = number  # the first row of the first ticket past the limit
                        break
                    tickets.add(ticket)
            numbers.append(number)
            low = _NEVER
            for text in (at, created) if doc.time.created else (at,):
                text = text.strip()
                if text and text not in empty:
                    try:  # noqa: SIM105 -- suppress() would enter a context manager for every cell
                        low = min(low, key(text))
                    except ValueError:  # the reader reports the row
                        pass
            lows.append(low)
    for i in range(len(lows) - 2, -1, -1):  # suffix minimum, in place
        if lows[i + 1] < lows[i]:
            lows[i] = lows[i + 1]
    return numbers, lows, stop


def _event(payload: Event | str) -> Event:
    return payload if isinstance(payload, Event) else Event.model_validate_json(payload)
