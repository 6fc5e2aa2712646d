"""Adapters for helpdesks whose webhook body is a template the user writes (Zendesk, Freshdesk).

Neither helpdesk has one fixed webhook payload for ticket activity: an admin attaches a webhook to
a trigger or automation rule and types the JSON body, with placeholders the helpdesk fills in. So
Baton defines the body (the same keys for both; only the placeholders differ, see each vendor's
module and docs/signals.md) and each rule says what happened in its ``"event"`` field, because
the rule's conditions ("comment is public", "current user is an end user", "status changed to
solved") are what know it::

    {
      "event": "customer.replied",
      "ticket": {"id": "...", "url": "...", "subject": "...", "description": "...",
                 "status": "...", "priority": "...", "type": "...", "tags": "...", "channel": "...",
                 "requester": {"email": "...", "name": "..."}, "organization": "...",
                 "group": "...", "assignee": {"email": "...", "name": "..."}, "updated_at": "..."},
      "comment": {"body": "..."},
      "actor": {"email": "...", "name": "..."}
    }

Only ``event`` and ``ticket.id`` are required; every other key may be left out of a rule's body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from baton.errors import InputError
from baton.model import Event, EventType, ExternalLink, Priority, Stage
from baton.signals.adapters.base import (
    Delivery,
    Draft,
    build_events,
    content_id,
    header,
    obj,
    parse_time,
    tags,
    text,
)

__all__ = ["TEMPLATE_EVENTS", "TemplateAdapter", "normalise"]

TEMPLATE_EVENTS: Final = frozenset(
    {
        EventType.TICKET_CREATED,
        EventType.TICKET_UPDATED,
        EventType.CUSTOMER_REPLIED,
        EventType.AGENT_REPLIED,
        EventType.NOTE_ADDED,
        EventType.STATUS_CHANGED,
        EventType.PRIORITY_CHANGED,
        EventType.ASSIGNED,
        EventType.SOLVED,
        EventType.REOPENED,
        EventType.CLOSED,
    }
)
"""The ``"event"`` values a template rule may send: Baton's own names for ticket activity."""


def normalise(value: str) -> str:
    """``"Waiting on Customer"``, ``"waiting_on_customer"`` and ``"On-hold"`` compare alike."""
    return " ".join(value.replace("_", " ").replace("-", " ").lower().split())


class TemplateAdapter:
    """One helpdesk's template: its source name, status and priority words, delivery-id headers."""

    source: str = ""
    statuses: Mapping[str, Stage] = {}
    priorities: Mapping[str, Priority] = {}
    delivery_headers: Sequence[str] = ()
    """Headers that together identify a delivery (all must be present), tried before the body."""

    def parse(self, delivery: Delivery) -> list[Event]:
        """The one event the rule's ``"event"`` names, about the ticket in ``"ticket"``."""
        payload = delivery.payload
        if not isinstance(payload, dict):
            raise InputError(f"a {self.source} webhook body is a JSON object")
        kind = self._kind(payload)
        ticket = obj(payload, "ticket")
        ticket_id = text(ticket, "id")
        if ticket_id is None:
            raise InputError(f"{self.source} webhook body has no ticket.id")
        external = ExternalLink(system=self.source, id=ticket_id, url=text(ticket, "url"))
        draft = Draft(
            type=kind,
            occurred_at=parse_time(text(ticket, "updated_at")) or delivery.received_at,
            fields=self._fields(kind, ticket, payload),
            actor=self._actor(kind, payload),
            data=self._data(kind, ticket, payload),
        )
        return build_events(
            source=self.source, delivery_id=self._delivery_id(delivery), external=external, drafts=[draft]
        )

    # -- pieces ------------------------------------------------------------------------------

    def _kind(self, payload: dict[str, Any]) -> EventType:
        name = text(payload, "event")
        if name is None:
            raise InputError(f'{self.source} webhook body has no "event" (see docs/signals.md)')
        try:
            kind = EventType(name)
        except ValueError:
            kind = None
        if kind not in TEMPLATE_EVENTS:
            allowed = ", ".join(sorted(e.value for e in TEMPLATE_EVENTS))
            raise InputError(f"{self.source} webhook: unknown event {name[:64]!r} (one of: {allowed})")
        assert kind is not None  # for mypy: membership above excludes None
        return kind

    def _delivery_id(self, delivery: Delivery) -> str:
        found = [header(delivery.headers, name) for name in self.delivery_headers]
        if found and all(found):
            return ":".join(value for value in found if value)
        return text(delivery.payload, "delivery_id") or content_id(delivery.body)

    def status(self, value: str | None) -> Stage | None:
        return self.statuses.get(normalise(value)) if value else None

    def priority(self, value: str | None) -> Priority | None:
        return self.priorities.get(normalise(value)) if value else None

    def _fields(self, kind: EventType, ticket: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        comment = text(payload, "comment", "body")
        match kind:
            case EventType.TICKET_CREATED | EventType.TICKET_UPDATED:
                fields: dict[str, Any] = {
                    "subject": text(ticket, "subject"),
                    "requester": text(ticket, "requester", "email") or text(ticket, "requester", "name"),
                    "account_id": text(ticket, "organization"),
                    "channel": _lower(text(ticket, "channel")),
                    "category": text(ticket, "type"),
                    "priority": self.priority(text(ticket, "priority")),
                    "tags": tags(ticket.get("tags")),
                }
                if kind == EventType.TICKET_CREATED:
                    fields |= {
                        "body": text(ticket, "description") or comment,
                        "status": self.status(text(ticket, "status")),
                        "team": text(ticket, "group"),
                        "assignee": text(ticket, "assignee", "email") or text(ticket, "assignee", "name"),
                    }
                return fields
            case EventType.CUSTOMER_REPLIED:
                return {"body": comment}
            case EventType.STATUS_CHANGED:
                return {"status": self.status(text(ticket, "status"))}
            case EventType.PRIORITY_CHANGED:
                return {"priority": self.priority(text(ticket, "priority"))}
            case EventType.ASSIGNED:
                # An empty assignee is a statement too: the ticket was unassigned.
                person = text(ticket, "assignee", "email") or text(ticket, "assignee", "name") or ""
                return {"assignee": person, "team": text(ticket, "group")}
            case _:
                return {}

    def _actor(self, kind: EventType, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Who made the change (the rule's current user). Replies and notes say which side they
        come from; for anything else the requester acting on their own ticket is the customer."""
        actor = obj(payload, "actor")
        email, name = text(actor, "email"), text(actor, "name")
        role = {
            EventType.CUSTOMER_REPLIED: "customer",
            EventType.AGENT_REPLIED: "agent",
            EventType.NOTE_ADDED: "agent",
        }.get(kind)
        if email is None and name is None and role is None:
            return None
        if role is None:
            requester = text(payload, "ticket", "requester", "email")
            same = email is not None and requester is not None and email.lower() == requester.lower()
            role = "customer" if same else "agent"
        return {"kind": role, "email": email, "name": name}

    def _data(self, kind: EventType, ticket: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {"ticket_status": text(ticket, "status")}
        if kind in (EventType.AGENT_REPLIED, EventType.NOTE_ADDED):
            # What agents write is not "what the customer reported": it stays out of fields.body.
            comment = text(payload, "comment", "body")
            data["comment"] = comment[:10_000] if comment else None
        return data


def _lower(value: str | None) -> str | None:
    """Channels compare in lower case in policies ("email", "web"), whatever the helpdesk renders."""
    return value.lower() if value else None
