"""ServiceNow outbound REST messages: one insert or update becomes its events, in order."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from baton.errors import InputError
from baton.model import Event, EventType
from baton.signals.adapters.base import Delivery
from baton.signals.adapters.servicenow import ServiceNowAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks" / "servicenow"
RECEIVED = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
ADAPTER = ServiceNowAdapter()
SYS_ID = "9d385017c611228701d22104cc95c371"


def parse(name: str) -> list[Event]:
    return ADAPTER.parse(Delivery.from_bytes((FIXTURES / f"{name}.json").read_bytes(), received_at=RECEIVED))


Row = tuple[EventType, dict[str, Any], str, dict[str, Any]]
# fixture -> events in order: (type, exact fields, actor kind, data subset)
CASES: dict[str, list[Row]] = {
    "insert": [
        (
            EventType.TICKET_CREATED,
            {
                "subject": "VPN drops every 10 minutes",
                "body": "Remote staff lose the VPN every ten minutes since Monday.",
                "account_id": "acct-wayne",
                "channel": "servicenow",
                "requester": "bo@wayne.example",
                "category": "network",
                "priority": "normal",
                "status": "new",
                "team": "Network",
            },
            "customer",
            {"number": "INC0010023"},
        )
    ],
    "update_multi": [
        (EventType.STATUS_CHANGED, {"status": "open"}, "agent", {}),
        (EventType.PRIORITY_CHANGED, {"priority": "high"}, "agent", {}),
        (EventType.ASSIGNED, {"assignee": "ann@acme.example", "team": "Network"}, "agent", {}),
        (
            EventType.AGENT_REPLIED,
            {},
            "agent",
            {"comment": "We are replacing the EU gateway certificate now."},
        ),
    ],
    "customer_comment": [
        (EventType.CUSTOMER_REPLIED, {"body": "It dropped again during the board call."}, "customer", {})
    ],
    "agent_comment_and_note": [
        (EventType.AGENT_REPLIED, {}, "agent", {"comment": "We pushed a new VPN profile; please reconnect."}),
        (EventType.NOTE_ADDED, {}, "agent", {"comment": "Profile v42 pushed via MDM."}),
    ],
    "on_hold": [(EventType.STATUS_CHANGED, {"status": "pending"}, "agent", {"state": "3"})],
    "resolved": [(EventType.SOLVED, {}, "agent", {"state": "6"})],
    "reopened": [
        (EventType.REOPENED, {}, "customer", {}),
        (EventType.CUSTOMER_REPLIED, {"body": "Back again this morning."}, "customer", {}),
    ],
    "closed": [(EventType.CLOSED, {}, "agent", {})],
    "updated": [
        (
            EventType.TICKET_UPDATED,
            {
                "subject": "VPN drops every 10 minutes (EU gateway)",
                "account_id": "acct-wayne",
                "requester": "bo@wayne.example",
                "category": "network",
                "priority": "normal",
            },
            "agent",
            {},
        )
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_record_change_maps_to_its_events(name: str) -> None:
    events = parse(name)
    assert len(events) == len(CASES[name])
    for event, (kind, fields, actor, data) in zip(events, CASES[name], strict=True):
        assert (event.source, event.type) == ("servicenow", kind)
        assert event.fields.model_dump(mode="json", exclude_none=True) == fields
        assert event.actor is not None and event.actor.kind == actor
        assert data.items() <= event.data.items()
        assert event.external is not None and event.external.id == SYS_ID
        assert event.external.url is not None and SYS_ID in event.external.url


def test_every_event_kind_servicenow_has_is_covered() -> None:
    assert {row[0] for rows in CASES.values() for row in rows} == {
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


def test_sys_id_and_mod_count_identify_the_delivery_and_index_its_events() -> None:
    ids = [e.event_id for e in parse("update_multi")]
    assert ids == [f"{SYS_ID}:5", f"{SYS_ID}:5#1", f"{SYS_ID}:5#2", f"{SYS_ID}:5#3"]


def test_sys_updated_on_is_utc_without_an_offset() -> None:
    [event] = parse("resolved")
    assert event.occurred_at == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("label", "priority"),
    [("1 - Critical", "urgent"), ("2 - High", "high"), ("3 - Moderate", "normal"), ("5", "low")],
)
def test_priority_labels_or_values(label: str, priority: str) -> None:
    body = {"sys_id": "x", "operation": "update", "priority": label, "previous_priority": "4"}
    [event] = ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
    assert (event.type, event.fields.priority) == (EventType.PRIORITY_CHANGED, priority)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"operation": "insert"}, "sys_id"),
        ({"sys_id": "x", "operation": "delete"}, "operation"),
        ({"sys_id": "x"}, "operation"),
        ([1], "JSON object"),
    ],
)
def test_bodies_that_are_not_the_template_are_refused(body: object, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
