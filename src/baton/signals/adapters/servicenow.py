"""ServiceNow: an outbound REST message sent by a business rule, with the JSON body Baton defines.

ServiceNow has no fixed webhook: an admin creates an outbound REST message whose HTTP method
(POST) has a content template with ``${variable}`` placeholders, and a business rule on the table
(``incident``, after insert and update) fills the variables and sends it with
``sn_ws.RESTMessageV2`` (https://docs.servicenow.com/bundle/washingtondc-api-reference/page/
app-store/dev_portal/API_reference/RESTMessageV2/concept/c_RESTMessageV2API.html). The REST
message authenticates with a basic-auth profile or a header; Baton checks that token. The content
template Baton expects (docs/signals.md has the business rule that fills it)::

    {
      "table": "${table}", "sys_id": "${sys_id}", "number": "${number}", "url": "${url}",
      "operation": "${operation}", "sys_mod_count": "${sys_mod_count}",
      "updated_at": "${sys_updated_on}",
      "short_description": "${short_description}", "description": "${description}",
      "state": "${state}", "previous_state": "${previous_state}",
      "priority": "${priority}", "previous_priority": "${previous_priority}",
      "category": "${category}", "caller": "${caller_email}", "company": "${company}",
      "assignment_group": "${assignment_group}", "assigned_to": "${assigned_to}",
      "assignment_changed": "${assignment_changed}",
      "comment": "${comment}", "work_note": "${work_note}",
      "updated_by": "${updated_by}", "by_caller": "${by_caller}"
    }

``operation`` is ``insert`` (ticket.created) or ``update``; ``by_caller`` is ``true`` when the caller made the
change (through the portal or by e-mail), which makes them the actor and their comment a
customer reply. One update can change several things,
so it can give several events, in this order: the state change (ticket.solved when it becomes
Resolved, ticket.closed for Closed or Canceled, ticket.reopened when it leaves those, otherwise
status.changed), priority.changed, ticket.assigned, the new additional comment (customer.replied
when the caller wrote it, else agent.replied), the new work note (note.added); an update with none
of these is ticket.updated. ``sys_id`` and ``sys_mod_count`` (which ServiceNow increments on every
update) are the delivery id; ``sys_updated_on`` is UTC without an offset.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from baton.errors import InputError
from baton.model import Event, EventType, ExternalLink, Priority, Stage
from baton.signals.adapters._template import normalise
from baton.signals.adapters.base import Delivery, Draft, build_events, content_id, parse_time, text

__all__ = ["ServiceNowAdapter"]

# Incident state and priority choices, by value and by label (out-of-the-box incident table).
_STATES: Final = {
    "1": Stage.NEW,
    "new": Stage.NEW,
    "2": Stage.OPEN,
    "in progress": Stage.OPEN,
    "3": Stage.PENDING,
    "on hold": Stage.PENDING,
    "6": Stage.SOLVED,
    "resolved": Stage.SOLVED,
    "7": Stage.CLOSED,
    "closed": Stage.CLOSED,
    "8": Stage.CLOSED,
    "canceled": Stage.CLOSED,
    "cancelled": Stage.CLOSED,
}
_PRIORITIES: Final = {
    "1": Priority.URGENT,
    "critical": Priority.URGENT,
    "2": Priority.HIGH,
    "high": Priority.HIGH,
    "3": Priority.NORMAL,
    "moderate": Priority.NORMAL,
    "4": Priority.LOW,
    "low": Priority.LOW,
    "5": Priority.LOW,
    "planning": Priority.LOW,
}
_ENDED: Final = (Stage.SOLVED, Stage.CLOSED)


def _state(value: str | None) -> Stage | None:
    return _STATES.get(normalise(value)) if value else None


def _priority(value: str | None) -> Priority | None:
    # Labels may come as "1 - Critical": the leading number decides.
    return _PRIORITIES.get(normalise(value).split(" ")[0]) if value else None


def _true(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1", "yes")


class ServiceNowAdapter:
    """ServiceNow outbound REST messages (entry point ``servicenow``)."""

    source = "servicenow"

    def parse(self, delivery: Delivery) -> list[Event]:
        """The events of one insert or update of a record, in the order described above."""
        body = delivery.payload
        if not isinstance(body, dict):
            raise InputError("a ServiceNow webhook body is a JSON object")
        sys_id = text(body, "sys_id")
        if sys_id is None:
            raise InputError("ServiceNow webhook body has no sys_id")
        operation = text(body, "operation")
        if operation not in ("insert", "update"):
            raise InputError('ServiceNow webhook "operation" must be "insert" or "update"')
        at = parse_time(text(body, "updated_at"), assume_utc=True) or delivery.received_at
        by_caller = _true(text(body, "by_caller"))
        actor = {"kind": "customer" if by_caller else "agent", "id": text(body, "updated_by")}
        drafts = [_created(body, at)] if operation == "insert" else _updates(body, at)
        data = {"number": text(body, "number"), "table": text(body, "table"), "state": text(body, "state")}
        drafts = [
            Draft(
                type=d.type,
                occurred_at=d.occurred_at,
                fields=d.fields,
                actor=d.actor or actor,
                data={**data, **d.data},
            )
            for d in drafts
        ]
        mod_count = text(body, "sys_mod_count")
        return build_events(
            source=self.source,
            delivery_id=f"{sys_id}:{mod_count}" if mod_count else content_id(delivery.body),
            external=ExternalLink(system=self.source, id=sys_id, url=text(body, "url")),
            drafts=drafts,
        )


def _created(body: dict[str, Any], at: datetime) -> Draft:
    fields = {
        "subject": text(body, "short_description"),
        "body": text(body, "description"),
        "status": _state(text(body, "state")),
        "priority": _priority(text(body, "priority")),
        "category": text(body, "category"),
        "requester": text(body, "caller"),
        "account_id": text(body, "company"),
        "channel": "servicenow",
        "team": text(body, "assignment_group"),
        "assignee": text(body, "assigned_to"),
    }
    return Draft(type=EventType.TICKET_CREATED, occurred_at=at, fields=fields)


def _updates(body: dict[str, Any], at: datetime) -> list[Draft]:
    drafts: list[Draft] = []
    state, before = _state(text(body, "state")), _state(text(body, "previous_state"))
    if state is not None and before is not None and state != before:
        if state == Stage.SOLVED:
            kind = EventType.SOLVED
        elif state == Stage.CLOSED:
            kind = EventType.CLOSED
        elif before in _ENDED:
            kind = EventType.REOPENED
        else:
            kind = EventType.STATUS_CHANGED
        status = {"status": state} if kind == EventType.STATUS_CHANGED else {}
        drafts.append(Draft(type=kind, occurred_at=at, fields=status))
    priority = _priority(text(body, "priority"))
    if priority is not None and text(body, "priority") != text(body, "previous_priority"):
        drafts.append(Draft(type=EventType.PRIORITY_CHANGED, occurred_at=at, fields={"priority": priority}))
    if _true(text(body, "assignment_changed")):
        owner = {"assignee": text(body, "assigned_to") or "", "team": text(body, "assignment_group")}
        drafts.append(Draft(type=EventType.ASSIGNED, occurred_at=at, fields=owner))
    comment = text(body, "comment")
    if comment is not None:
        if _true(text(body, "by_caller")):
            drafts.append(Draft(type=EventType.CUSTOMER_REPLIED, occurred_at=at, fields={"body": comment}))
        else:
            drafts.append(
                Draft(type=EventType.AGENT_REPLIED, occurred_at=at, data={"comment": comment[:10_000]})
            )
    note = text(body, "work_note")
    if note is not None:
        drafts.append(Draft(type=EventType.NOTE_ADDED, occurred_at=at, data={"comment": note[:10_000]}))
    if not drafts:
        snapshot = {
            "subject": text(body, "short_description"),
            "priority": priority,
            "category": text(body, "category"),
            "requester": text(body, "caller"),
            "account_id": text(body, "company"),
        }
        drafts.append(Draft(type=EventType.TICKET_UPDATED, occurred_at=at, fields=snapshot))
    return drafts
