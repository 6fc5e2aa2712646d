"""Time in stage on the live runtime (SQLite and PostgreSQL): the timer is a durable row set when
the ticket enters the stage, fired by the worker if the ticket is still there, cancelled when it
leaves. The decision policy's ``stuck-waiting-on-customer`` watches 1 day in pending."""

from __future__ import annotations

from datetime import timedelta

import pytest

from baton.clock import FakeClock
from baton.engine.runtime import Engine
from baton.model import Event
from baton.policy.loader import load_policy
from baton.policy.model import Policy
from baton.store import read
from baton.store.db import Database
from tests.conftest import START
from tests.helpers import event
from tests.unit.decision.conftest import DECISION

RULE = "escalation.stuck-waiting-on-customer"


@pytest.fixture(scope="module")
def decision_policy() -> Policy:
    return load_policy(DECISION)


def play(db: Database, policy: Policy, events: list[Event], *, until: timedelta) -> list[str]:
    """Ingest ``events`` at their times with the worker firing due timers between them and up to
    ``START + until``; the escalations applied to the ticket."""
    clock = FakeClock(START)
    engine = Engine(db=db, policy=policy, clock=clock)
    ticket_id = None
    for e in [*events, None]:
        target = e.occurred_at if e is not None else START + until
        while clock.now() < target:  # the worker polls every ten minutes
            clock.set(min(clock.now() + timedelta(minutes=10), target))
            engine.fire_due_timers()
        if e is not None:
            (result,) = engine.ingest([e])
            ticket_id = result.ticket_id
    assert ticket_id is not None
    with db.reader.connect() as conn:
        ticket = read.get_ticket(conn, ticket_id)
    assert ticket is not None
    return [x.rule for x in ticket.escalations]


def story(*extra: Event) -> list[Event]:
    return [
        event(1, subject="Logs needed", ticket="k"),
        event(2, "agent.replied", ticket="k", at=START + timedelta(minutes=30)),
        event(3, "status.changed", ticket="k", at=START + timedelta(hours=1), status="pending"),
        *extra,
    ]


def test_nothing_fires_before_the_day_is_up(db: Database, decision_policy: Policy) -> None:
    assert RULE not in play(db, decision_policy, story(), until=timedelta(hours=24, minutes=50))


def test_the_timer_fires_after_the_day(db: Database, decision_policy: Policy) -> None:
    assert RULE in play(db, decision_policy, story(), until=timedelta(hours=25, minutes=10))


def test_leaving_the_stage_cancels_the_timer(db: Database, decision_policy: Policy) -> None:
    back = event(4, "customer.replied", ticket="k", at=START + timedelta(hours=5))
    assert RULE not in play(db, decision_policy, story(back), until=timedelta(hours=40))
