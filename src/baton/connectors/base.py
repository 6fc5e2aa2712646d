"""The connector protocol: one method."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

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
    """What the target said: its id for the effect, and any detail worth keeping on the record."""

    external_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Connector(Protocol):
    """Deliver one action or raise ``TransientConnectorError`` / ``PermanentConnectorError``."""

    name: str

    def send(self, action: OutboundAction) -> Delivery: ...
