"""Freshdesk: the "Trigger webhook" action of automation rules, with the JSON body Baton defines.

A Freshdesk automation rule (on ticket creation or on ticket updates) can trigger a webhook: POST,
encoding JSON, "Advanced" content with placeholders, and optionally authentication (username and
password, or an API key, sent as HTTP Basic) and custom headers
(https://support.freshdesk.com/support/solutions/articles/132589-using-webhooks-in-automation-rules).
Baton expects the body below, one rule per kind of activity, each with its own ``"event"`` (the
rules and their conditions are in docs/signals.md)::

    {
      "event": "ticket.created",
      "ticket": {
        "id": "{{ticket.id}}",
        "url": "{{ticket.url}}",
        "subject": "{{ticket.subject}}",
        "description": "{{ticket.description_text}}",
        "status": "{{ticket.status}}",
        "priority": "{{ticket.priority}}",
        "type": "{{ticket.ticket_type}}",
        "tags": "{{ticket.tags}}",
        "channel": "{{ticket.source}}",
        "requester": {"email": "{{ticket.requester.email}}", "name": "{{ticket.requester.name}}"},
        "organization": "{{ticket.company.name}}",
        "group": "{{ticket.group.name}}",
        "assignee": {"email": "{{ticket.agent.email}}", "name": "{{ticket.agent.name}}"}
      },
      "comment": {"body": "{{ticket.latest_public_comment}}"}
    }

Freshdesk signs nothing and sends no delivery id: the endpoint checks the shared token (Basic by
default) and a delivery is identified by the hash of its body. Two deliveries with identical bodies
are therefore one: the body carries the event, status, priority, assignee and latest comment, so
different activity gives different bodies.
"""

from __future__ import annotations

from typing import Final

from baton.model import Priority, Stage
from baton.signals.adapters._template import TemplateAdapter

__all__ = ["FreshdeskAdapter"]

# Freshdesk's default statuses and priorities, by name and by their API numbers
# (https://developers.freshdesk.com/api/#tickets: status 2-5, priority 1-4).
_STATUSES: Final = {
    "open": Stage.OPEN,
    "2": Stage.OPEN,
    "pending": Stage.PENDING,
    "3": Stage.PENDING,
    "resolved": Stage.SOLVED,
    "4": Stage.SOLVED,
    "closed": Stage.CLOSED,
    "5": Stage.CLOSED,
    "waiting on customer": Stage.PENDING,
    "waiting on third party": Stage.OPEN,
}
_PRIORITIES: Final = {
    "low": Priority.LOW,
    "1": Priority.LOW,
    "medium": Priority.NORMAL,
    "2": Priority.NORMAL,
    "high": Priority.HIGH,
    "3": Priority.HIGH,
    "urgent": Priority.URGENT,
    "4": Priority.URGENT,
}


class FreshdeskAdapter(TemplateAdapter):
    """Freshdesk automation-rule webhooks (entry point ``freshdesk``)."""

    source = "freshdesk"
    statuses = _STATUSES
    priorities = _PRIORITIES
