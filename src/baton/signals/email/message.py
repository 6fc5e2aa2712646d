"""One e-mail message (RFC 5322 bytes) to a canonical :class:`Event`, or an :class:`Ignored` verdict.

:func:`parse_message` is total over its input: any byte string yields an event, an ``Ignored``
verdict, or an :class:`InputError` saying why the message was refused (``TooLargeError`` over
the size limit). Damage that still leaves a usable message degrades it instead, and names the
damage in ``data["flags"]``:

==========================  ================================================================
flag                        meaning
==========================  ================================================================
``charset_fallback``        a declared charset was unknown or wrong; text decoded by guessing
``mime_defects``            the parser repaired the structure (``data["defects"]`` says how)
``message_id_missing``      no Message-ID; the event id is a digest of the bytes
``date_missing``            no usable Date; the received time is used
``subject_truncated``,      over the canonical event's limits; the rest is in the raw message
``body_truncated``
``too_many_parts``,         over the part or attachment count limits; the rest is not read
``too_many_attachments``
``attachment_over_cap``     an attachment over a size cap was recorded, not stored
                            (``data["attachments_not_stored"]`` names them)
``attachment_unreadable``   an attachment's content could not be decoded
``unknown_ticket``          (set by threading) a subject token or Baton Message-ID named a
                            ticket that does not exist; a new ticket was opened
==========================  ================================================================

With a store, the raw message is kept too (``data["raw"]``: sha256, size, uri; unless
``BATON_EMAIL_KEEP_RAW`` is off), so a degraded message can always be read again in full.

The parser is the stdlib's ``compat32`` one (a fixed, forgiving grammar), with every header
decoded here so that odd charsets and raw 8-bit bytes cannot make it raise.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from pydantic import JsonValue, ValidationError

from baton.errors import InputError, TooLargeError
from baton.model import Actor, Event, EventType, ExternalLink, TicketFields
from baton.signals.canonical import validation_message
from baton.signals.email.attachments import AttachmentStore, Budget
from baton.signals.email.loops import Ignored, MailFacts, check_loops
from baton.signals.email.parts import read_parts
from baton.signals.email.text import decode_bytes, decode_header_text, safe_text
from baton.signals.email.threads import (
    EMAIL_SYSTEM,
    find_token,
    message_ids,
    normalize_message_id,
    ticket_of_message_id,
)

__all__ = ["MailOptions", "parse_message"]

_MAX_SUBJECT = 1_000
_MAX_BODY = 100_000
_MAX_HEADER = 8_192  # longer values are cut before decoding (bounds the work per header)
_MAX_REFERENCES = 100
_MAX_ADDRESSES = 50
_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+$")


@dataclass(frozen=True)
class MailOptions:
    """Limits and choices of the e-mail signal; built from :class:`~baton.settings.Settings`."""

    max_message_bytes: int = 26_214_400
    max_attachment_bytes: int = 10_485_760
    max_attachments_bytes: int = 26_214_400
    max_parts: int = 1_000
    allowed_lists: Collection[str] = ()
    keep_raw: bool = True
    source: str = "email"


class _RawHeaders(Compat32):
    """compat32, but header values come back as parsed (8-bit bytes surrogate-escaped): decoding
    them is this module's job, with fallbacks, rather than ``email.header.Header``'s."""

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_POLICY = _RawHeaders()


@dataclass
class _Headers:
    values: dict[str, tuple[str, ...]]
    flags: set[str] = field(default_factory=set)

    def raw(self, name: str) -> str | None:
        found = self.values.get(name)
        return found[0] if found else None

    def text(self, name: str) -> str:
        raw = self.raw(name)
        if raw is None:
            return ""
        text, fell_back = decode_header_text(raw[:_MAX_HEADER])
        if fell_back:
            self.flags.add("charset_fallback")
        return text


def _parse(raw: bytes) -> Message:
    try:
        return BytesParser(policy=_POLICY).parsebytes(raw)
    except RecursionError:
        raise TooLargeError("MIME structure nested too deeply", limit="depth") from None
    except (ValueError, LookupError, TypeError, IndexError, AttributeError) as exc:
        raise InputError(f"unparseable message: {exc.__class__.__name__}") from None


def _headers(msg: Message) -> _Headers:
    collected: dict[str, list[str]] = {}
    for name, value in msg.items():
        collected.setdefault(str(name).strip().lower(), []).append(str(value))
    return _Headers({k: tuple(v) for k, v in collected.items()})


def _address(raw: str | None) -> tuple[str | None, str]:
    """``(address, display name)`` of the first mailbox in ``raw``; address None if unusable."""
    if not raw:
        return None, ""
    text, _ = decode_bytes(raw[:2_000].encode("utf-8", "surrogateescape"), None)
    name, addr = parseaddr(text)
    addr = addr.strip().lower()
    shown, _ = decode_header_text(name)
    return (addr if _ADDRESS.match(addr) and len(addr) <= 320 else None), shown[:200]


def _addresses(values: tuple[str, ...]) -> list[str]:
    texts = [decode_bytes(v[:_MAX_HEADER].encode("utf-8", "surrogateescape"), None)[0] for v in values]
    found = [addr.strip().lower() for _, addr in getaddresses(texts)]
    return list(dict.fromkeys(a for a in found if _ADDRESS.match(a)))[:_MAX_ADDRESSES]


def _occurred_at(headers: _Headers, *, received_at: datetime, trust_date: bool) -> datetime:
    if not trust_date:
        return received_at
    raw = headers.raw("date")
    try:
        when = parsedate_to_datetime(raw[:200]) if raw else None
    except (ValueError, TypeError, IndexError, OverflowError):
        when = None
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # "-0000": a time in UTC from an unknown zone (RFC 5322)
    if when is None or not (datetime(1990, 1, 1, tzinfo=UTC) <= when <= received_at + timedelta(days=1)):
        headers.flags.add("date_missing")
        return received_at
    return when


def _thread_ids(headers: _Headers, own: str | None) -> list[str]:
    """Ids this message answers: the direct parent first, then References from the nearest back."""
    parents = message_ids(headers.raw("in-reply-to") or "")
    ancestors = list(reversed(message_ids(headers.raw("references") or "")))
    ids = [mid for mid in dict.fromkeys(parents + ancestors) if mid != own]
    return ids[:_MAX_REFERENCES]


def _sender(headers: _Headers, envelope_sender: str | None) -> tuple[str | None, str]:
    """The first usable address of From, Sender, Reply-To and the envelope, with its name."""
    for raw in (headers.raw("from"), headers.raw("sender"), headers.raw("reply-to"), envelope_sender):
        address, shown = _address(raw)
        if address is not None:
            return address, shown
    return None, ""


def parse_message(
    raw: bytes,
    *,
    received_at: datetime,
    options: MailOptions | None = None,
    store: AttachmentStore | None = None,
    envelope_sender: str | None = None,
    recipients: tuple[str, ...] = (),
    trust_date: bool = False,
) -> Event | Ignored:
    """Parse one message into an e-mail event (see the module docstring).

    ``received_at`` is when Baton got it: the event's time, unless ``trust_date`` (imports of
    history) makes it the message's Date. ``envelope_sender`` is the SMTP ``MAIL FROM`` (``""``
    for the null sender of bounces; None when unknown). With a ``store``, attachments (and the
    raw message, if kept) are written to it, which may raise :class:`~baton.errors.StoreError`.
    """
    opts = options or MailOptions()
    if envelope_sender is not None and envelope_sender.strip() in ("", "<>"):
        envelope_sender = ""  # the null sender, however the SMTP library spells it
    if len(raw) > opts.max_message_bytes:
        raise TooLargeError(f"message of {len(raw)} bytes is over the limit of {opts.max_message_bytes}")
    if not raw.strip():
        raise InputError("empty message")
    msg = _parse(raw)
    headers = _headers(msg)
    if not headers.values:
        raise InputError("not an e-mail message: no header fields")
    own_id = normalize_message_id(headers.raw("message-id") or "")
    sender, sender_name = _sender(headers, envelope_sender)
    subject = headers.text("subject")
    verdict = check_loops(
        MailFacts(
            headers={k: tuple(v[:_MAX_HEADER] for v in vs) for k, vs in headers.values.items()},
            sender=sender,
            envelope_sender=envelope_sender,
            subject=subject,
            content_type=msg.get_content_type(),
            allowed_lists=opts.allowed_lists,
        ),
        message_id=own_id,
    )
    if verdict is not None:
        return verdict
    if sender is None:
        raise InputError("no usable sender address (From, Sender, Reply-To or envelope)")
    return _event(
        msg,
        raw,
        headers=headers,
        own_id=own_id,
        sender=(sender, sender_name),
        subject=subject,
        occurred_at=_occurred_at(headers, received_at=received_at, trust_date=trust_date),
        opts=opts,
        store=store,
        recipients=recipients,
    )


def _event(
    msg: Message,
    raw: bytes,
    *,
    headers: _Headers,
    own_id: str | None,
    sender: tuple[str, str],
    subject: str,
    occurred_at: datetime,
    opts: MailOptions,
    store: AttachmentStore | None,
    recipients: tuple[str, ...],
) -> Event:
    flags = headers.flags
    data: dict[str, JsonValue] = {}
    if own_id is None:
        flags.add("message_id_missing")
        own_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    thread = _thread_ids(headers, own_id)
    ticket_id = next((t for mid in thread if (t := ticket_of_message_id(mid)) is not None), None)
    threading = "baton-message-id" if ticket_id else None
    if ticket_id is None and (token := find_token(subject)) is not None:
        ticket_id, threading = token, "subject-token"
    threading = threading or ("references" if thread else "new")

    budget = Budget(per_file=opts.max_attachment_bytes, per_message=opts.max_attachments_bytes)
    content = read_parts(msg, store=store, budget=budget, max_parts=opts.max_parts)
    flags |= content.flags
    if content.defects:
        flags.add("mime_defects")
        data["defects"] = [name for name in sorted(content.defects)[:20]]
    if content.not_stored:
        data["attachments_not_stored"] = [name for name in content.not_stored]
    body = content.text  # quoted history is dropped once threading knows this is a reply
    if len(body) > _MAX_BODY:
        flags.add("body_truncated")
        body = body[:_MAX_BODY]
    if len(subject) > _MAX_SUBJECT:
        flags.add("subject_truncated")
        subject = subject[:_MAX_SUBJECT]
    if store is not None and opts.keep_raw:
        kept = store.put(raw)
        data["raw"] = {"sha256": kept.sha256, "size": kept.size, "uri": kept.uri}
    for key, name in (("to", "to"), ("cc", "cc")):
        found = _addresses(headers.values.get(name, ()))
        if found:
            data[key] = [address for address in found]
    reply_to, _ = _address(headers.raw("reply-to"))
    if reply_to and reply_to != sender[0]:
        data["reply_to"] = reply_to
    if recipients:
        data["recipients"] = [safe_text(r[:320]) for r in recipients[:_MAX_ADDRESSES]]
    data["threading"] = threading
    if flags:
        data["flags"] = [flag for flag in sorted(flags)]
    try:
        return Event(
            source=opts.source,
            event_id=own_id,
            type=EventType.TICKET_CREATED if threading == "new" else EventType.CUSTOMER_REPLIED,
            occurred_at=occurred_at,
            ticket_id=ticket_id,
            external=ExternalLink(system=EMAIL_SYSTEM, id=own_id),
            references=tuple(ExternalLink(system=EMAIL_SYSTEM, id=mid) for mid in thread),
            fields=TicketFields(subject=subject, body=body, requester=sender[0], channel="email"),
            attachments=tuple(content.attachments),
            actor=Actor(kind="customer", email=sender[0], name=sender[1] or None),
            data=data,
        )
    except ValidationError as exc:  # a limit this module failed to enforce: refuse, do not crash
        raise InputError(f"message does not fit the canonical event: {validation_message(exc)}") from None
