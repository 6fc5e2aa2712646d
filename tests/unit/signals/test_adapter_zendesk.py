"""Zendesk trigger webhooks: every documented trigger body becomes the right canonical event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from baton.errors import InputError
from baton.model import Event, EventType
from baton.signals.adapters.base import Delivery
from baton.signals.adapters.zendesk import ZendeskAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks" / "zendesk"
RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ADAPTER = ZendeskAdapter()
HEADERS = {
    "x-zendesk-webhook-id": "01F1KRFQ6BG29CNWFR60NK5FNY",
    "x-zendesk-webhook-invocation-id": "8350205582",
}


def parse(name: str, headers: dict[str, str] | None = None) -> list[Event]:
    body = (FIXTURES / f"{name}.json").read_bytes()
    return ADAPTER.parse(Delivery.from_bytes(body, received_at=RECEIVED, headers=headers or {}))


# fixture -> (type, fields (exact, None omitted), actor kind, data subset)
CASES: dict[str, tuple[EventType, dict[str, Any], str | None, dict[str, Any]]] = {
    "ticket_created": (
        EventType.TICKET_CREATED,
        {
            "subject": "Invoices page returns 500",
            "body": "Since this morning the invoices page shows an error 500.\nWe need to pay today.",
            "account_id": "acct-globex",
            "channel": "email",
            "requester": "dana@globex.example",
            "category": "Incident",
            "priority": "high",
            "status": "new",
            "tags": ["billing", "enterprise", "invoices"],
        },
        "customer",
        {"ticket_status": "New"},
    ),
    "ticket_updated": (
        EventType.TICKET_UPDATED,
        {
            "subject": "Invoices page returns 500 (EU only)",
            "account_id": "acct-globex",
            "channel": "email",
            "requester": "dana@globex.example",
            "category": "Incident",
            "priority": "high",
            "tags": ["billing", "enterprise", "invoices", "eu"],
        },
        "agent",
        {},
    ),
    "customer_replied": (
        EventType.CUSTOMER_REPLIED,
        {"body": "Still broken. If this is not fixed today we will cancel."},
        "customer",
        {},
    ),
    "agent_replied": (
        EventType.AGENT_REPLIED,
        {},
        "agent",
        {"comment": "Thanks Dana, we are on it and will update you within the hour."},
    ),
    "note_added": (
        EventType.NOTE_ADDED,
        {},
        "agent",
        {"comment": "Looks like the EU invoice renderer; asking billing engineering."},
    ),
    "status_changed": (
        EventType.STATUS_CHANGED,
        {"status": "pending"},
        "agent",
        {"ticket_status": "Pending"},
    ),
    "status_on_hold": (EventType.STATUS_CHANGED, {"status": "open"}, "agent", {"ticket_status": "On-hold"}),
    "priority_changed": (EventType.PRIORITY_CHANGED, {"priority": "urgent"}, "agent", {}),
    "assigned": (
        EventType.ASSIGNED,
        {"assignee": "lee@acme.example", "team": "Billing Tier 2"},
        "agent",
        {},
    ),
    "unassigned": (EventType.ASSIGNED, {"assignee": "", "team": "Billing"}, "agent", {}),
    "solved": (EventType.SOLVED, {}, "agent", {"ticket_status": "Solved"}),
    "reopened": (EventType.REOPENED, {}, "customer", {}),
    "closed": (EventType.CLOSED, {}, None, {"ticket_status": "Closed"}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_trigger_body_maps_to_its_event(name: str) -> None:
    kind, fields, actor, data = CASES[name]
    [event] = parse(name)
    assert event.source == "zendesk"
    assert event.type == kind
    assert event.fields.model_dump(mode="json", exclude_none=True) == fields
    assert (event.actor.kind if event.actor else None) == actor
    assert data.items() <= event.data.items()
    assert event.external is not None
    assert (event.external.system, event.external.id) == ("zendesk", "35436")
    assert event.external.url == "https://acme.zendesk.com/agent/tickets/35436"


def test_every_ticket_event_kind_is_covered() -> None:
    kinds = {CASES[name][0] for name in CASES}
    assert kinds == {
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


def test_occurred_at_is_the_tickets_update_time() -> None:
    [event] = parse("customer_replied")
    assert event.occurred_at == datetime(2026, 3, 2, 10, 2, tzinfo=UTC)


def test_the_invocation_headers_are_the_delivery_id() -> None:
    [event] = parse("solved", HEADERS)
    assert event.event_id == "01F1KRFQ6BG29CNWFR60NK5FNY:8350205582"
    [retry] = parse("solved", HEADERS)
    assert retry.event_id == event.event_id


def test_without_the_headers_the_body_hash_is_the_delivery_id() -> None:
    [first], [again], [other] = parse("solved"), parse("solved"), parse("reopened")
    assert first.event_id.startswith("sha256:") and first.event_id == again.event_id
    assert other.event_id != first.event_id


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "JSON object"),
        ({"ticket": {"id": "1"}}, 'no "event"'),
        ({"event": "ticket.exploded", "ticket": {"id": "1"}}, "unknown event"),
        ({"event": "alert.fired", "ticket": {"id": "1"}}, "unknown event"),
        ({"event": "ticket.created", "ticket": {"subject": "x"}}, "ticket.id"),
        ({"event": "ticket.created", "ticket": {"id": ""}}, "ticket.id"),
    ],
)
def test_bodies_that_are_not_the_template_are_refused(body: object, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))


def test_unknown_status_and_priority_words_state_nothing() -> None:
    body = {"event": "status.changed", "ticket": {"id": "9", "status": "Awaiting parts", "priority": "-"}}
    [event] = ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
    assert event.fields.status is None
    assert event.data["ticket_status"] == "Awaiting parts"
    assert event.occurred_at == RECEIVED  # no updated_at in the body: the time of receipt


def test_overlong_text_is_cut_to_fit_not_refused() -> None:
    body = {
        "event": "customer.replied",
        "ticket": {"id": "9", "subject": "s" * 5000},
        "comment": {"body": "b" * 200_000},
    }
    [event] = ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
    assert event.fields.body is not None and len(event.fields.body) == 100_000
