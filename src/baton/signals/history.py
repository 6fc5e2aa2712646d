"""History import, part one: rows of an exported log become canonical events (capability S3).

:class:`HistoryReader` streams a CSV or JSONL file (plain or gzip) through a
:class:`~baton.signals.history_mapping.HistoryMapping` and yields one :class:`MappedRow` per row:
the event, or ``row N: reason`` when the row cannot be used. What it guarantees:

- **Deterministic event ids.** ``<ticket id>:<digest of the row's bytes>``, with the ticket's
  external link ``(source, ticket id)``: re-importing a file, or a later export that repeats its
  rows, adds nothing (the engine stores ``(source, event_id)`` once). Two byte-identical rows of
  one ticket are one event.
- **Per-ticket time order.** Consecutive rows of one ticket (both real logs list each ticket's
  rows together) are put in time order before they are mapped; the sort is stable, so rows with
  the same time keep their file order. A ticket whose rows are scattered through the file is in
  order only if the file is in time order. Global time order across tickets is *not* produced:
  that needs a sort of the whole file (replay's concern, not a streaming import's).
- **Constant memory.** One ticket's rows at a time (at most ``MAX_GROUP``), and a bounded cache
  (``KNOWN_TICKETS``) of the last state of recently seen tickets, used to type the next event.
- **Event types** follow the source's status: a ticket's first row is ``ticket.created``; a
  status change is ``ticket.solved``, ``ticket.closed``, ``ticket.reopened`` (from solved or
  closed) or ``status.changed``; otherwise a change of team or assignee is ``ticket.assigned``,
  of priority ``priority.changed``, and anything else ``ticket.updated``. Every event carries the
  team, tier and assignee the row states, so the engine records a team or tier change as a handoff.
- **Capped fields.** Text longer than the canonical event allows is cut (ending in "…"); an id
  longer than ``ID_MAX`` is an error, since a cut id could name another ticket.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import ValidationError

from baton.errors import ConfigError
from baton.model import Event, EventType, ExternalLink, Priority, Stage, TicketFields
from baton.signals.canonical import validation_message
from baton.signals.history_mapping import HistoryMapping, MappingDoc, PriorityMap, StatusMap, TierMap
from baton.signals.history_read import HistoryFile, SourceRow

__all__ = ["HistoryReader", "MappedRow", "time_parser"]

ID_MAX = 200
MAX_GROUP = 10_000
KNOWN_TICKETS = 100_000
# The canonical event's limits (see baton.model.TicketFields).
_LIMITS = {
    "subject": 1_000,
    "body": 100_000,
    "account_id": 1_000,
    "requester": 1_000,
    "category": 128,
    "channel": 64,
    "team": 128,
    "tier": 64,
    "assignee": 1_000,
}
_KEEP_LIMIT = 1_000
_CLOSED = (Stage.SOLVED, Stage.CLOSED)


@dataclass(frozen=True, slots=True)
class MappedRow:
    """One row of the file: its event, or why it has none. ``row`` is the file's line number."""

    row: int
    event: Event | None
    error: str | None = None


class _RowError(ValueError):
    pass


@dataclass(slots=True)
class _Row:
    """A checked row, waiting for the rest of its ticket's rows so they can be put in time order."""

    number: int
    ticket: str
    at: datetime
    created: datetime | None
    digest: str
    stage: Stage | None
    priority: Priority | None
    team: str | None
    tier: str | None
    assignee: str | None
    text: dict[str, str]
    keep: dict[str, str]


@dataclass(slots=True)
class _Known:
    """What Baton holds for a ticket, as far as typing its next event needs."""

    stage: Stage
    priority: Priority | None
    team: str | None
    assignee: str | None


