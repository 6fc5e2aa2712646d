"""Freshdesk automation-rule webhooks: each documented rule body becomes the right canonical event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from baton.errors import InputError
from baton.model import Event, EventType
from baton.signals.adapters.base import Delivery
from baton.signals.adapters.freshdesk import FreshdeskAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks" / "freshdesk"
RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ADAPTER = FreshdeskAdapter()


def parse(name: str) -> list[Event]:
    return ADAPTER.parse(Delivery.from_bytes((FIXTURES / f"{name}.json").read_bytes(), received_at=RECEIVED))


CASES: dict[str, tuple[EventType, dict[str, Any], dict[str, Any]]] = {
    "ticket_created": (
        EventType.TICKET_CREATED,
        {
            "subject": "Cannot export reports",
            "body": "The CSV export button does nothing since the last update.",
            "account_id": "Initech",
            "channel": "portal",
            "requester": "ola@initech.example",
            "category": "Problem",
            "priority": "normal",
            "status": "open",
            "tags": ["reports", "export"],
            "team": "Product Support",
        },
        {},
    ),
    "ticket_updated": (
        EventType.TICKET_UPDATED,
        {
            "subject": "Cannot export reports",
            "account_id": "Initech",
            "channel": "portal",
            "requester": "ola@initech.example",
            "category": "Incident",
            "priority": "normal",
            "tags": ["reports", "export"],
        },
        {},
    ),
    "customer_replied": (
        EventType.CUSTOMER_REPLIED,
        {"body": "Any news? Our month-end close depends on it."},
        {},
    ),
    "agent_replied": (EventType.AGENT_REPLIED, {}, {"comment": "We reproduced it and a fix is on the way."}),
    "note_added": (EventType.NOTE_ADDED, {}, {"comment": "Engineering ticket ENG-77 opened."}),
    "status_changed": (
        EventType.STATUS_CHANGED,
        {"status": "pending"},
        {"ticket_status": "Waiting on Customer"},
    ),
    "priority_changed": (EventType.PRIORITY_CHANGED, {"priority": "urgent"}, {}),
    "assigned": (EventType.ASSIGNED, {"assignee": "noor@acme.example", "team": "Escalations"}, {}),
    "solved": (EventType.SOLVED, {}, {"ticket_status": "Resolved"}),
    "reopened": (EventType.REOPENED, {}, {}),
    "closed": (EventType.CLOSED, {}, {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_rule_body_maps_to_its_event(name: str) -> None:
    kind, fields, data = CASES[name]
    [event] = parse(name)
    assert (event.source, event.type) == ("freshdesk", kind)
    assert event.fields.model_dump(mode="json", exclude_none=True) == fields
    assert data.items() <= event.data.items()
    assert event.external is not None
    assert (event.external.id, event.external.url) == (
        "4521",
        "https://acme.freshdesk.com/helpdesk/tickets/4521",
    )
    assert event.occurred_at == RECEIVED  # Freshdesk renders no update time: the time of receipt


@pytest.mark.parametrize(
    ("word", "stage"),
    [
        ("Open", "open"),
        ("2", "open"),
        ("Pending", "pending"),
        ("3", "pending"),
        ("Resolved", "solved"),
        ("4", "solved"),
        ("Closed", "closed"),
        ("5", "closed"),
        ("Waiting on Third Party", "open"),
        ("Custom", None),
    ],
)
def test_statuses_by_name_and_number(word: str, stage: str | None) -> None:
    body = {"event": "status.changed", "ticket": {"id": "1", "status": word}}
    [event] = ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
    assert event.fields.status == stage


@pytest.mark.parametrize(
    ("word", "priority"),
    [
        ("Low", "low"),
        ("1", "low"),
        ("Medium", "normal"),
        ("2", "normal"),
        ("High", "high"),
        ("3", "high"),
        ("Urgent", "urgent"),
        ("4", "urgent"),
    ],
)
def test_priorities_by_name_and_number(word: str, priority: str) -> None:
    body = {"event": "priority.changed", "ticket": {"id": "1", "priority": word}}
    [event] = ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
    assert event.fields.priority == priority


def test_identity_is_the_body_hash_so_a_retry_is_the_same_delivery() -> None:
    ids = {parse(name)[0].event_id for name in CASES}
    assert len(ids) == len(CASES)  # different activity, different bodies, different ids
    assert parse("solved")[0].event_id == parse("solved")[0].event_id


def test_a_rule_with_a_delivery_id_field_uses_it() -> None:
    body = {"event": "ticket.solved", "delivery_id": "rule-7/4521/2026-03-02T11:00", "ticket": {"id": "4521"}}
    [event] = ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
    assert event.event_id == "rule-7/4521/2026-03-02T11:00"


def test_a_body_without_a_ticket_is_refused() -> None:
    with pytest.raises(InputError, match=r"ticket\.id"):
        ADAPTER.parse(Delivery.from_bytes(b'{"event": "ticket.created"}', received_at=RECEIVED))
