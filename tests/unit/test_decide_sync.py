"""The sync step of ``decide``: which changes go to which linked system, in whose words."""

from __future__ import annotations

import dataclasses

import pytest

from baton.engine.decide_sync import reported, sync_actions
from baton.model import ExternalLink, Owner, Priority, Stage, Ticket, replace
from baton.policy.model import Member, Policy, SyncTarget
from tests.conftest import START
from tests.helpers import event


@pytest.fixture
def synced(policy: Policy) -> Policy:
    ann = Member("ann", "support", None, "UTC", frozenset(), 20, {"zendesk": "361", "jira": "acc-9"})
    return dataclasses.replace(
        policy,
        members={**policy.members, "ann": ann},
        sync=(
            SyncTarget("zendesk", "zendesk", ("assignee", "priority", "status")),
            SyncTarget("jira", "tracker", ("priority",)),
        ),
    )


def _ticket(*links: tuple[str, str]) -> Ticket:
    return Ticket(
        id="T-1",
        created_at=START,
        updated_at=START,
        external_links=tuple(ExternalLink(system=s, id=i) for s, i in links),
        stage=Stage.OPEN,
        stage_since=START,
        priority=Priority.NORMAL,
    )


def test_each_linked_system_hears_its_fields_in_its_own_words(synced: Policy) -> None:
    before = _ticket(("zendesk", "7"), ("jira", "10001"))
    after = replace(before, priority=Priority.URGENT, owner=Owner(role="l2", person="ann"))
    actions = sync_actions(before, after, event("x", "note.added", source="slack"), synced)
    assert [(a.name, a.connector, a.params["external_id"], a.params["changes"]) for a in actions] == [
        ("sync.zendesk", "zendesk", "7", {"assignee": "361", "priority": "urgent"}),
        ("sync.jira", "tracker", "10001", {"priority": "urgent"}),
    ]
    assert actions[0].params["note"] == "Baton: assignee - -> 361; priority normal -> urgent"


def test_nothing_is_written_to_a_system_the_ticket_is_not_linked_to(synced: Policy) -> None:
    before = _ticket(("jira", "10001"))
    after = replace(before, priority=Priority.HIGH)
    assert [a.name for a in sync_actions(before, after, event("x", source="slack"), synced)] == ["sync.jira"]


def test_what_a_system_reported_is_not_written_back_to_it(synced: Policy) -> None:
    before = _ticket(("zendesk", "7"), ("jira", "10001"))
    after = replace(before, priority=Priority.HIGH)
    report = event("z", "priority.changed", ticket="7", priority="high")
    assert reported(report) == {"priority": "high"}
    assert [a.name for a in sync_actions(before, after, report, synced)] == ["sync.jira"]


def test_opening_a_ticket_does_not_write_its_status_and_unchanged_values_are_quiet(synced: Policy) -> None:
    opened = _ticket(("zendesk", "7"))
    assert sync_actions(None, opened, event("z"), synced)[0].params["changes"] == {"priority": "normal"}
    assert sync_actions(opened, opened, event("z"), synced) == []
    pending = replace(opened, stage=Stage.PENDING)
    assert sync_actions(opened, pending, event("s", source="slack"), synced)[0].params["changes"] == {
        "status": "pending"
    }


def test_a_person_without_an_identity_there_is_not_named(synced: Policy) -> None:
    before = _ticket(("zendesk", "7"))
    after = replace(before, owner=Owner(role="l1", person="al"))  # al has no zendesk identity
    assert sync_actions(before, after, event("s", source="slack"), synced) == []