def _cap(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _show(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def time_parser(fmt: str, zone: tzinfo) -> Callable[[str], datetime]:
    """How a time cell is read: ``fmt`` is ``"iso"`` or a strptime pattern; a time without an
    offset is in ``zone``. Raises ``ValueError`` for a cell that is not such a time.

    Numeric day/month/year/hour/minute/second patterns (most exports) are read by a regular
    expression and ``datetime``, which accept and refuse what ``strptime`` does for them and give
    the same value: ``strptime`` costs several microseconds a call, and a large log has about as
    many distinct instants as rows. A cell the expression does not match goes to ``strptime``,
    which decides.
    """
    fast = _numeric_pattern(fmt) if fmt != "iso" else None

    def parse(text: str) -> datetime:
        match = fast.fullmatch(text) if fast is not None else None
        if match is not None:
            parts = match.groupdict()
            value = datetime(
                int(parts["Y"]),
                int(parts["m"]),
                int(parts["d"]),
                int(parts.get("H") or 0),
                int(parts.get("M") or 0),
                int(parts.get("S") or 0),
            )
        else:
            value = datetime.fromisoformat(text) if fmt == "iso" else datetime.strptime(text, fmt)
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)

    return parse


# ASCII digits only: strptime reads a one-digit day or month only as 1-9, not as any Unicode digit.
_TWO = "[0-9]{1,2}"
_DIRECTIVES = {"d": _TWO, "m": _TWO, "Y": "[0-9]{4}", "H": _TWO, "M": _TWO, "S": _TWO}


def _numeric_pattern(fmt: str) -> re.Pattern[str] | None:
    """A regular expression reading ``fmt`` when it has only the directives above, each once, and
    a date; None otherwise."""
    pieces: list[str] = []
    used: set[str] = set()
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            code = fmt[i + 1 : i + 2]
            if code not in _DIRECTIVES or code in used:
                return None
            used.add(code)
            pieces.append(f"(?P<{code}>{_DIRECTIVES[code]})")
            i += 2
        else:
            # strptime reads white space in a pattern as any run of white space; so does this.
            pieces.append(r"\s+" if fmt[i].isspace() else re.escape(fmt[i]))
            i += 1
    return re.compile("".join(pieces)) if {"d", "m", "Y"} <= used else None


def _time_parser(fmt: str, zone: tzinfo) -> Callable[[str], datetime]:
    # Exports repeat the same instants (minute resolution, the opening time on every row): a
    # cache makes parsing nearly free.
    return functools.lru_cache(maxsize=8_192)(time_parser(fmt, zone))


class HistoryReader:
    """A history file read through a mapping: iterate it for :class:`MappedRow` items.

    ``limit`` stops at the first row of the ``limit + 1``-th distinct ticket (for a file that lists
    each ticket's rows together: exactly the first ``limit`` tickets). Use as a context manager.
    Opening raises :class:`~baton.errors.InputError` for an unreadable file and
    :class:`~baton.errors.ConfigError` when the mapping names columns the file does not have.
    """

    def __init__(self, path: Path, mapping: HistoryMapping, *, limit: int | None = None) -> None:
        doc: MappingDoc = mapping.doc
        self.mapping, self.limit = mapping, limit
        self.file = HistoryFile(path, fmt=doc.format, delimiter=doc.delimiter)
        if self.file.header is not None:
            problems = mapping.check_header(self.file.header) if self.file.header else []
            if problems:
                self.file.close()
                raise ConfigError("\n".join(problems))
        self.rows_read = 0
        self.reordered = 0  # tickets whose rows were not in time order in the file
        self._empty = frozenset(("", *doc.empty))
        self._time = _time_parser(doc.time.format, mapping.zone)
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._tickets: set[str] = set()
        self._link: ExternalLink | None = None  # the current ticket's, shared by its events (frozen)
        self._text = {
            name: column
            for name, column in (
                ("account_id", doc.account),
                ("requester", doc.requester),
                ("category", doc.category),
                ("channel", doc.channel),
            )
            if column is not None
        }

    # -- the file ----------------------------------------------------------------------------

    @property
    def position(self) -> int:
        return self.file.position

    @property
    def size(self) -> int:
        return self.file.size

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> HistoryReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- rows to events ----------------------------------------------------------------------

    def __iter__(self) -> Iterator[MappedRow]:
        group: list[_Row] = []
        for source in self.file.rows():
            self.rows_read += 1
            if source.values is None:
                yield MappedRow(source.number, None, source.error)
                continue
            try:
                row = self._parse(source, source.values)
            except _RowError as exc:
                yield MappedRow(source.number, None, str(exc))
                continue
            if group and row.ticket != group[0].ticket:
                yield from self._flush(group)
                group = []
            if self.limit is not None and row.ticket not in self._tickets:
                if len(self._tickets) >= self.limit:
                    self.rows_read -= 1  # the first row past the limit is not part of the import
                    break
                self._tickets.add(row.ticket)
            group.append(row)
            if len(group) >= MAX_GROUP:
                yield from self._flush(group)
                group = []
        yield from self._flush(group)

    def _get(self, values: dict[str, str], column: str) -> str | None:
        value = values.get(column)
        if value is None:
            return None
        value = value.strip()
        return None if value in self._empty else value

    def _when(self, values: dict[str, str], column: str) -> datetime | None:
        text = self._get(values, column)
        if text is None:
            return None
        try:
            return self._time(text)
        except ValueError:
            fmt = self.mapping.doc.time.format
            raise _RowError(f"{column}: {_show(text)} is not a time ({fmt})") from None

    def _mapped(
        self, values: dict[str, str], spec: StatusMap | PriorityMap | TierMap | None, what: str
    ) -> Any:
        """The Baton value of a mapped column (status, priority, tier), ``None`` when not stated."""
        if spec is None:
            return None
        value = self._get(values, spec.column)
        if value is None or spec.map is None:
            return value
        if value not in spec.map:
            raise _RowError(f"{spec.column}: {_show(value)} is not in the mapping's {what} map")
        return spec.map[value]

    def _parse(self, source: SourceRow, values: dict[str, str]) -> _Row:
        doc = self.mapping.doc
        ticket = self._get(values, doc.id)
        if ticket is None:
            raise _RowError(f"{doc.id}: no ticket id")
        if len(ticket) > ID_MAX:
            raise _RowError(f"{doc.id}: ticket id longer than {ID_MAX} characters")
        at = self._when(values, doc.time.column)
        if at is None:
            raise _RowError(f"{doc.time.column}: no time")
        created = self._when(values, doc.time.created) if doc.time.created else None
        text: dict[str, str] = {}
        for name, column in self._text.items():
            value = self._get(values, column)
            if value is not None:
                text[name] = _cap(value, _LIMITS[name])
        if doc.subject:
            parts = [v for c in doc.subject if (v := self._get(values, c)) is not None]
            if parts:
                text["subject"] = _cap(" / ".join(parts), _LIMITS["subject"])
        if doc.body:
            found = [(c, v) for c in doc.body if (v := self._get(values, c)) is not None]
            if found:
                body = found[0][1] if len(doc.body) == 1 else "\n".join(f"{c}: {v}" for c, v in found)
                text["body"] = _cap(body, _LIMITS["body"])
        team, assignee = (self._get(values, c) if c else None for c in (doc.team, doc.assignee))
        tier = self._mapped(values, doc.tier, "tier")
        return _Row(
            number=source.number,
            ticket=ticket,
            at=at,
            created=created,
            digest=source.digest,
            stage=self._mapped(values, doc.status, "status"),
            priority=self._mapped(values, doc.priority, "priority"),
            team=_cap(team, _LIMITS["team"]) if team else None,
            tier=_cap(tier, _LIMITS["tier"]) if tier else None,
            assignee=_cap(assignee, _LIMITS["assignee"]) if assignee else None,
            text=text,
            keep={c: _cap(values.get(c, ""), _KEEP_LIMIT) for c in doc.keep},
        )

    def _flush(self, group: list[_Row]) -> Iterator[MappedRow]:
        if not group:
            return
        if any(b.at < a.at for a, b in itertools.pairwise(group)):
            group.sort(key=lambda r: r.at)  # stable: equal times keep their file order
            self.reordered += 1
        for row in group:
            try:
                yield MappedRow(row.number, self._event(row))
            except ValidationError as exc:  # defensive: fields are capped before this
                yield MappedRow(row.number, None, validation_message(exc))

    def _event(self, row: _Row) -> Event:
        known = self._known.get(row.ticket)
        at = row.at
        if known is None:
            kind = EventType.TICKET_CREATED
            if row.created is not None and row.created < at:
                at = row.created
            # Baton opens every ticket in `open`; a first row in another status is applied by the
            # next row that states it.
            known = _Known(stage=Stage.OPEN, priority=row.priority, team=row.team, assignee=row.assignee)
            self._known[row.ticket] = known
            if len(self._known) > KNOWN_TICKETS:
                self._known.popitem(last=False)
        else:
            self._known.move_to_end(row.ticket)
            kind = self._kind(known, row)
        fields: dict[str, Any] = dict(row.text)
        for name in ("priority", "team", "tier", "assignee"):
            value = getattr(row, name)
            if value is not None:
                fields[name] = value
        if row.stage is not None:
            fields["status"] = row.stage
        if self._link is None or self._link.id != row.ticket:
            self._link = ExternalLink(system=self.mapping.source, id=row.ticket)
        data: dict[str, Any] = {"row": row.number}
        if row.keep:
            data["columns"] = row.keep
        return Event(
            source=self.mapping.source,
            event_id=f"{row.ticket}:{row.digest}",
            type=kind,
            occurred_at=at,
            external=self._link,
            fields=TicketFields(**fields),
            data=data,
        )

    @staticmethod
    def _kind(known: _Known, row: _Row) -> EventType:
        """The event type of a row on a known ticket; updates ``known`` to what Baton will hold."""
        stage, before = row.stage, known.stage
        moved = (row.team is not None and row.team != known.team) or (
            row.assignee is not None and row.assignee != known.assignee
        )
        reprioritised = row.priority is not None and row.priority != known.priority
        known.team = row.team if row.team is not None else known.team
        known.assignee = row.assignee if row.assignee is not None else known.assignee
        known.priority = row.priority if row.priority is not None else known.priority
        if stage is not None and stage != before:
            if stage in _CLOSED:
                known.stage = stage
                return EventType.SOLVED if stage == Stage.SOLVED else EventType.CLOSED
            if before in _CLOSED:
                known.stage = Stage.OPEN  # Baton reopens into `open`; a later row may say more
                return EventType.REOPENED
            known.stage = stage
            return EventType.STATUS_CHANGED
        if moved:
            return EventType.ASSIGNED
        return EventType.PRIORITY_CHANGED if reprioritised else EventType.TICKET_UPDATED
