"""The contract of a signal adapter, and the small helpers every adapter shares.

An adapter turns one vendor delivery (a webhook request that has already been authenticated) into
canonical :class:`~baton.model.Event` values. It has one method, :meth:`SignalAdapter.parse`, and
it is pure: no clock (the time of receipt comes in the :class:`Delivery`), no I/O, no settings.
Authentication, size and rate limits, and handing events to the engine are the endpoint's work
(:mod:`baton.signals.webhooks`), written once for every source.

Identity of a delivery, so that a redelivery is recognised and stored once:

* the vendor's delivery id (a header or a payload field) when it sends one;
* otherwise the SHA-256 of the raw body (:func:`content_id`): a retry carries the same bytes;
* when one delivery yields several events, the first keeps the id and the others add ``#<index>``
  (:func:`event_ids`), so parsing the same delivery again gives the same ids.

Errors: a payload that is not what the vendor documents raises :class:`~baton.errors.InputError`
(the endpoint answers 422, which vendors do not retry); structural limits raise
:class:`~baton.errors.TooLargeError` (400).
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol, runtime_checkable

import orjson
from pydantic import ValidationError

from baton.errors import InputError, TooLargeError
from baton.model import Event, EventType, ExternalLink
from baton.signals.canonical import validation_message

__all__ = [
    "CLAIMS_TICKET",
    "MAX_ID_LENGTH",
    "Delivery",
    "Draft",
    "SignalAdapter",
    "build_events",
    "clip_id",
    "content_id",
    "event_ids",
    "header",
    "html_text",
    "load_json",
    "obj",
    "parse_time",
    "seq",
    "tags",
    "text",
]

MAX_ID_LENGTH: Final = 256
# The ``data`` key of an event whose item names a ticket by something anyone could have written
# (a label): a claim the engine checks (engine.runtime), never a ``ticket_id``.
CLAIMS_TICKET: Final = "claims_ticket"
# Longest text kept per canonical field; longer vendor text is cut, not refused (see TicketFields).
_FIELD_LIMITS: Final = {
    "subject": 1_000,
    "body": 100_000,
    "account_id": 1_000,
    "channel": 64,
    "requester": 1_000,
    "category": 128,
    "severity": 32,
    "team": 128,
    "tier": 64,
    "assignee": 1_000,
}
_MAX_TAGS: Final = 100
_MAX_TAG_LENGTH: Final = 64
_EPOCH_MS_THRESHOLD: Final = 100_000_000_000  # later than this as seconds is the year 5138: it is ms
_BLOCK_TAGS: Final = re.compile(r"<\s*(br|/p|/div|/li|/h[1-6])\b[^>]*>", re.IGNORECASE)
_ANY_TAG: Final = re.compile(r"<[^>]*>")


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One authenticated webhook request: the raw bytes, the parsed JSON, headers, time of receipt."""

    body: bytes
    payload: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    received_at: datetime

    @classmethod
    def from_bytes(
        cls,
        body: bytes,
        *,
        received_at: datetime,
        headers: Mapping[str, str] | None = None,
        max_depth: int = 32,
        max_array: int = 1_000,
    ) -> Delivery:
        """Parse ``body`` as JSON within the limits (see :func:`load_json`)."""
        if received_at.utcoffset() is None:
            raise ValueError("received_at must be timezone-aware")
        payload = load_json(body, max_depth=max_depth, max_array=max_array)
        return cls(body=body, payload=payload, headers=headers or {}, received_at=received_at)


@runtime_checkable
class SignalAdapter(Protocol):
    """Maps one vendor's deliveries to canonical events.

    ``source`` is the adapter's name: its entry point in the ``baton.signals`` group, the
    ``Event.source`` of everything it produces, and the ``<source>`` of ``/v1/webhooks/<source>``.
    An empty list means "understood, nothing to record" (a topic Baton does not follow).
    """

    source: str

    def parse(self, delivery: Delivery) -> list[Event]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Draft:
    """An event before its id is known; :func:`build_events` numbers a delivery's drafts."""

    type: EventType
    occurred_at: datetime
    fields: Mapping[str, Any] = field(default_factory=dict)
    actor: Mapping[str, Any] | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


