"""Threading: which ticket an e-mail belongs to, and the identifiers Baton's own mail carries.

A message is placed by, in order:

1. **its headers**: its own ``Message-ID`` and the ids in ``In-Reply-To`` / ``References``, when
   one of them is already linked to a ticket (links of system ``email``), or when one of them is
   a Message-ID Baton itself generated (``<baton.T-0123456789abcdef.NONCE@HOST>``), which names
   its ticket;
2. **a ticket token in the subject**: ``[T-0123456789abcdef]`` (``T-`` and 16 lower-case hex
   digits, the canonical ticket id), when that ticket exists;
3. otherwise it opens a **new ticket**, even if it names ids nobody knows (a forwarded thread).

Parsing (pure) records the candidates on the event; :func:`resolve_threads` settles them against
the store inside the transaction that ingests the batch, so two messages of one thread arriving
in one batch still land on one ticket. A message placed on an existing ticket is a
``customer.replied`` event without a subject (the ticket keeps its title) and without the history
it quotes; a new one is ``ticket.created`` with its whole text (a forwarded thread is the report).
``data["threading"]`` says which step placed it.

Outbound contract: every e-mail Baton sends sets the headers of :func:`outbound_headers` — its
own Message-ID, the subject token, ``X-Baton-Origin`` and ``X-Baton-Ticket`` (so the receiver
ignores Baton's own mail if it ever comes back) and ``Auto-Submitted`` (so well-behaved
auto-responders do not answer it, RFC 3834).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Literal

from pydantic import JsonValue
from sqlalchemy import Connection

from baton.engine.decide import new_ticket_id
from baton.model import Event, EventType, ExternalLink
from baton.signals.email.loops import BATON_ORIGIN_HEADER, BATON_TICKET_HEADER
from baton.signals.email.text import strip_quoted
from baton.store import repo

__all__ = [
    "EMAIL_SYSTEM",
    "baton_message_id",
    "find_token",
    "message_ids",
    "normalize_message_id",
    "outbound_headers",
    "resolve_threads",
    "subject_token",
    "ticket_of_message_id",
    "with_token",
]

EMAIL_SYSTEM = "email"
"""The ``ExternalLink.system`` of Message-IDs."""

_TICKET_ID = re.compile(r"^T-[0-9a-f]{16}$")
_TOKEN = re.compile(r"\[T-([0-9a-fA-F]{16})\]")
_BATON_ID = re.compile(r"^baton\.(T-[0-9a-f]{16})\.[^@]+@")
_ANGLE = re.compile(r"<([^<>]*)>")
_MAX_ID = 256  # ExternalLink.id and Event.event_id
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")


def subject_token(ticket_id: str) -> str:
    """The token that threads replies by subject: ``[T-0123456789abcdef]``."""
    if not _TICKET_ID.match(ticket_id):
        raise ValueError(f"not a canonical ticket id: {ticket_id!r}")
    return f"[{ticket_id}]"


def with_token(subject: str, ticket_id: str) -> str:
    """``subject`` carrying the ticket's token once, at the end (where clients leave it alone)."""
    token = subject_token(ticket_id)
    return subject if token in subject else f"{subject.rstrip()} {token}".lstrip()


def find_token(subject: str) -> str | None:
    """The ticket id of the first token in ``subject``, if any."""
    found = _TOKEN.search(subject)
    return f"T-{found.group(1).lower()}" if found else None


def normalize_message_id(raw: str) -> str | None:
    """A Message-ID as stored (angle brackets and white space removed), or None if there is none.

    Ids longer than a link id may be, or with bytes outside printable ASCII, are replaced by a
    digest: the same one wherever the id occurs, so threading still works.
    """
    found = _ANGLE.search(raw)
    value = "".join((found.group(1) if found else raw).split())
    if not value:
        return None
    if len(value) > _MAX_ID or not _PRINTABLE.match(value):  # raw 8-bit bytes, controls
        return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()
    return value


