"""E-mail into the engine: parse, settle threading and commit, for the SMTP receiver and imports.

:meth:`MailIntake.receive` answers what a mail server must know: the message is committed
(``accepted`` or ``duplicate``), deliberately ``ignored`` (a loop-protection rule matched),
``rejected`` (malformed; retrying will not help) or ``failed`` (the store failed; retry). Nothing
is reported as committed before the transaction that stores it has committed.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Literal

from sqlalchemy.exc import DBAPIError, IntegrityError

from baton import audit
from baton.engine.runtime import Engine, IngestResult
from baton.errors import InputError, StoreError, TooLargeError
from baton.model import Event
from baton.settings import Settings
from baton.signals.email.attachments import AttachmentStore
from baton.signals.email.loops import Ignored
from baton.signals.email.mbox import read_eml, read_mbox
from baton.signals.email.message import MailOptions, parse_message
from baton.signals.email.threads import resolve_threads

__all__ = ["MailIntake", "Outcome", "mail_options"]

_log = logging.getLogger("baton.signals.email")


def mail_options(settings: Settings) -> MailOptions:
    """The e-mail signal's limits and choices, from settings."""
    return MailOptions(
        max_message_bytes=settings.email_max_message_bytes,
        max_attachment_bytes=settings.email_max_attachment_bytes,
        max_attachments_bytes=settings.email_max_attachments_bytes,
        allowed_lists=tuple(x.strip() for x in settings.email_allowed_lists.split(",") if x.strip()),
        keep_raw=settings.email_keep_raw,
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message. ``reason`` explains ignored, rejected and failed ones."""

    status: Literal["accepted", "duplicate", "ignored", "rejected", "failed"]
    reason: str | None = None
    event_id: str | None = None
    ticket_id: str | None = None
    too_large: bool = False


class MailIntake:
    """Parses e-mail and commits it through ``engine``; counts every outcome (see :attr:`counts`)."""

    def __init__(
        self, *, engine: Engine, options: MailOptions | None = None, store: AttachmentStore | None = None
    ) -> None:
        self.engine = engine
        self.options = options or MailOptions()
        self.store = store
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, engine: Engine) -> MailIntake:
        return cls(
            engine=engine,
            options=mail_options(settings),
            store=AttachmentStore(settings.resolved_attachment_dir),
        )

    @property
    def counts(self) -> dict[str, int]:
        """Outcomes so far, e.g. ``{"accepted": 3, "ignored": 2, "ignored.out-of-office": 1, ...}``."""
        with self._lock:
            return dict(self._counts)

    def _count(self, outcome: Outcome) -> Outcome:
        with self._lock:
            self._counts[outcome.status] += 1
            if outcome.status == "ignored" and outcome.reason:
                self._counts[f"ignored.{outcome.reason}"] += 1
        return outcome

    def parse(
        self,
        raw: bytes,
        *,
        received_at: datetime,
        envelope_sender: str | None = None,
        recipients: tuple[str, ...] = (),
        trust_date: bool = False,
    ) -> Event | Outcome:
        """The event of one message, or the (counted) outcome that ends its journey here."""
        try:
            parsed = parse_message(
                raw,
                received_at=received_at,
                options=self.options,
                store=self.store,
                envelope_sender=envelope_sender,
                recipients=recipients,
                trust_date=trust_date,
            )
        except InputError as exc:
            return self._count(Outcome("rejected", str(exc), too_large=isinstance(exc, TooLargeError)))
        except StoreError as exc:
            _log.error("attachment store failed: %s", exc)
            return self._count(Outcome("failed", str(exc)))
        if isinstance(parsed, Ignored):
            _log.info("ignored mail %s: %s (%s)", parsed.message_id, parsed.reason, parsed.detail)
            return self._count(Outcome("ignored", parsed.reason, parsed.message_id))
        return parsed

    def commit(self, events: Sequence[Event]) -> list[Outcome]:
        """Settle threading and ingest ``events`` in one transaction; on a failure, one by one."""
        if not events:
            return []
        try:
            results = self._commit(events)
        except (IntegrityError, DBAPIError, StoreError, ValueError) as exc:
            if len(events) > 1:
                _log.warning("mail batch of %d failed (%s); retrying one by one", len(events), exc)
                return [self.commit([event])[0] for event in events]
            _log.error("mail %s not stored: %r", events[0].event_id, exc)
            return [self._count(Outcome("failed", exc.__class__.__name__, events[0].event_id))]
        return [self._count(Outcome(r.status, r.error, r.event_id, r.ticket_id)) for r in results]

    def _commit(self, events: Sequence[Event]) -> list[IngestResult]:
        db = self.engine.db
        with db.write() as conn:
            if db.is_postgres:
                audit.lock_head(conn)  # one writer at a time from here: threading reads what ingest sees
            return self.engine.ingest_in(conn, resolve_threads(conn, events))

    def receive(
        self,
        raw: bytes,
        *,
        received_at: datetime,
        envelope_sender: str | None = None,
        recipients: tuple[str, ...] = (),
    ) -> Outcome:
        """Parse and commit one message received live (its time is ``received_at``)."""
        parsed = self.parse(
            raw, received_at=received_at, envelope_sender=envelope_sender, recipients=recipients
        )
        if isinstance(parsed, Outcome):
            return parsed
        return self.commit([parsed])[0]

    def ingest_file(
        self,
        handle: IO[bytes],
        *,
        mbox: bool,
        batch: int,
        received_at: datetime,
        on_error: Callable[[int, str], None],
        on_progress: Callable[[int], None] = lambda _position: None,
    ) -> Counter[str]:
        """Import an ``.eml`` file or an mbox archive (history: each message keeps its Date).

        Messages are committed ``batch`` at a time; a bad one is reported by number through
        ``on_error`` and skipped. Returns the outcomes counted (``ignored.<reason>`` included).
        """
        counts: Counter[str] = Counter()
        pending: list[tuple[int, Event]] = []

        def flush() -> None:
            for (number, _), outcome in zip(pending, self.commit([e for _, e in pending]), strict=True):
                counts[outcome.status] += 1
                if outcome.status == "failed":
                    on_error(number, f"not stored: {outcome.reason}")
            pending.clear()

        reader = read_mbox if mbox else read_eml
        for item in reader(handle, max_bytes=self.options.max_message_bytes):
            parsed: Event | Outcome = (
                Outcome("rejected", item.error, too_large=True)
                if item.raw is None
                else self.parse(item.raw, received_at=received_at, trust_date=True)
            )
            if isinstance(parsed, Event):
                pending.append((item.number, parsed))
                if len(pending) >= batch:
                    flush()
            else:
                counts[parsed.status] += 1
                if parsed.status == "ignored":
                    counts[f"ignored.{parsed.reason}"] += 1
                else:
                    on_error(item.number, parsed.reason or parsed.status)
            on_progress(handle.tell())
        flush()
        return counts
