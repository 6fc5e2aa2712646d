"""Intercom: webhook notifications for conversation topics.

Every notification is an object ``{"type": "notification_event", "id": "notif_...", "topic": ...,
"app_id": ..., "created_at": <unix s>, "delivery_attempts": n, "data": {"item": <conversation>}}``
(https://developers.intercom.com/docs/references/2.16/webhooks/webhook-models, notification object
and topics). The conversation item is the REST conversation model: ``id``, ``title``, ``state``
(open, closed, snoozed), ``priority`` (priority, not_priority), ``admin_assignee_id``,
``team_assignee_id``, ``source`` (the first message: ``body`` in HTML, ``author``), ``tags`` and
``conversation_parts`` (``part_type``, ``body``, ``author``, ``assigned_to``, ``created_at``).

==================================  =========================================================
topic                               canonical event
==================================  =========================================================
conversation.user.created           ticket.created (the customer's first message is the body)
conversation.admin.single.created   ticket.created (an admin wrote first)
conversation.user.replied           customer.replied
conversation.admin.replied          agent.replied
conversation.admin.noted            note.added
conversation.admin.assigned         ticket.assigned (assignee: Intercom admin id)
conversation.admin.closed           ticket.solved (Intercom conversations can be reopened)
conversation.admin.opened           ticket.reopened
conversation.admin.snoozed          status.changed to pending
conversation.admin.unsnoozed        status.changed to open
conversation.priority.updated       priority.changed (priority: high, not_priority: normal)
==================================  =========================================================

Other topics are acknowledged and ignored. The notification ``id`` is the delivery id: Intercom
retries a failed notification with the same id and a higher ``delivery_attempts``.
"""

from __future__ import annotations

from typing import Any, Final

from baton.errors import InputError
from baton.model import Event, EventType, ExternalLink, Priority, Stage
from baton.signals.adapters.base import (
    Delivery,
    Draft,
    build_events,
    content_id,
    html_text,
    obj,
    parse_time,
    seq,
    tags,
    text,
)

__all__ = ["IntercomAdapter"]

_TOPICS: Final = {
    "conversation.user.created": EventType.TICKET_CREATED,
    "conversation.admin.single.created": EventType.TICKET_CREATED,
    "conversation.user.replied": EventType.CUSTOMER_REPLIED,
    "conversation.admin.replied": EventType.AGENT_REPLIED,
    "conversation.admin.noted": EventType.NOTE_ADDED,
    "conversation.admin.assigned": EventType.ASSIGNED,
    "conversation.admin.closed": EventType.SOLVED,
    "conversation.admin.opened": EventType.REOPENED,
    "conversation.admin.snoozed": EventType.STATUS_CHANGED,
    "conversation.admin.unsnoozed": EventType.STATUS_CHANGED,
    "conversation.priority.updated": EventType.PRIORITY_CHANGED,
}
_CUSTOMER_AUTHORS: Final = frozenset({"user", "lead", "contact"})


class IntercomAdapter:
    """Intercom webhook notifications (entry point ``intercom``)."""

    source = "intercom"

    def parse(self, delivery: Delivery) -> list[Event]:
        """One event for a conversation topic in the table above; none for other topics."""
        payload = delivery.payload
        if not isinstance(payload, dict) or payload.get("type") != "notification_event":
            raise InputError('an Intercom webhook body is a "notification_event" object')
        topic = text(payload, "topic") or ""
        kind = _TOPICS.get(topic)
        if kind is None:
            return []
        item = obj(payload, "data", "item")
        conversation_id = text(item, "id")
        if conversation_id is None:
            raise InputError(f"Intercom {topic} notification has no data.item.id")
        url = text(item, "links", "conversation_web") or text(payload, "links", "conversation_web")
        part = _latest_part(item)
        occurred = parse_time(part.get("created_at")) or parse_time(payload.get("created_at"))
        draft = Draft(
            type=kind,
            occurred_at=occurred or delivery.received_at,
            fields=_fields(topic, kind, item, part),
            actor=_actor(kind, item, part),
            data={
                "topic": topic,
                "state": text(item, "state"),
                "team_assignee_id": text(item, "team_assignee_id"),
                "comment": _comment(kind, part),
            },
        )
        return build_events(
            source=self.source,
            delivery_id=text(payload, "id") or content_id(delivery.body),
            external=ExternalLink(system=self.source, id=conversation_id, url=url),
            drafts=[draft],
        )


def _latest_part(item: dict[str, Any]) -> dict[str, Any]:
    parts = [p for p in seq(item, "conversation_parts", "conversation_parts") if isinstance(p, dict)]
    return parts[-1] if parts else {}


def _fields(topic: str, kind: EventType, item: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    source = obj(item, "source")
    match kind:
        case EventType.TICKET_CREATED:
            author = obj(source, "author")
            return {
                "subject": html_text(text(item, "title") or text(source, "subject")),
                "body": html_text(text(source, "body")),
                "requester": text(author, "email") if text(author, "type") in _CUSTOMER_AUTHORS else None,
                "channel": "email" if text(source, "type") == "email" else "chat",
                "priority": _priority(item),
                "tags": tags(seq(item, "tags", "tags")),
            }
        case EventType.CUSTOMER_REPLIED:
            return {"body": html_text(text(part, "body"))}
        case EventType.ASSIGNED:
            admin = text(part, "assigned_to", "id") or text(item, "admin_assignee_id")
            # Intercom uses "0" (or nothing) for "unassigned".
            return {"assignee": "" if admin in (None, "0") else admin}
        case EventType.STATUS_CHANGED:
            return {"status": Stage.PENDING if topic.endswith(".snoozed") else Stage.OPEN}
        case EventType.PRIORITY_CHANGED:
            return {"priority": _priority(item)}
        case _:
            return {}


def _priority(item: dict[str, Any]) -> Priority | None:
    return {"priority": Priority.HIGH, "not_priority": Priority.NORMAL}.get(text(item, "priority") or "")


def _actor(kind: EventType, item: dict[str, Any], part: dict[str, Any]) -> dict[str, Any] | None:
    # Without a part, only a new conversation has an author: its first message's.
    first = obj(item, "source", "author") if kind == EventType.TICKET_CREATED else {}
    author = obj(part, "author") or first
    if not author:
        return None
    who = text(author, "type")
    role = "customer" if who in _CUSTOMER_AUTHORS else "system" if who == "bot" else "agent"
    return {
        "kind": role,
        "id": text(author, "id"),
        "name": text(author, "name"),
        "email": text(author, "email"),
    }


def _comment(kind: EventType, part: dict[str, Any]) -> str | None:
    if kind not in (EventType.AGENT_REPLIED, EventType.NOTE_ADDED):
        return None
    body = html_text(text(part, "body"))
    return body[:10_000] if body else None
