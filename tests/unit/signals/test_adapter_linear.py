"""Linear data-change webhooks: issues and comments become the right canonical events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from baton.connectors.linear import READ_BACK, STAGE_TYPES
from baton.errors import InputError
from baton.model import Event, EventType, ExternalLink
from baton.signals.adapters.base import Delivery
from baton.signals.adapters.linear import STATE_STAGES, LinearAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks" / "linear"
RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ADAPTER = LinearAdapter()
ISSUE = "2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9"
URL = "https://linear.app/acme/issue/ENG-12/export-fails-for-accounts-with-over-10k-rows"


def body(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_bytes())
    return loaded


def parse(payload: dict[str, Any] | str, headers: dict[str, str] | None = None) -> list[Event]:
    raw = (
        (FIXTURES / f"{payload}.json").read_bytes()
        if isinstance(payload, str)
        else json.dumps(payload).encode()
    )
    return ADAPTER.parse(Delivery.from_bytes(raw, received_at=RECEIVED, headers=headers))


def test_a_created_issue_opens_a_ticket_with_its_fields_and_its_marker_names_no_ticket() -> None:
    [event] = parse("issue_created", {"Linear-Delivery": "d-1"})
    assert (event.source, event.type) == ("linear", EventType.TICKET_CREATED)
    assert event.event_id == f"Issue:create:{ISSUE}:2026-03-02T09:00:00.000Z:-"  # nothing it was before
    assert event.external == ExternalLink(system="linear", id=ISSUE, url=URL)
    assert event.ticket_id is None  # the connector's marker line: anyone can write one
    assert event.fields.model_dump(mode="json", exclude_none=True) == {
        "subject": "Export fails for accounts with over 10k rows",
        "body": "Customers on the Enterprise plan cannot export.",  # the marker is not the customer's text
        "priority": "high",
        "status": "new",
        "assignee": "0b0f0a1e-5c3d-4e6f-8a9b-0c1d2e3f4a5b",
        "team": "ENG",
        "channel": "linear",
        "tags": ["Bug"],
    }
    assert event.actor is not None and (event.actor.kind, event.actor.name) == ("agent", "Sam Support")
    assert event.occurred_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert {
        "action": "create",
        "type": "Issue",
        "identifier": "ENG-12",
        "state": "Todo",
    }.items() <= event.data.items()


def test_a_completed_issue_is_a_status_change_to_solved() -> None:
    [event] = parse("issue_completed")
    assert (event.type, event.fields.status) == (EventType.STATUS_CHANGED, "solved")
    assert event.data["state"] == "Done" and event.data["state_type"] == "completed"
    assert event.data["from_state_id"] == "9a1b7d6e-2f3c-4b5a-8c9d-0e1f2a3b4c5d"


def test_one_update_of_priority_and_assignee_is_two_events() -> None:
    priority, assigned = parse("issue_priority_assignee", {"Linear-Delivery": "d-2"})
    change = priority.event_id
    assert change.startswith(f"Issue:update:{ISSUE}:{body('issue_priority_assignee')['data']['updatedAt']}:")
    assert (priority.type, priority.fields.priority, priority.event_id) == (
        EventType.PRIORITY_CHANGED,
        "urgent",
        change,
    )
    assert (assigned.type, assigned.fields.assignee, assigned.event_id) == (
        EventType.ASSIGNED,
        "7e6d5c4b-3a29-4817-8665-544332211009",
        f"{change}#1",
    )
    assert assigned.data["assignee_name"] == "Rae Senior"  # sortOrder changed too: not news


def test_other_changes_are_one_ticket_update() -> None:
    [event] = parse("issue_title")
    assert event.type == EventType.TICKET_UPDATED and event.data["changed"] == ["title"]
    assert event.fields.subject == "Export fails above 10k rows"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"assigneeId": None, "assignee": None}, ""),  # unassigned is a statement too
        ({"priority": 0, "priorityLabel": "No priority"}, None),
    ],
)
def test_unassigning_and_no_priority(change: dict[str, Any], expected: str | None) -> None:
    payload = body("issue_priority_assignee")
    payload["data"] |= change
    payload["updatedFrom"] = {key: "before" for key in change if key in ("assigneeId", "priority")}
    [event] = parse(payload)
    if "assigneeId" in change:
        assert (event.type, event.fields.assignee) == (EventType.ASSIGNED, expected)
    else:  # "no priority" is not a Baton priority: recorded, nothing set
        assert (event.type, event.fields.priority) == (EventType.TICKET_UPDATED, None)


def test_a_removed_issue_closes_and_a_comment_is_a_note_on_its_issue() -> None:
    [removed] = parse("issue_removed")
    assert (removed.type, removed.data["removed"]) == (EventType.CLOSED, True)
    [note] = parse("comment_created")
    assert note.type == EventType.NOTE_ADDED and note.external == ExternalLink(system="linear", id=ISSUE)
    assert note.data["comment"] == "Reproduced: the export query times out after 30 s."
    assert note.actor is not None and (note.actor.kind, note.actor.name) == ("agent", "Dana Dev")
    assert note.ticket_id is None  # found through the issue's link


def test_other_types_and_comment_edits_are_acknowledged_with_no_events() -> None:
    assert parse("project_updated") == []
    edited = body("comment_created") | {"action": "update"}
    assert parse(edited) == []


def test_the_id_names_the_change_by_signed_fields_whatever_the_header() -> None:
    # Linear's retry (same header, fresh webhookTimestamp) and a captured body posted again under
    # a new header name the same change: both are duplicates downstream.
    first = parse("issue_title", {"Linear-Delivery": "d-9"})
    retried = body("issue_title") | {"webhookTimestamp": 1772442099000}
    replayed = parse("issue_title", {"Linear-Delivery": "forged"})
    assert first[0].event_id == parse(retried, {"Linear-Delivery": "d-9"})[0].event_id
    assert first[0].event_id == replayed[0].event_id
    assert first[0].event_id.startswith(f"Issue:update:{ISSUE}:2026-03-02T10:30:00.000Z:")
    # Linear does not move updatedAt for every field: what the issue was before tells them apart.
    other = body("issue_title")
    other["updatedFrom"] = {**other["updatedFrom"], "title": "An older title"}
    assert parse(other)[0].event_id != first[0].event_id
    later = body("issue_title")
    later["data"] = later["data"] | {"updatedAt": "2026-03-02T10:30:00.001Z"}
    assert parse(later)[0].event_id != first[0].event_id  # the next change of the same issue
    [comment] = parse("comment_created", {"Linear-Delivery": "d-10"})
    assert comment.event_id.startswith("Comment:create:") and "d-10" not in comment.event_id


def test_without_the_change_fields_the_id_is_the_header_then_the_webhook_then_the_body() -> None:
    stripped = body("issue_title")
    del stripped["data"]["updatedAt"]
    assert parse(stripped, {"Linear-Delivery": "d-3"})[0].event_id == "d-3"
    first, again = parse(stripped), parse(stripped)
    assert first[0].event_id == again[0].event_id == "000042e3-d123-4980-b49f-8e140eef9329:1772442000000"
    del stripped["webhookId"]
    assert parse(stripped)[0].event_id.startswith("sha256:")


def test_the_marker_line_is_stripped_and_names_no_ticket() -> None:
    payload = body("issue_created")
    for description, text in [
        ("Text\n\nbaton-ticket: T-0123456789abcdef", "Text"),
        ("baton-ticket: T-0123456789abcdef\nthen more text", "then more text"),
        ("see baton-ticket: T-0123456789abcdef", "see baton-ticket: T-0123456789abcdef"),  # not a line
    ]:
        payload["data"]["description"] = description
        [event] = parse(payload)
        assert (event.ticket_id, event.fields.body) == (None, text), description


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ([1, 2], "JSON object"),
        ({"type": "Issue", "data": {"id": ISSUE}}, '"action"'),
        ({"action": "explode", "type": "Issue", "data": {"id": ISSUE}}, '"action"'),
        ({"action": "create", "type": "Issue", "data": {"title": "no id"}}, "names no issue"),
        ({"action": "create", "type": "Comment", "data": {"body": "orphan"}}, "names no issue"),
        ({"action": "create", "type": "Issue", "data": {"id": "x" * 300}}, "at most 256"),
    ],
)
def test_bodies_that_are_not_linear_webhooks_are_refused(payload: object, fragment: str) -> None:
    raw = json.dumps(payload).encode()
    with pytest.raises(InputError, match=fragment):
        ADAPTER.parse(Delivery.from_bytes(raw, received_at=RECEIVED))


def test_hostile_values_are_cut_or_dropped_not_trusted() -> None:
    payload = body("issue_created")
    payload["url"] = "javascript:alert(1)"
    payload["data"]["title"] = "t" * 5_000
    payload["data"]["priority"] = True  # not a number Linear sends
    payload["data"]["state"] = {"type": "exploded"}
    payload["data"]["labels"] = [{"name": "x" * 500}, {"name": 7}, "not a label"]
    [event] = parse(payload)
    assert event.external is not None and event.external.url is None
    assert event.fields.subject is not None and len(event.fields.subject) == 1_000
    assert (event.fields.priority, event.fields.status) == (None, None)
    assert event.fields.tags == ("x" * 64, "7")  # cut to 64; a non-object entry dropped


def test_the_connector_records_its_writes_as_this_adapter_reads_them() -> None:
    """No echo loop: what the Linear connector says it wrote is what comes back from here."""
    assert {kind: stage.value for kind, stage in STATE_STAGES.items()} == READ_BACK
    for stage, kind in STAGE_TYPES.items():  # every stage lands in a state whose reading is known
        assert kind in READ_BACK, stage
