"""PagerDuty: v3 webhook subscriptions.

Each webhook carries one event ("Webhook Payload" and "Event Types" in PagerDuty's v3 overview,
https://developer.pagerduty.com/docs/webhooks/v3-overview/, source text at
https://github.com/PagerDuty/developer-docs/blob/main/docs/webhooks/01-Overview.md)::

    {"event": {"id": "...", "event_type": "incident.triggered", "resource_type": "incident",
               "occurred_at": "<iso8601>", "agent": {...user_reference...}, "client": {...},
               "data": {...}}}

``data`` is an ``incident`` (``id``, ``incident_key``, ``html_url``, ``title``, ``status``,
``urgency``, ``priority``, ``assignees``, ``escalation_policy``, ``teams``...) for the incident
lifecycle events, and an ``incident_note``, ``incident_status_update`` or ``incident_responder``
(each with an ``incident`` reference: id, no key) for the others.

Which ticket: an incident is known to Baton by two ids, linked to the same ticket:

* system ``pagerduty``: the incident's ``incident_key``, which for an incident opened through the
  Events API v2 is the ``dedup_key`` of the event that triggered it. The PagerDuty connector links
  the alerts it triggers by that key (``baton/<ticket>[/<service>]``), and acknowledges and
  resolves them by it, so an incident event of an incident Baton paged finds Baton's ticket;
* system ``pagerduty.incident``: PagerDuty's incident id, the one id every incident event carries.

An ``incident`` event names its key as ``external`` and the id as a reference (both are linked to
the ticket); a note, status update or responder event names the id only, as ``external``, and
finds the ticket through the link the incident's earlier events left. The key stays the ticket's
``pagerduty`` link, which is what a ``sync`` to PagerDuty resolves. An incident without a key
(none sent) is known by its id alone.

==================================  ====================================================
event_type                          canonical event
==================================  ====================================================
incident.triggered                  alert.fired
incident.acknowledged               status.changed to open
incident.unacknowledged             status.changed to new
incident.resolved                   alert.resolved
incident.reopened                   ticket.reopened
incident.reassigned, .escalated     ticket.assigned (assignee: first assignee's name)
incident.delegated                  ticket.assigned, team: the new escalation policy
incident.priority_updated           priority.changed (P1 urgent, P2 high, P3 normal, P4-5 low)
incident.annotated                  note.added
incident.status_update_published    agent.replied (the update sent to stakeholders)
incident.responder.added, .replied  note.added
==================================  ====================================================

Other event types (services, custom fields...) are acknowledged and ignored. ``event.id`` is the
delivery id: PagerDuty retries a failed delivery with the same event.
"""

from __future__ import annotations

from typing import Any, Final

from baton.errors import InputError
from baton.model import Event, EventType, ExternalLink, Priority, Stage
from baton.signals.adapters.base import (
    MAX_ID_LENGTH,
    Delivery,
    Draft,
    build_events,
    content_id,
    obj,
    parse_time,
    seq,
    text,
)

__all__ = ["INCIDENT_SYSTEM", "PagerDutyAdapter"]

INCIDENT_SYSTEM: Final = "pagerduty.incident"
"""The system under which an incident's PagerDuty id is linked (its key is linked as ``pagerduty``)."""

_EVENTS: Final = {
    "incident.triggered": EventType.ALERT_FIRED,
    "incident.acknowledged": EventType.STATUS_CHANGED,
    "incident.unacknowledged": EventType.STATUS_CHANGED,
    "incident.resolved": EventType.ALERT_RESOLVED,
    "incident.reopened": EventType.REOPENED,
    "incident.reassigned": EventType.ASSIGNED,
    "incident.escalated": EventType.ASSIGNED,
    "incident.delegated": EventType.ASSIGNED,
    "incident.priority_updated": EventType.PRIORITY_CHANGED,
    "incident.annotated": EventType.NOTE_ADDED,
    "incident.status_update_published": EventType.AGENT_REPLIED,
    "incident.responder.added": EventType.NOTE_ADDED,
    "incident.responder.replied": EventType.NOTE_ADDED,
}
_PRIORITIES: Final = {
    "p1": Priority.URGENT,
    "p2": Priority.HIGH,
    "p3": Priority.NORMAL,
    "p4": Priority.LOW,
    "p5": Priority.LOW,
}
_URGENCIES: Final = {"high": Priority.HIGH, "low": Priority.LOW}


