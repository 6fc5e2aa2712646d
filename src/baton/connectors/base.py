"""The connector protocol: one method."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from baton.model import ExternalLink

__all__ = ["Connector", "Delivery", "OutboundAction"]


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
