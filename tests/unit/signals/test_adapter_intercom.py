"""Intercom notifications: each conversation topic becomes the right canonical event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from baton.errors import InputError
from baton.model import Event, EventType
from baton.signals.adapters.base import Delivery
from baton.signals.adapters.intercom import IntercomAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks" / "intercom"
RECEIVED = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
ADAPTER = IntercomAdapter()


def parse(name: str) -> list[Event]:
    return ADAPTER.parse(Delivery.from_bytes((FIXTURES / f"{name}.json").read_bytes(), received_at=RECEIVED))


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 2, hour, minute, tzinfo=UTC)


# fixture -> (type, exact fields, actor kind, data subset, occurred_at)
CASES: dict[str, tuple[EventType, dict[str, Any], str | None, dict[str, Any], datetime]] = {
    "user_created": (
        EventType.TICKET_CREATED,
        {
            "body": "Our SSO login loops back to the sign-in page.\nBlocking 40 users.",
            "channel": "chat",
            "requester": "priya@umbrella.example",
            "priority": "normal",
            "tags": ["sso"],
        },
        "customer",
        {"topic": "conversation.user.created"},
        at(9),
    ),
    "admin_single_created": (
        EventType.TICKET_CREATED,
        {
            "subject": "Your renewal",
            "body": "Hi Priya, your renewal is due next week.",
            "channel": "email",
            "priority": "normal",
            "tags": ["sso"],
        },
        "agent",
        {},
        at(9, 1),
    ),
    "user_replied": (
        EventType.CUSTOMER_REPLIED,
        {"body": "Still looping & we have a board demo at noon!"},
        "customer",
        {},
        at(10),
    ),
    "admin_replied": (
        EventType.AGENT_REPLIED,
        {},
        "agent",
        {"comment": "Thanks Priya, checking your IdP metadata now."},
        at(9, 20),
    ),
    "admin_noted": (
        EventType.NOTE_ADDED,
        {},
        "agent",
        {"comment": "Cert on their side expired yesterday."},
        at(9, 25),
    ),
    "admin_assigned": (
        EventType.ASSIGNED,
        {"assignee": "991267"},
        "agent",
        {"team_assignee_id": "5017691"},
        at(9, 5),
    ),
    "admin_unassigned": (EventType.ASSIGNED, {"assignee": ""}, "agent", {}, at(9, 6)),
    "admin_closed": (EventType.SOLVED, {}, "agent", {"state": "closed"}, at(11)),
    "admin_opened": (EventType.REOPENED, {}, "agent", {}, at(12)),
    "admin_snoozed": (
        EventType.STATUS_CHANGED,
        {"status": "pending"},
        "agent",
        {"state": "snoozed"},
        at(9, 50),
    ),
    "admin_unsnoozed": (EventType.STATUS_CHANGED, {"status": "open"}, "system", {}, at(15)),
    "priority_updated": (EventType.PRIORITY_CHANGED, {"priority": "high"}, None, {}, at(9, 55)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_topic_maps_to_its_event(name: str) -> None:
    kind, fields, actor, data, occurred = CASES[name]
    [event] = parse(name)
    assert (event.source, event.type) == ("intercom", kind)
    assert event.fields.model_dump(mode="json", exclude_none=True) == fields
    assert (event.actor.kind if event.actor else None) == actor
    assert data.items() <= event.data.items()
    assert event.occurred_at == occurred
    assert event.external is not None and (event.external.system, event.external.id) == ("intercom", "147")
    assert event.event_id == json.loads((FIXTURES / f"{name}.json").read_bytes())["id"]


def test_every_event_kind_intercom_has_is_covered() -> None:
    assert {CASES[name][0] for name in CASES} == {
        EventType.TICKET_CREATED,
        EventType.CUSTOMER_REPLIED,
        EventType.AGENT_REPLIED,
        EventType.NOTE_ADDED,
        EventType.ASSIGNED,
        EventType.SOLVED,
        EventType.REOPENED,
        EventType.STATUS_CHANGED,
        EventType.PRIORITY_CHANGED,
    }


def test_topics_baton_does_not_follow_are_acknowledged_with_no_events() -> None:
    assert parse("contact_created") == []


def test_the_conversation_web_link_is_kept_when_sent() -> None:
    body = json.loads((FIXTURES / "admin_closed.json").read_bytes())
    body["data"]["item"]["links"] = {
        "conversation_web": "https://app.intercom.com/a/apps/q1w2e3r4/conversations/147"
    }
    [event] = ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
    assert event.external is not None
    assert event.external.url == "https://app.intercom.com/a/apps/q1w2e3r4/conversations/147"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"topic": "conversation.user.created"}, "notification_event"),
        ([], "notification_event"),
        (
            {"type": "notification_event", "topic": "conversation.user.replied", "data": {"item": {}}},
            "data.item.id",
        ),
    ],
)
def test_bodies_that_are_not_notifications_are_refused(body: object, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