class PagerDutyAdapter:
    """PagerDuty v3 webhooks (entry point ``pagerduty``)."""

    source = "pagerduty"

    def parse(self, delivery: Delivery) -> list[Event]:
        """One event for an incident event type in the table above; none for the others."""
        event = obj(delivery.payload, "event")
        if not event:
            raise InputError('a PagerDuty v3 webhook body is {"event": {...}}')
        event_type = text(event, "event_type") or ""
        kind = _EVENTS.get(event_type)
        if kind is None:
            return []
        data = obj(event, "data")
        incident = data if text(data, "type") == "incident" else obj(data, "incident")
        incident_id = text(incident, "id")
        if incident_id is None or len(incident_id) > MAX_ID_LENGTH:
            raise InputError(
                f"PagerDuty {event_type} event names no incident (an id of at most 256 characters)"
            )
        url = text(incident, "html_url")
        url = url if url is not None and len(url) <= 2_048 else None
        by_id = ExternalLink(system=INCIDENT_SYSTEM, id=incident_id, url=url)
        key = text(incident, "incident_key") if incident is data else None
        key = key if key is not None and len(key) <= MAX_ID_LENGTH else None  # longer: no dedup key
        by_key = ExternalLink(system=self.source, id=key, url=url) if key else None
        agent = obj(event, "agent")
        draft = Draft(
            type=kind,
            occurred_at=parse_time(text(event, "occurred_at")) or delivery.received_at,
            fields=_fields(event_type, kind, data),
            actor=(
                {
                    "kind": "agent" if text(agent, "type") == "user_reference" else "system",
                    "id": text(agent, "id"),
                    "name": text(agent, "summary"),
                }
                if agent
                else None
            ),
            data={
                "event_type": event_type,
                "incident_number": data.get("number") if isinstance(data.get("number"), int) else None,
                "incident_status": text(incident, "status"),
                "incident_id": incident_id,
                "incident_key": key,
                "comment": _comment(data),
            },
        )
        return build_events(
            source=self.source,
            delivery_id=text(event, "id") or content_id(delivery.body),
            external=by_key or by_id,
            references=(by_id,) if by_key else (),
            drafts=[draft],
        )


def _fields(event_type: str, kind: EventType, data: dict[str, Any]) -> dict[str, Any]:
    match kind:
        case EventType.ALERT_FIRED:
            return {
                "subject": text(data, "title"),
                "priority": _priority(data),
                "severity": text(data, "urgency"),
                "channel": "pagerduty",
            }
        case EventType.STATUS_CHANGED:
            return {"status": Stage.OPEN if event_type == "incident.acknowledged" else Stage.NEW}
        case EventType.ASSIGNED:
            assignees = [a for a in seq(data, "assignees") if isinstance(a, dict)]
            # No assignee left is a statement too: the incident was unassigned.
            first = text(assignees[0], "summary") if assignees else None
            fields: dict[str, Any] = {"assignee": first or ""}
            if event_type == "incident.delegated":
                fields["team"] = text(data, "escalation_policy", "summary")
            return fields
        case EventType.PRIORITY_CHANGED:
            return {"priority": _priority(data)}
        case _:
            return {}


def _priority(incident: dict[str, Any]) -> Priority | None:
    named = text(incident, "priority", "summary")
    if named is not None:
        return _PRIORITIES.get(named.lower())
    return _URGENCIES.get(text(incident, "urgency") or "")


def _comment(data: dict[str, Any]) -> str | None:
    found = text(data, "content") or text(data, "message")
    return found[:10_000] if found else None
