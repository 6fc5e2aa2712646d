"""Zendesk: webhooks connected to triggers, with the JSON body Baton defines.

A Zendesk webhook connected to a trigger or automation sends the body the trigger's action
defines, with placeholders filled in; the HTTP method and JSON format are set on the webhook
(https://developer.zendesk.com/documentation/webhooks/anatomy-of-a-webhook-request,
https://support.zendesk.com/hc/en-us/articles/4408886858138 for the placeholders). Baton expects
the body below, one trigger per kind of activity, each with its own ``"event"`` (the full set of
triggers and their conditions is in docs/signals.md)::

    {
      "event": "customer.replied",
      "ticket": {
        "id": "{{ticket.id}}",
        "url": "{{ticket.link}}",
        "subject": "{{ticket.title}}",
        "description": "{{ticket.description}}",
        "status": "{{ticket.status}}",
        "priority": "{{ticket.priority}}",
        "type": "{{ticket.ticket_type}}",
        "tags": "{{ticket.tags}}",
        "channel": "{{ticket.via}}",
        "requester": {"email": "{{ticket.requester.email}}", "name": "{{ticket.requester.name}}"},
        "organization": "{{ticket.organization.external_id}}",
        "group": "{{ticket.group.name}}",
        "assignee": {"email": "{{ticket.assignee.email}}", "name": "{{ticket.assignee.name}}"},
        "updated_at": "{{ticket.updated_at_with_timestamp}}"
      },
      "comment": {"body": "{{ticket.latest_comment}}"},
      "actor": {"email": "{{current_user.email}}", "name": "{{current_user.name}}"}
    }

Every request carries ``x-zendesk-webhook-id`` and ``x-zendesk-webhook-invocation-id`` (same
page); together they are the delivery id, so a retried invocation is stored once. The signature
(``x-zendesk-webhook-signature`` over the timestamp and body) is checked by the endpoint.
"""

from __future__ import annotations

from typing import Final

from baton.model import Priority, Stage
from baton.signals.adapters._template import TemplateAdapter

__all__ = ["ZendeskAdapter"]

# Zendesk's status and priority names (the placeholders render them capitalised: "Open").
_STATUSES: Final = {
    "new": Stage.NEW,
    "open": Stage.OPEN,
    "pending": Stage.PENDING,
    "hold": Stage.OPEN,  # on hold: waiting on a third party, still the team's to work
    "on hold": Stage.OPEN,
    "solved": Stage.SOLVED,
    "closed": Stage.CLOSED,
}
_PRIORITIES: Final = {
    "low": Priority.LOW,
    "normal": Priority.NORMAL,
    "high": Priority.HIGH,
    "urgent": Priority.URGENT,
}


class ZendeskAdapter(TemplateAdapter):
    """Zendesk trigger webhooks (entry point ``zendesk``)."""

    source = "zendesk"
    statuses = _STATUSES
    priorities = _PRIORITIES
    delivery_headers = ("x-zendesk-webhook-id", "x-zendesk-webhook-invocation-id")
