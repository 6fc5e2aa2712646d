"""The fallback chain when nobody in a role is available: owner -> backup -> team on-call ->
manager (docs/policy.md section 11), with each step out of office in turn, and the team's
on-call resolved at the time, exactly across the clock change.

The decision policy: role ``l1`` is the pool [al] with backup bo, in team support whose
``oncall`` is the schedule support-duty (daily, 09:00 Berlin time from Monday 2 March 2026: sam,
tess, sam...) and whose manager is mia. Role ``l2`` (engineering) has no backup and no on-call.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from baton.policy.model import Policy
from baton.policy.owners import assign
from baton.policy.schedule import OutOfOffice
from tests.unit.decision.conftest import Problems

TUESDAY = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)  # tess's day (Tuesday 09:00 Berlin on)


def away(policy: Policy, people: tuple[str, ...], at: datetime) -> Policy:
    """The policy with ``people`` out of office for the day around ``at``."""
    entries = tuple(OutOfOffice(p, at - timedelta(hours=12), at + timedelta(hours=12)) for p in people)
    return dataclasses.replace(policy, out_of_office=entries)


@pytest.mark.parametrize(
    ("role", "at", "people_away", "person", "step"),
    [
        ("l1", TUESDAY, (), "al", "least loaded"),
        ("l1", TUESDAY, ("al",), "bo", "backup bo: nobody in l1 available"),
        ("l1", TUESDAY, ("al", "bo"), "tess", "team on-call tess: nobody in l1 available"),
        # tess is away too: the schedule's own backup (the next person in the rotation) covers
        ("l1", TUESDAY, ("al", "bo", "tess"), "sam", "team on-call sam: nobody in l1 available"),
        ("l1", TUESDAY, ("al", "bo", "tess", "sam"), "mia", "manager mia: nobody in l1 available"),
        ("l1", TUESDAY, ("al", "bo", "tess", "sam", "mia"), None, "nobody available for l1"),
        # a team without on-call: straight from the (missing) backup to the manager
        ("l2", TUESDAY, ("dee",), "eve", "manager eve: nobody in l2 available"),
        # Saturday 28 March: CET (UTC+1), the 09:00 hand-off is 08:00 UTC; tess until then, sam after
        ("l1", datetime(2026, 3, 28, 7, 59, tzinfo=UTC), ("al", "bo"), "tess", "team on-call tess"),
        ("l1", datetime(2026, 3, 28, 8, 0, tzinfo=UTC), ("al", "bo"), "sam", "team on-call sam"),
        # Sunday 29 March: CEST (UTC+2) from 02:00 local, so the 09:00 hand-off is 07:00 UTC
        ("l1", datetime(2026, 3, 29, 6, 59, tzinfo=UTC), ("al", "bo"), "sam", "team on-call sam"),
        ("l1", datetime(2026, 3, 29, 7, 0, tzinfo=UTC), ("al", "bo"), "tess", "team on-call tess"),
    ],
)
def test_the_chain_reaches_each_step_when_every_earlier_one_is_away(
    decision_policy: Policy,
    role: str,
    at: datetime,
    people_away: tuple[str, ...],
    person: str | None,
    step: str,
) -> None:
    policy = away(decision_policy, people_away, at)
    result = assign(policy, role, now=at, ticket_id="T-1")
    assert result.person == person, result.trail
    assert any(step in line for line in result.trail), result.trail
    for name in people_away:  # every person skipped is named as away on the trail
        if name not in ("al", "dee"):  # pool members are named by the pool step
            assert any(name in line and "out of office" in line for line in result.trail), result.trail


def test_the_team_on_call_is_resolved_at_the_time_of_the_decision(decision_policy: Policy) -> None:
    policy = away(
        decision_policy, ("al", "bo"), TUESDAY - timedelta(hours=12)
    )  # Monday 10:00 to Tuesday 10:00
    monday = assign(policy, "l1", now=TUESDAY - timedelta(days=1), ticket_id="T-1")
    tuesday = assign(policy, "l1", now=TUESDAY - timedelta(minutes=1), ticket_id="T-1")
    assert (monday.person, tuesday.person) == ("sam", "tess")


def test_an_unknown_on_call_schedule_is_a_located_check_error(problems_after: Problems) -> None:
    problems, path, line = problems_after("teams.yaml", "oncall: support-duty", "oncall: support-dutty")
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}:{line}:"), problems
    assert "unknown schedule 'support-dutty'" in problems[0]


def test_on_call_must_be_a_schedule_name(problems_after: Problems) -> None:
    problems, path, line = problems_after("teams.yaml", "oncall: support-duty", "oncall: [a, b]")
    assert problems and problems[0].startswith(f"{path}:{line}:"), problems
