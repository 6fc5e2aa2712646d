"""The connector protocol: one method."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from baton.errors import DeferredDelivery
from baton.model import ExternalLink

__all__ = [
    "CREATED",
    "SETTLE_SECONDS",
    "Connector",
    "Delivery",
    "Foreseen",
    "OutboundAction",
    "foreseen",
    "settle_before_creating",
]


@dataclass(frozen=True)
class OutboundAction:
    """One action on its way out. ``key`` is the idempotency key: the same effect, the same key,
    however many times delivery is attempted; connectors pass it to vendors that accept one."""

    key: str
    ticket_id: str
    connector: str
    kind: str
    params: Mapping[str, Any]
    attempt: int


@dataclass(frozen=True)
class Delivery:
    """What the target said.

    ``external_id`` is the target's id for the effect (a message ts, an issue key, a comment id)
    and ``detail`` anything worth keeping on the record (both go on the audit chain).

    ``link`` is the item in the target's system that this action created or changed (a Jira
    issue, a Linear issue, a Zendesk ticket, a Salesforce case), as ``(system, id, url)``: the
    outbox records it as an external link of the canonical ticket, so the item's own webhooks
    come back to that ticket. ``wrote`` is what the action set on that item, in Baton's
    vocabulary (``assignee``, ``team``, ``tier``, ``priority``, ``status``): when the item's
    webhook later reports exactly those values, the engine recognises Baton's own change coming
    back and does not act on it again (no echo loops).
    """

    external_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    link: ExternalLink | None = None
    wrote: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Connector(Protocol):
    """Deliver one action or raise ``TransientConnectorError`` / ``PermanentConnectorError``."""

    name: str

    def send(self, action: OutboundAction) -> Delivery: ...


CREATED = "created"
"""In :attr:`Foreseen.wrote`: the item is being created for this ticket (the value)."""


@dataclass(frozen=True)
class Foreseen:
    """An item a send will write whose id is known before it is sent (a connector that chooses
    the ids of what it creates), with what it will write there. The outbox records it with the
    attempt, before the send: the item's webhook may come back before the send's answer does, or
    instead of it when the answer is lost."""

    system: str
    external_id: str
    wrote: Mapping[str, str]


def foreseen(connector: object, action: OutboundAction) -> list[Foreseen]:
    """What ``connector`` says ``action`` will write (its optional ``foresee``), else nothing."""
    foresee = getattr(connector, "foresee", None)
    return list(foresee(action)) if callable(foresee) else []


SETTLE_SECONDS = 30.0
"""How long a retried create waits for an eventually consistent search, by default."""


def settle_before_creating(action: OutboundAction, *, what: str, seconds: float) -> None:
    """Call when a retried create searched for its own earlier attempt and found nothing.

    The earlier attempt may have created the item (its answer lost, or the worker killed before
    recording it) where the vendor's search cannot see it yet: Jira's and HubSpot's searches are
    eventually consistent. So every second attempt (2, 4, ...) is put off for ``seconds`` and
    searches again; the attempt after it creates. Each create after the first thus comes at least
    ``seconds`` after the attempt before it, which is the vendor's indexing window to reckon with.
    Raises :class:`~baton.errors.DeferredDelivery` (not a failure) when this attempt must wait.
    """
    if seconds > 0 and action.attempt >= 2 and action.attempt % 2 == 0:
        raise DeferredDelivery(
            f"{what}: an earlier attempt may have created it where search cannot see it yet; "
            f"searching again in {seconds:g} s before creating",
            retry_after=seconds,
        )