def build_events(
    *,
    source: str,
    delivery_id: str,
    external: ExternalLink,
    drafts: Sequence[Draft],
    references: Sequence[ExternalLink] = (),
    ticket_id: str | None = None,
) -> list[Event]:
    """Validated events for one delivery, with ids from :func:`event_ids`. ``ticket_id`` names
    the Baton ticket when the vendor's item says which one it belongs to (an issue Baton opened).

    Text longer than a canonical field allows is cut to fit; anything else the model refuses is an
    :class:`InputError` naming the field.
    """
    ids = event_ids(delivery_id, len(drafts))
    events = []
    for event_id, draft in zip(ids, drafts, strict=True):
        raw: dict[str, Any] = {
            "source": source,
            "event_id": event_id,
            "type": draft.type,
            "occurred_at": draft.occurred_at,
            "external": external,
            "references": tuple(references),
            "ticket_id": ticket_id,
            "fields": _fit_fields(draft.fields),
            "data": {key: value for key, value in draft.data.items() if value is not None},
        }
        if draft.actor is not None:
            raw["actor"] = {
                key: value[:1_000] if isinstance(value, str) else value
                for key, value in draft.actor.items()
                if value is not None
            }
        try:
            events.append(Event.model_validate(raw))
        except ValidationError as exc:
            raise InputError(f"{source} delivery: {validation_message(exc)}") from None
    return events


def event_ids(delivery_id: str, count: int) -> list[str]:
    """``[id, id#1, id#2, ...]``: the first event of a delivery keeps the delivery's own id."""
    base = clip_id(delivery_id)
    return [base if index == 0 else f"{base}#{index}" for index in range(count)]


def content_id(body: bytes) -> str:
    """The identity of a delivery that carries no id of its own: a hash of its exact bytes."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def clip_id(value: str) -> str:
    """``value`` if it fits an id field (with room for an index), else a stable hash of it."""
    if 0 < len(value) <= MAX_ID_LENGTH - 8:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()


# --- reading JSON ---------------------------------------------------------------------------------


def load_json(body: bytes, *, max_depth: int, max_array: int) -> Any:
    """Parse ``body`` and refuse nesting deeper than ``max_depth`` or arrays longer than ``max_array``.

    The limits bound the work later stages do on a body that is within the byte limit; orjson
    itself stops at 1,024 levels, so a hostile body cannot exhaust the stack while parsing.
    """
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc).lower():
            raise TooLargeError(f"JSON nested deeper than {max_depth} levels", limit="depth") from None
        raise InputError(f"malformed JSON: {exc}") from None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise TooLargeError(f"JSON nested deeper than {max_depth} levels", limit="depth")
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            if len(item) > max_array:
                raise TooLargeError(f"JSON array longer than {max_array} items", limit="array")
            stack.extend((child, depth + 1) for child in item)
    return value


def obj(value: Any, *keys: str) -> dict[str, Any]:
    """The object at ``value[keys[0]][keys[1]]...``, or ``{}`` when any step is missing or not one."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


def seq(value: Any, *keys: str) -> list[Any]:
    """The array at the path, or ``[]``."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, list) else []


def text(value: Any, *keys: str) -> str | None:
    """The string (or number, as text) at the path, stripped; ``None`` when absent or blank."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in any letter case, stripped; ``None`` when absent or blank."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value.strip() or None
    return None


def parse_time(value: Any, *, assume_utc: bool = False) -> datetime | None:
    """An aware datetime from ISO 8601 text or Unix seconds (or milliseconds).

    ``None`` for absent or blank values and for Go's zero time (``0001-01-01``), which
    Alertmanager sends for "not yet". A naive timestamp is UTC when ``assume_utc`` (vendors that
    document UTC without an offset), otherwise an :class:`InputError`.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) >= _EPOCH_MS_THRESHOLD else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise InputError(f"not a timestamp: {value!r}") from None
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip()
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(f"not an ISO 8601 timestamp: {raw[:64]!r}") from None
    if when.year == 1:
        return None
    if when.utcoffset() is None:
        if not assume_utc:
            raise InputError(f"timestamp without a UTC offset: {raw[:64]!r}")
        when = when.replace(tzinfo=UTC)
    return when


def html_text(value: str | None) -> str | None:
    """Readable text from a vendor's HTML message body (Intercom sends ``<p>...</p>``)."""
    if value is None:
        return None
    plain = html.unescape(_ANY_TAG.sub("", _BLOCK_TAGS.sub("\n", value)))
    plain = "\n".join(line.strip() for line in plain.splitlines()).strip()
    return plain or None


def tags(values: Any) -> tuple[str, ...] | None:
    """Tags from a list or from the space-separated text helpdesk placeholders render."""
    if isinstance(values, str):
        items: list[Any] = values.replace(",", " ").split()
    elif isinstance(values, list):
        items = values
    else:
        return None
    cleaned = []
    for item in items:
        tag = text(item) if not isinstance(item, dict) else text(item, "name")
        if tag is not None and tag not in cleaned:
            cleaned.append(tag[:_MAX_TAG_LENGTH])
    return tuple(cleaned[:_MAX_TAGS])


def _fit_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    fitted: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            continue
        limit = _FIELD_LIMITS.get(name)
        fitted[name] = value[:limit] if limit is not None and isinstance(value, str) else value
    return fitted
