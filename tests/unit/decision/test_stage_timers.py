"""Time in stage (docs/policy.md section 9, `stuck`): a timer set when the ticket enters a stage,
firing only if the ticket is still in it, cancelled when it leaves; in calendar or business time.

The decision policy has ``stuck-waiting-on-customer`` (pending for 1d of calendar time) and
``stuck-with-engineering`` (escalated for 4h of business time on the office calendar, Monday to
Friday 09:00-17:00 UTC, unless the ticket is tagged quiet); ``bug-handoff`` escalates bugs on
creation. Each row plays one ticket and names when the rule's timer fires, if it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from baton.engine.decide import decide
from baton.model import Context, Decision
from baton.policy.model import Policy
from baton.policy.testing import TestCase, run_case
from tests.helpers import event
from tests.unit.decision.conftest import Problems

MON = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
REPLY = {"after": "30m", "type": "agent.replied"}
PENDING = {"after": "1h", "type": "status.changed", "status": "pending"}
ENG, BUG = "stuck-with-engineering", {"tags": ["bug"]}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """2 March 2026 (a Monday) is day 2."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


ROWS: list[tuple[str, str, datetime, dict[str, Any], list[dict[str, Any]], str, datetime | None, bool]] = [
    # (case, rule, start, ticket, events, let time run to, the timer fires at, the rule applies)
    ("pending a day", "stuck-waiting-on-customer", MON, {}, [REPLY, PENDING], "30h", at(3, 10), True),
    ("not yet a day", "stuck-waiting-on-customer", MON, {}, [REPLY, PENDING], "24h", None, False),
    (
        "the customer answers: cancelled", "stuck-waiting-on-customer", MON, {},
        [REPLY, PENDING, {"after": "10h", "type": "customer.replied"}], "40h", None, False,
    ),
    (
        "pending again: counted from the second entry", "stuck-waiting-on-customer", MON, {},
        [REPLY, PENDING, {"after": "10h", "type": "customer.replied"},
         {"after": "12h", "type": "status.changed", "status": "pending"}],
        "40h", at(3, 21), True,
    ),
    (
        "solved while pending: cancelled", "stuck-waiting-on-customer", MON, {},
        [REPLY, PENDING, {"after": "5h", "type": "ticket.solved"}], "40h", None, False,
    ),
    (
        "calendar time runs through the weekend", "stuck-waiting-on-customer", at(6, 16), {},
        [REPLY, PENDING], "30h", at(7, 17), True,
    ),
    ("business: Monday 09:00 + 4h", ENG, MON, BUG, [], "5h", at(2, 13), True),
    ("business: over the night", ENG, at(2, 15), BUG, [], "22h", at(3, 11), True),
    ("business: over the weekend", ENG, at(6, 16), BUG, [], "70h", at(9, 12), True),
    ("business: opened at night", ENG, at(2, 20), BUG, [], "20h", at(3, 13), True),
    (
        "fires, but its condition does not hold", ENG, MON, {"tags": ["bug", "quiet"]},
        [], "5h", at(2, 13), False,
    ),
    (
        "solved in time: cancelled", ENG, MON, BUG,
        [{"after": "2h", "type": "ticket.solved"}], "10h", None, False,
    ),
]  # fmt: skip


def play(
    policy: Policy, start: datetime, ticket: dict[str, Any], events: Sequence[dict[str, Any]], until: str
) -> list[Decision]:
    case = TestCase.model_validate(
        {
            "name": "stage",
            "start": start,
            "ticket": {"subject": "x", **ticket},
            "events": list(events),
            "at": until,
            "expect": {},
        }
    )
    result = run_case(policy, case)
    assert result.ok, result.failures
    return result.decisions


@pytest.mark.parametrize(
    ("rule", "start", "ticket", "events", "until", "fires_at", "applies"),
    [row[1:] for row in ROWS],
    ids=[row[0] for row in ROWS],
)
def test_time_in_stage(
    decision_policy: Policy,
    rule: str,
    start: datetime,
    ticket: dict[str, Any],
    events: list[dict[str, Any]],
    until: str,
    fires_at: datetime | None,
    applies: bool,
) -> None:
    decisions = play(decision_policy, start, ticket, events, until)
    fired = [d.decided_at for d in decisions for r in d.reasons if r.rule == f"stuck.{rule}" and r.matched]
    assert fired == ([fires_at] if fires_at else []), fired
    applied = [r.rule for r in decisions[-1].ticket.escalations]
    assert (f"escalation.{rule}" in applied) is applies, applied


def test_the_timer_is_set_on_entry_and_cancelled_on_leaving(decision_policy: Policy) -> None:
    decisions = play(
        decision_policy, MON, {}, [REPLY, PENDING, {"after": "2h", "type": "customer.replied"}], "3h"
    )
    entered, left = decisions[2], decisions[3]
    assert [(t.name, t.due_at) for t in entered.timers_set if t.name.startswith("stuck.")] == [
        ("stuck.stuck-waiting-on-customer", at(3, 10))
    ]
    assert "stuck.stuck-waiting-on-customer" in left.timers_cancel


def test_a_stale_timer_is_ignored(decision_policy: Policy) -> None:
    """A timer that fires for an entry the ticket has since left (its ``since`` no longer the
    ticket's) changes nothing."""
    opening = event(1, subject="x", tags=["bug"], at=MON)
    ticket = decide(None, opening, Context(), decision_policy, MON).ticket
    timer = event(
        2, "timer.fired", ticket=1, at=at(2, 13),
        data={"name": "stuck.stuck-with-engineering", "stuck": "stuck-with-engineering",
              "stage": "escalated", "since": at(2, 8).isoformat()},
    )  # fmt: skip
    timer = timer.model_copy(update={"ticket_id": ticket.id, "external": None})
    d = decide(ticket, timer, Context(), decision_policy, at(2, 13))
    (reason,) = [r for r in d.reasons if r.rule == "stuck.stuck-with-engineering"]
    assert not reason.matched and reason.note and "ignored" in reason.note
    assert d.ticket.escalations == ticket.escalations


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("stuck: {stage: pending, for: 1d}", "stuck: {stage: solved, for: 1d}", "stage"),
        ("stuck: {stage: pending, for: 1d}", "stuck: {stage: pending, for: 0h}", "longer than 0s"),
        ("stuck: {stage: pending, for: 1d}", "stuck: {stage: pending, for: soon}", "'soon' is not valid"),
        ("calendar: office}", "calendar: offise}", "unknown calendar 'offise'"),
        (
            "stuck: {stage: pending, for: 1d}",
            "stuck: {stage: pending, for: 1d, calendar: office}",
            "only used",
        ),
        ("    stuck: {stage: pending, for: 1d}\n", "", "missing field 'when'"),
    ],
)
def test_bad_time_in_stage_is_a_located_error(
    problems_after: Problems, old: str, new: str, message: str
) -> None:
    problems, path, line = problems_after("escalation.yaml", old, new)
    assert len(problems) == 1, problems
    assert message in problems[0], problems
    assert problems[0].startswith(f"{path}:"), problems
    reported = int(problems[0].removeprefix(f"{path}:").split(":")[0])
    assert line - 8 <= reported <= line, (line, problems)  # at the rule or inside it