def message_ids(raw: str) -> list[str]:
    """Every id in an ``In-Reply-To`` or ``References`` value, in the order written."""
    inside = _ANGLE.findall(raw)
    candidates = inside if inside else raw.split()
    return [mid for item in candidates if (mid := normalize_message_id(item)) is not None]


def baton_message_id(ticket_id: str, *, domain: str, nonce: str) -> str:
    """A Message-ID for mail Baton sends about ``ticket_id`` (unique per ``nonce``)."""
    subject_token(ticket_id)  # validates the id
    return f"<baton.{ticket_id}.{nonce}@{domain}>"


def ticket_of_message_id(message_id: str) -> str | None:
    """The ticket a Baton-generated Message-ID names (as normalised), else None."""
    found = _BATON_ID.match(message_id)
    return found.group(1) if found else None


def outbound_headers(
    ticket_id: str,
    *,
    subject: str,
    domain: str,
    nonce: str,
    auto: Literal["auto-generated", "auto-replied"] = "auto-generated",
) -> dict[str, str]:
    """The headers every e-mail Baton sends about a ticket must carry (see the module docstring)."""
    return {
        "Message-ID": baton_message_id(ticket_id, domain=domain, nonce=nonce),
        "Subject": with_token(subject, ticket_id),
        BATON_ORIGIN_HEADER: "baton",
        BATON_TICKET_HEADER: ticket_id,
        "Auto-Submitted": auto,
    }


def _links(event: Event) -> tuple[ExternalLink, ...]:
    """In the runtime's order: the message's own id, then the ids it refers to."""
    return ((event.external,) if event.external else ()) + event.references


def _as_reply(event: Event, *, ticket_id: str | None, how: str) -> Event:
    """A reply on a known ticket: no subject (the ticket keeps its title), and only the new text
    (the history it quotes is on the ticket already, and would re-trigger keyword rules)."""
    body = event.fields.body
    return event.model_copy(
        update={
            "type": EventType.CUSTOMER_REPLIED,
            "ticket_id": ticket_id,
            "fields": event.fields.model_copy(
                update={"subject": None, "body": strip_quoted(body) if body else body}
            ),
            "data": {**event.data, "threading": how},
        }
    )


def _as_new(event: Event) -> Event:
    data: dict[str, JsonValue] = {**event.data, "threading": "new"}
    if event.ticket_id is not None:  # a token or Baton Message-ID naming a ticket that does not exist
        flags = event.data.get("flags")
        known = [f for f in flags if isinstance(f, str)] if isinstance(flags, list) else []
        data["flags"] = [flag for flag in sorted({*known, "unknown_ticket"})]
        data["unknown_ticket"] = event.ticket_id
    return event.model_copy(update={"type": EventType.TICKET_CREATED, "ticket_id": None, "data": data})


def resolve_threads(conn: Connection, events: Sequence[Event]) -> list[Event]:
    """Settle each e-mail event's ticket (see the module docstring), in batch order.

    Run it in the transaction that ingests the events: what it reads is then what the runtime
    sees. Later events in the batch see the links and tickets of earlier ones.
    """
    linked = repo.find_links(conn, [(link.system, link.id) for e in events for link in _links(e)])
    known = set(repo.load_tickets(conn, [e.ticket_id for e in events if e.ticket_id]))
    settled: list[Event] = []
    for event in events:
        keys = [(link.system, link.id) for link in _links(event)]
        by_link = next((linked[k] for k in keys if k in linked), None)
        if by_link is not None:
            final, ticket_id = _as_reply(event, ticket_id=None, how="references"), by_link
        elif event.ticket_id is not None and event.ticket_id in known:
            how = str(event.data.get("threading") or "subject-token")
            final, ticket_id = _as_reply(event, ticket_id=event.ticket_id, how=how), event.ticket_id
        else:
            final = _as_new(event)
            ticket_id = new_ticket_id(final)
        known.add(ticket_id)
        for key in keys:
            linked.setdefault(key, ticket_id)
        settled.append(final)
    return settled
