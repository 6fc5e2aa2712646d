"""PagerDuty v3 webhooks: each incident event type becomes the right canonical event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from baton.errors import InputError
from baton.model import Event, EventType, ExternalLink
from baton.signals.adapters.base import Delivery
from baton.signals.adapters.pagerduty import PagerDutyAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks" / "pagerduty"
RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ADAPTER = PagerDutyAdapter()


def parse(name: str) -> list[Event]:
    return ADAPTER.parse(Delivery.from_bytes((FIXTURES / f"{name}.json").read_bytes(), received_at=RECEIVED))


# fixture -> (type, exact fields, actor kind, data subset)
CASES: dict[str, tuple[EventType, dict[str, Any], str | None, dict[str, Any]]] = {
    "triggered": (
        EventType.ALERT_FIRED,
        {
            "subject": "Payment API error rate above 5%",
            "channel": "pagerduty",
            "severity": "high",
            "priority": "high",
        },
        "system",
        {"incident_number": 2, "incident_status": "triggered"},
    ),
    "acknowledged": (EventType.STATUS_CHANGED, {"status": "open"}, "agent", {}),
    "unacknowledged": (EventType.STATUS_CHANGED, {"status": "new"}, None, {}),
    "reassigned": (EventType.ASSIGNED, {"assignee": "Rae Senior"}, "agent", {}),
    "escalated": (EventType.ASSIGNED, {"assignee": "Rae Senior"}, None, {}),
    "delegated": (EventType.ASSIGNED, {"assignee": "Dev Db", "team": "Database on-call"}, "agent", {}),
    "priority_updated": (EventType.PRIORITY_CHANGED, {"priority": "urgent"}, "agent", {}),
    "annotated": (EventType.NOTE_ADDED, {}, "agent", {"comment": "Rolled back deploy 4512."}),
    "status_update_published": (
        EventType.AGENT_REPLIED,
        {},
        "agent",
        {"comment": "A fix is being deployed; next update in 30 minutes."},
    ),
    "responder_added": (EventType.NOTE_ADDED, {}, "agent", {"comment": "Please help with the failover"}),
    "resolved": (EventType.ALERT_RESOLVED, {}, "agent", {"incident_status": "resolved"}),
    "reopened": (EventType.REOPENED, {}, "agent", {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_event_type_maps_to_its_event(name: str) -> None:
    kind, fields, actor, data = CASES[name]
    raw = json.loads((FIXTURES / f"{name}.json").read_bytes())["event"]
    [event] = parse(name)
    assert (event.source, event.type) == ("pagerduty", kind)
    assert event.fields.model_dump(mode="json", exclude_none=True) == fields
    assert (event.actor.kind if event.actor else None) == actor
    assert data.items() <= event.data.items()
    assert event.event_id == raw["id"]
    assert event.occurred_at == datetime.fromisoformat(raw["occurred_at"])
    assert event.data["event_type"] == raw["event_type"]
    url = "https://acme.pagerduty.com/incidents/PGR0VU2"
    by_id = ExternalLink(system="pagerduty.incident", id="PGR0VU2", url=url)
    key = raw["data"].get("incident_key")
    if raw["data"]["type"] == "incident":  # the incident itself: its key, and its id as a reference
        assert key and event.external == ExternalLink(system="pagerduty", id=key, url=url)
        assert event.references == (by_id,)
        assert (event.data["incident_key"], event.data["incident_id"]) == (key, "PGR0VU2")
    else:  # a note, status update or responder names the incident by its id only
        assert event.external == by_id and event.references == ()


def test_an_incident_without_a_key_is_known_by_its_id() -> None:
    body = json.loads((FIXTURES / "acknowledged.json").read_bytes())
    del body["event"]["data"]["incident_key"]
    [event] = ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
    assert event.external is not None and (event.external.system, event.external.id) == (
        "pagerduty.incident",
        "PGR0VU2",
    )
    assert event.references == ()


def test_the_key_of_an_incident_baton_paged_is_the_connectors_link() -> None:
    from baton.connectors.pagerduty import dedup_key

    body = json.loads((FIXTURES / "triggered.json").read_bytes())
    body["event"]["data"]["incident_key"] = dedup_key("T-0123456789abcdef", "platform")
    [event] = ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
    assert event.external is not None
    assert (event.external.system, event.external.id) == ("pagerduty", "baton/T-0123456789abcdef/platform")


def test_every_event_kind_pagerduty_has_is_covered() -> None:
    assert {CASES[name][0] for name in CASES} == {
        EventType.ALERT_FIRED,
        EventType.ALERT_RESOLVED,
        EventType.STATUS_CHANGED,
        EventType.ASSIGNED,
        EventType.PRIORITY_CHANGED,
        EventType.NOTE_ADDED,
        EventType.AGENT_REPLIED,
        EventType.REOPENED,
    }


def test_service_events_are_acknowledged_with_no_events() -> None:
    assert parse("service_updated") == []


@pytest.mark.parametrize(
    ("priority", "urgency", "expected"),
    [
        ("P1", "high", "urgent"),
        ("P3", "high", "normal"),
        ("P5", "high", "low"),
        (None, "low", "low"),
        (None, "high", "high"),
    ],
)
def test_priority_from_the_priority_else_the_urgency(
    priority: str | None, urgency: str, expected: str
) -> None:
    body = json.loads((FIXTURES / "priority_updated.json").read_bytes())
    body["event"]["data"]["priority"] = None if priority is None else {"summary": priority}
    body["event"]["data"]["urgency"] = urgency
    [event] = ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
    assert event.fields.priority == expected


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"messages": []}, "event"),
        ({"event": {"event_type": "incident.triggered", "data": {"type": "incident"}}}, "no incident"),
    ],
)
def test_bodies_that_are_not_v3_webhooks_are_refused(body: object, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))


def test_over_long_ids_are_refused_or_dropped_not_a_server_error() -> None:
    body = json.loads((FIXTURES / "triggered.json").read_bytes())
    body["event"]["data"]["incident_key"] = "k" * 300  # cannot be a dedup key (at most 255)
    body["event"]["data"]["html_url"] = "https://acme.pagerduty.com/" + "x" * 3_000
    [event] = ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
    assert event.external == ExternalLink(system="pagerduty.incident", id="PGR0VU2")
    body["event"]["data"]["id"] = "P" * 300
    with pytest.raises(InputError, match="at most 256"):
        ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
