"""Frozen domain types: the canonical event, ticket, account, decision and audit entry.

Everything the decision core sees or returns is one of these immutable values.

Two kinds, on purpose:

- the *wire* types (:class:`Event` and its parts) are Pydantic models: they validate untrusted
  input and publish the JSON Schema (``baton schema event``);
- the *internal* types (:class:`Ticket`, :class:`Decision`...) are frozen, slotted dataclasses:
  the decision core builds thousands of them per second, and constructing a dataclass costs a
  fraction of validating a model. They are validated once, where they enter from storage, by the
  adapters at the bottom of this module (:func:`load`, :func:`dump`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, StringConstraints, TypeAdapter

__all__ = [
    "Account",
    "Action",
    "Actor",
    "Artifact",
    "Attachment",
    "AuditEntry",
    "Change",
    "Context",
    "Decision",
    "EscalationRecord",
    "Event",
    "EventType",
    "ExternalLink",
    "Frozen",
    "JsonText",
    "Owner",
    "Participant",
    "Priority",
    "Raci",
    "Reason",
    "SlaClock",
    "Stage",
    "Ticket",
    "TicketFields",
    "TimerSpec",
    "dump",
    "json_default",
    "load",
    "replace",
    "to_json",
]

Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Source = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
ShortText = Annotated[str, StringConstraints(max_length=1_000)]
LongText = Annotated[str, StringConstraints(max_length=100_000)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Frozen(BaseModel):
    """Base of every domain value: immutable, and unknown fields are an error, not a silent drop."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class EventType(enum.StrEnum):
    """What happened. Signal adapters map every vendor's vocabulary onto these."""

    TICKET_CREATED = "ticket.created"
    TICKET_UPDATED = "ticket.updated"
    CUSTOMER_REPLIED = "customer.replied"
    AGENT_REPLIED = "agent.replied"
    NOTE_ADDED = "note.added"
    STATUS_CHANGED = "status.changed"
    PRIORITY_CHANGED = "priority.changed"
    ASSIGNED = "ticket.assigned"
    SOLVED = "ticket.solved"
    REOPENED = "ticket.reopened"
    CLOSED = "ticket.closed"
    ALERT_FIRED = "alert.fired"
    ALERT_RESOLVED = "alert.resolved"
    TIMER_FIRED = "timer.fired"
    OVERRIDE = "override"


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Stage(enum.StrEnum):
    """Where a ticket is in its life. ``pending`` means waiting on the customer."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ESCALATED = "escalated"
    SOLVED = "solved"
    CLOSED = "closed"


class Raci(enum.StrEnum):
    RESPONSIBLE = "responsible"
    ACCOUNTABLE = "accountable"
    CONSULTED = "consulted"
    INFORMED = "informed"


class ExternalLink(Frozen):
    """The same ticket as another system knows it: ``(system, id, url)``."""

    system: Source
    id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    url: Annotated[str, StringConstraints(max_length=2_048)] | None = None


class Actor(Frozen):
    kind: Literal["customer", "agent", "system"] = "system"
    id: ShortText | None = None
    name: ShortText | None = None
    email: ShortText | None = None


class TicketFields(Frozen):
    """Ticket fields an event may carry; ``None`` means "not stated by this event"."""

    subject: ShortText | None = None
    body: LongText | None = None
    account_id: ShortText | None = None
    channel: Annotated[str, StringConstraints(max_length=64)] | None = None
    requester: ShortText | None = None
    category: Annotated[str, StringConstraints(max_length=128)] | None = None
    severity: Annotated[str, StringConstraints(max_length=32)] | None = None
    priority: Priority | None = None
    status: Stage | None = None
    tags: Annotated[tuple[Tag, ...], Field(max_length=100)] | None = None
    team: Annotated[str, StringConstraints(max_length=128)] | None = Field(
        default=None, description="The team the source system moved the ticket to (a human handoff)."
    )
    tier: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="The support tier the source system set."
    )
    assignee: ShortText | None = Field(default=None, description="The person the source system assigned.")


class Attachment(Frozen):
    """A file that came with an event (e-mail attachment, uploaded log), stored by the signal."""

    name: ShortText
    type: Annotated[str, StringConstraints(max_length=255)] = "application/octet-stream"
    size: int = Field(ge=0)
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    uri: Annotated[str, StringConstraints(max_length=2_048)] | None = None


class Event(Frozen):
    """A canonical event: the one shape every signal becomes before the engine sees it.

    ``(source, event_id)`` identifies a delivery: the same pair twice is the same event and is
    stored once. The ticket is found by ``ticket_id`` (canonical), else by ``external``, else by
    any of ``references`` (other ids of the same conversation, such as the Message-IDs an e-mail
    replies to); every one of them is linked to the ticket.
    """

    source: Source
    event_id: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    type: EventType
    occurred_at: AwareDatetime
    ticket_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    external: ExternalLink | None = None
    references: Annotated[tuple[ExternalLink, ...], Field(max_length=100)] = ()
    fields: TicketFields = TicketFields()
    attachments: Annotated[tuple[Attachment, ...], Field(max_length=100)] = ()
    actor: Actor | None = None
    data: dict[Annotated[str, StringConstraints(max_length=128)], JsonValue] = Field(default_factory=dict)


_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """Commercial context of a customer: what a ticket risks."""

    id: str
    name: str | None = None
    plan: str | None = None
    mrr: float | None = None
    renewal_date: date | None = None
    health: str | None = None
    csm: str | None = None
    ae: str | None = None
    flags: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()

    @property
    def arr(self) -> float | None:
        return None if self.mrr is None else self.mrr * 12


@dataclass(frozen=True, slots=True, kw_only=True)
class Owner:
    """Owner of record: a role, resolved to a person at the time of assignment."""

    role: str
    person: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Participant:
    person: str
    raci: Raci
    role: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaClock:
    """One SLA target on a ticket, measured in business time on its policy's calendar.

    ``consumed_ms`` is business time used before the current running segment, which began at
    ``running_since`` (None while paused or stopped); ``paused_ms`` is wall time spent paused.
    """

    name: str
    started_at: datetime
    due_at: datetime
    policy_version: str
    sla_policy: str = ""
    calendar: str = "24x7"
    target_ms: int = 0
    consumed_ms: int = 0
    running_since: datetime | None = None
    paused_at: datetime | None = None
    paused_ms: int = 0
    stopped_at: datetime | None = None
    breached: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationRecord:
    at: datetime
    rule: str
    kind: Literal["functional", "hierarchical"]
    mode: Literal["assist", "handoff"]
    from_tier: str | None
    to_tier: str | None
    from_owner: Owner | None
    to_owner: Owner | None
    policy_version: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    kind: str
    name: str
    uri: str | None = None
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True, kw_only=True)  # not slotted: replace() copies its __dict__ in one step
class Ticket:
    """The canonical ticket (capability T1): one record, however many systems know it."""

    id: str
    created_at: datetime
    updated_at: datetime
    external_links: tuple[ExternalLink, ...] = ()
    account_id: str | None = None
    channel: str | None = None
    requester: str | None = None
    subject: str = ""
    body: str = ""
    category: str | None = None
    severity: str | None = None
    priority: Priority = Priority.NORMAL
    tier: str | None = None
    stage: Stage = Stage.NEW
    queue: str | None = None
    team: str | None = None
    owner: Owner | None = None
    # Who talks to the customer when that is not the owner of record: the previous owner after a
    # split handoff (ownership moved, customer communication stayed); None: the owner does.
    communication_owner: Owner | None = None
    participants: tuple[Participant, ...] = ()
    sla: tuple[SlaClock, ...] = ()
    escalations: tuple[EscalationRecord, ...] = ()
    artifacts: tuple[Artifact, ...] = ()
    tags: tuple[str, ...] = ()
    stage_since: datetime | None = None
    brief: dict[str, str] = field(default_factory=dict)
    sla_policy: str | None = None
    sla_held_by: str | None = (
        None  # a person paused the SLA by hand; only they (or another override) resume it
    )
    first_response_at: datetime | None = None
    solved_at: datetime | None = None
    reopen_count: int = 0
    customer_replies: int = 0
    agent_replies: int = 0
    policy_version: str | None = None
    version: int = 0

    def clock(self, name: str) -> SlaClock | None:
        return next((c for c in self.sla if c.name == name), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What enrichment knows about a ticket when the decision is made. Missing context is ``None``
    and named in ``gaps``, so a decision can say what it did without.

    ``signals`` are text and history signals (keywords, sentiment, repeat contacts...);
    ``loads`` the open tickets per person, for load-aware assignment."""

    account: Account | None = None
    signals: dict[str, JsonValue] = field(default_factory=dict)
    loads: dict[str, int] = field(default_factory=dict)
    gaps: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)  # not slotted: see _RECORD_TYPES
