"""Alertmanager webhook v4: one event per alert, identified by the alert's state, on the group's ticket."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from baton.errors import InputError
from baton.model import Event, EventType
from baton.signals.adapters.alertmanager import AlertmanagerAdapter
from baton.signals.adapters.base import Delivery

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks" / "alertmanager"
RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ADAPTER = AlertmanagerAdapter()
GROUP = '{}/{severity="critical"}:{alertname="ProbeFailure"}'


def parse(name: str) -> list[Event]:
    return ADAPTER.parse(Delivery.from_bytes((FIXTURES / f"{name}.json").read_bytes(), received_at=RECEIVED))


CASES = {
    "firing": [
        (
            EventType.ALERT_FIRED,
            "1a30ba71cca2921f:firing:2026-03-02T08:58:45.828123+00:00",
            datetime(2026, 3, 2, 8, 58, 45, 828123, tzinfo=UTC),
        ),
        (
            EventType.ALERT_FIRED,
            "7c2e91d3a0b4f5e6:firing:2026-03-02T09:01:15.002000+00:00",
            datetime(2026, 3, 2, 9, 1, 15, 2000, tzinfo=UTC),
        ),
    ],
    "partly_resolved": [
        (
            EventType.ALERT_RESOLVED,
            "1a30ba71cca2921f:resolved:2026-03-02T08:58:45.828123+00:00",
            datetime(2026, 3, 2, 9, 20, 45, 828000, tzinfo=UTC),
        ),
        (
            EventType.ALERT_FIRED,
            "7c2e91d3a0b4f5e6:firing:2026-03-02T09:01:15.002000+00:00",
            datetime(2026, 3, 2, 9, 1, 15, 2000, tzinfo=UTC),
        ),
    ],
    "resolved": [
        (
            EventType.ALERT_RESOLVED,
            "7c2e91d3a0b4f5e6:resolved:2026-03-02T09:01:15.002000+00:00",
            datetime(2026, 3, 2, 9, 31, tzinfo=UTC),
        ),
    ],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_alert_is_one_event_with_its_state_as_id(name: str) -> None:
    events = parse(name)
    assert [(e.type, e.event_id, e.occurred_at) for e in events] == CASES[name]
    for event in events:
        assert event.external is not None
        assert (event.external.system, event.external.id) == ("alertmanager", GROUP)
        assert event.external.url == "http://alertmanager.example.org:9093"
        assert event.data["group_key"] == GROUP


def test_a_repeated_notification_repeats_only_ids_already_seen() -> None:
    first = {e.event_id for e in parse("firing")}
    later = {e.event_id for e in parse("partly_resolved")}
    assert len(later - first) == 1  # only the resolution is news; the still-firing alert is not


def test_a_fired_alert_describes_the_ticket_and_a_resolution_only_ends_it() -> None:
    fired = parse("firing")[0]
    assert fired.fields.model_dump(mode="json", exclude_none=True) == {
        "subject": "BlackBox probe failure: https://api.example.org",
        "body": "https://api.example.org has been down for over 5m.",
        "channel": "alert",
        "severity": "critical",
        "priority": "urgent",
    }
    assert fired.data["labels"] == {
        "alertname": "ProbeFailure",
        "instance": "https://api.example.org",
        "job": "http_checks",
        "severity": "critical",
    }
    resolved = parse("resolved")[0]
    assert resolved.fields.model_dump(exclude_none=True) == {}
    assert resolved.data["ends_at"] == "2026-03-02T09:31:00+00:00"


def test_a_long_group_key_is_hashed_into_an_id() -> None:
    body = json.loads((FIXTURES / "firing.json").read_bytes())
    body["groupKey"] = "{}:{" + ", ".join(f'label{i}="{"v" * 20}"' for i in range(20)) + "}"
    events = ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
    assert events[0].external is not None and events[0].external.id.startswith("sha256:")
    assert events[0].data["group_key"] == body["groupKey"]


def test_an_alert_without_a_fingerprint_gets_one_from_its_labels() -> None:
    body = json.loads((FIXTURES / "firing.json").read_bytes())
    for alert in body["alerts"]:
        del alert["fingerprint"]
    ids = [
        e.event_id
        for e in ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
    ]
    again = [
        e.event_id
        for e in ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
    ]
    assert ids == again and len(set(ids)) == 2


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"version": "3"}, "version"),
        ({"groupKey": None}, "groupKey"),
        ({"alerts": [{"status": "pending", "labels": {}}]}, "firing or resolved"),
        ({"alerts": ["x"]}, "JSON objects"),
    ],
)
def test_payloads_that_are_not_version_4_are_refused(change: dict[str, object], fragment: str) -> None:
    body = {**json.loads((FIXTURES / "firing.json").read_bytes()), **change}
    with pytest.raises(InputError, match=fragment):
        ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))
