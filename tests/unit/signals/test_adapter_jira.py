"""Jira Cloud and Service Management webhooks: issue, changelog and comment events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from baton.errors import InputError
from baton.model import Event, EventType
from baton.signals.adapters.base import Delivery
from baton.signals.adapters.jira import JiraAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks" / "jira"
RECEIVED = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
ADAPTER = JiraAdapter()
DELIVERY = {"X-Atlassian-Webhook-Identifier": "c0ffee00-1111-2222-3333-444455556666"}


def parse(name: str, headers: dict[str, str] | None = None) -> list[Event]:
    body = (FIXTURES / f"{name}.json").read_bytes()
    return ADAPTER.parse(Delivery.from_bytes(body, received_at=RECEIVED, headers=headers or {}))


Row = tuple[EventType, dict[str, Any], str | None]
# fixture -> the events, in order: (type, exact fields, actor kind)
CASES: dict[str, list[Row]] = {
    "issue_created": [
        (
            EventType.TICKET_CREATED,
            {
                "subject": "Checkout fails with card_declined for every card",
                "body": "Since 08:40 CET every checkout returns card_declined.\n\nAffects all stores.",
                "channel": "jira",
                "requester": "riley@hooli.example",
                "category": "Incident",
                "priority": "high",
                "status": "new",
                "tags": ["payments", "outage"],
            },
            "customer",
        )
    ],
    "status_changed": [(EventType.STATUS_CHANGED, {"status": "open"}, "agent")],
    "waiting_for_customer": [(EventType.STATUS_CHANGED, {"status": "pending"}, "agent")],
    "resolved": [(EventType.SOLVED, {}, "agent")],
    "reopened": [(EventType.REOPENED, {}, "customer")],
    "done_without_resolution": [(EventType.SOLVED, {}, "agent")],
    "multi_change": [
        (EventType.PRIORITY_CHANGED, {"priority": "urgent"}, "agent"),
        (EventType.ASSIGNED, {"assignee": "jo@acme.example"}, "agent"),
        (
            EventType.TICKET_UPDATED,
            {
                "subject": "Checkout down: card_declined for every card",
                "channel": "jira",
                "requester": "riley@hooli.example",
                "category": "Incident",
                "priority": "urgent",
                "tags": ["payments", "outage", "sev1"],
            },
            "agent",
        ),
    ],
    "unassigned": [(EventType.ASSIGNED, {"assignee": ""}, "agent")],
    "comment_customer": [
        (
            EventType.CUSTOMER_REPLIED,
            {"body": "It is still failing and we lose money every minute. Refund the failed fees please."},
            "customer",
        )
    ],
    "comment_public": [(EventType.AGENT_REPLIED, {}, "agent")],
    "comment_internal": [(EventType.NOTE_ADDED, {}, "agent")],
    "comment_software": [(EventType.NOTE_ADDED, {}, "agent")],
    "issue_deleted": [(EventType.CLOSED, {}, "agent")],
    "worklog_created": [],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_webhook_maps_to_its_events(name: str) -> None:
    events = parse(name)
    got = [
        (e.type, e.fields.model_dump(mode="json", exclude_none=True), e.actor.kind if e.actor else None)
        for e in events
    ]
    assert got == CASES[name]
    for event in events:
        assert event.source == "jira"
        assert event.external is not None
        assert (event.external.id, event.external.url) == (
            "10042",
            "https://acme.atlassian.net/browse/SUP-42",
        )
        assert event.data["key"] == "SUP-42"


def test_every_event_kind_jira_has_is_covered() -> None:
    kinds = {row[0] for rows in CASES.values() for row in rows}
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


def test_one_delivery_with_several_changes_numbers_its_events_from_the_delivery_id() -> None:
    events = parse("multi_change", DELIVERY)
    base = DELIVERY["X-Atlassian-Webhook-Identifier"]
    assert [e.event_id for e in events] == [base, f"{base}#1", f"{base}#2"]
    assert [e.event_id for e in parse("multi_change", DELIVERY)] == [e.event_id for e in events]


def test_without_the_delivery_header_the_body_hash_is_used() -> None:
    events = parse("multi_change")
    assert events[0].event_id.startswith("sha256:") and events[1].event_id == events[0].event_id + "#1"


def test_comments_carry_their_text_where_policy_and_the_brief_expect_it() -> None:
    [public] = parse("comment_public")
    assert public.data["comment"] == "We found the cause at our payment provider and are rolling out a fix."
    assert public.occurred_at == datetime(2026, 3, 2, 9, 5, tzinfo=UTC)  # the comment's own time
    [adf] = parse("comment_software")
    assert adf.data["comment"] == "Root cause: expired API key.\nRotated at 10:30."


def test_changes_record_what_changed() -> None:
    [event] = parse("status_changed")
    assert event.data["change"] == {"field": "status", "from": "Waiting for support", "to": "In Progress"}
    assert event.occurred_at == datetime(2026, 3, 2, 8, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "JSON object"),
        ({"webhookEvent": "jira:issue_created", "issue": {"key": "SUP-1"}}, "issue.id"),
    ],
)
def test_bodies_that_are_not_jira_webhooks_are_refused(body: object, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        ADAPTER.parse(Delivery.from_bytes(json.dumps(body).encode(), received_at=RECEIVED))


@pytest.mark.parametrize(
    ("labels", "ticket_id"),
    [
        (["payments", "baton-t-0123456789abcdef", "baton-" + "a" * 64], "T-0123456789abcdef"),
        (["payments", "outage"], None),
        (["baton-t-0123456789ABCDEF", "baton-t-0123", "xbaton-t-0123456789abcdef"], None),
        ([7, None, {"x": 1}], None),
    ],
)
def test_an_issues_ticket_label_is_a_claim_not_a_ticket(labels: list[Any], ticket_id: str | None) -> None:
    # Anyone can label an issue: the engine honours the claim only while that ticket's create is
    # in flight (tests/integration/test_linked_work.py).
    payload = json.loads((FIXTURES / "issue_created.json").read_bytes())
    payload["issue"]["fields"]["labels"] = labels
    events = ADAPTER.parse(
        Delivery.from_bytes(json.dumps(payload).encode(), received_at=RECEIVED, headers=DELIVERY)
    )
    assert [(e.ticket_id, e.data.get("claims_ticket")) for e in events] == [(None, ticket_id)]


def test_the_connectors_ticket_label_is_the_one_the_adapter_reads() -> None:
    from baton.connectors.jira import ticket_label
    from baton.signals.adapters.jira import baton_ticket

    assert baton_ticket([ticket_label("T-0123456789abcdef")]) == "T-0123456789abcdef"