class Action:
    """An outbound effect. ``name`` is unique within its decision and stable across re-decisions,
    so the idempotency key derived from (ticket, decision, action name) is stable too."""

    name: str
    connector: str
    kind: str
    params: dict[str, JsonValue] = field(default_factory=dict)
    rule: str | None = None
    approval: Literal["none", "required", "notify_after"] = "none"
    author: str | None = None
    shadow: bool = False


@dataclass(frozen=True, kw_only=True)  # not slotted: see _RECORD_TYPES
class TimerSpec:
    """A durable timer: setting a name that is already pending on the ticket moves it."""

    name: str
    due_at: datetime
    data: dict[str, JsonValue] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)  # not slotted: see _RECORD_TYPES
class Change:
    field: str
    before: Any  # JSON-ready values
    after: Any


@dataclass(frozen=True, kw_only=True)  # not slotted: see _RECORD_TYPES
class Reason:
    """Why: which rule was considered, whether it matched, and the inputs it saw."""

    rule: str
    matched: bool
    inputs: dict[str, Any] = field(default_factory=dict)  # JSON-ready values
    note: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """Everything ``decide`` concluded for one event; the runtime applies it in one transaction."""

    id: str
    ticket_id: str
    event_source: str
    event_id: str
    policy_version: str
    decided_at: datetime
    ticket: Ticket
    changes: tuple[Change, ...] = ()
    actions: tuple[Action, ...] = ()
    timers_set: tuple[TimerSpec, ...] = ()
    timers_cancel: tuple[str, ...] = ()
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One link of the hash chain. ``hash = sha256(prev_hash || canonical_json(entry))``."""

    seq: int
    at: datetime
    kind: str
    ticket_id: str | None
    body: dict[str, Any]
    prev_hash: str
    hash: str


# Action, TimerSpec, Change and Reason are what a decision record is made of, and every decision
# is serialised (the store, the audit chain, replay's decisions.jsonl). orjson writes a dataclass
# with a __dict__ several times faster than a slotted one; building one costs about the same.
_RECORD_TYPES = (Action, TimerSpec, Change, Reason)


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of a frozen domain value with some fields changed.

    ``dataclasses.replace`` re-runs ``__init__`` field by field; our internal types have no
    ``__post_init__``, so copying the slots directly gives the same result several times faster
    on the decision hot path. Unknown field names are still refused.
    """
    cls = type(obj)
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = frozenset(f.name for f in dataclass_fields(cls))  # type: ignore[arg-type]
    if not names.issuperset(changes):
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(changes.keys() - names)}")
    new = object.__new__(cls)
    if hasattr(obj, "__dict__"):
        object.__setattr__(new, "__dict__", {**obj.__dict__, **changes})  # frozen: set it as __init__ would
        return new
    for name in names:
        object.__setattr__(new, name, changes[name] if name in changes else getattr(obj, name))
    return new


_FIELDS: dict[type, frozenset[str]] = {}

_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(cls: type[_T]) -> TypeAdapter[_T]:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


def load(cls: type[_T], data: Any) -> _T:
    """Validate stored or external data into an internal type (raises pydantic's ValidationError)."""
    return _adapter(cls).validate_python(data)


def json_default(value: Any) -> Any:
    """orjson's fallback for the wire types (Pydantic models) nested inside internal ones."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class JsonText(str):
    """JSON text serialised already: a JSON column stores it as it is instead of serialising it
    again (an event body or decision record whose canonical text was made for the audit chain)."""

    __slots__ = ()


def to_json(value: Any, *, sort_keys: bool = False) -> bytes:
    """Serialise any domain value (dataclasses, models, datetimes, enums) to JSON bytes."""
    return orjson.dumps(value, default=json_default, option=orjson.OPT_SORT_KEYS if sort_keys else 0)


def dump(value: Any) -> Any:
    """An internal value as JSON-ready data (dicts, lists, strings, numbers).

    orjson serialises dataclasses, enums and datetimes natively and fast; the round trip through
    bytes is still cheaper than walking the value in Python.
    """
    return orjson.loads(to_json(value))
