"""Circuit breakers and poison actions in the outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, insert, select

from baton.clock import FakeClock, to_ms
from baton.connectors.base import Delivery, OutboundAction
from baton.engine.breaker import Breakers, BreakerSettings, circuit_states
from baton.engine.outbox import Outbox
from baton.errors import TransientConnectorError
from baton.store.db import Database
from baton.store.schema import audit_log, outbox


def queue(db: Database, clock: FakeClock, rows: list[tuple[str, str, str]]) -> None:
    """Queue actions as (ticket, connector, key)."""
    now = to_ms(clock.now())
    with db.write() as conn:
        conn.execute(
            insert(outbox),
            [
                {
                    "idempotency_key": key,
                    "ticket_id": ticket,
                    "decision_id": "D-1",
                    "action_name": f"a-{key}",
                    "connector": connector,
                    "kind": "notify",
                    "params": {"key": key},
                    "status": "pending",
                    "attempts": 0,
                    "available_ms": now,
                    "created_ms": now,
                }
                for ticket, connector, key in rows
            ],
        )


class Target:
    """A stand-in target that is down until told otherwise, and fails one poison key forever."""

    def __init__(self, name: str, *, down: bool = False, poison: str | None = None) -> None:
        self.name = name
        self.down = down
        self.poison = poison
        self.delivered: list[str] = []

    def send(self, action: OutboundAction) -> Delivery:
        if self.down:
            raise TransientConnectorError("503 Service Unavailable")
        if self.poison is not None and action.params.get("key") == self.poison:
            raise TransientConnectorError("500 for this payload", retry_after=0)
        key = str(action.params.get("key", action.key))
        self.delivered.append(key)
        return Delivery(external_id=key)


def statuses(db: Database) -> dict[str, int]:
    with db.reader.connect() as conn:
        rows = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
    return {status: int(n) for status, n in rows}


def test_a_poison_action_is_dead_lettered_while_a_thousand_healthy_ones_flow(
    db: Database, clock: FakeClock
) -> None:
    rows = [(f"T-{i}", "slack", f"k{i}") for i in range(1000)]
    rows.insert(10, ("T-poison", "slack", "poison"))
    queue(db, clock, rows)
    target = Target("slack", poison="poison")
    box = Outbox(
        db=db,
        connectors={"slack": target},
        clock=clock,
        worker="w",
        max_attempts=4,
        breakers=Breakers(
            db=db, clock=clock, settings=BreakerSettings(failures_to_open=50, fallback_connector=None)
        ),
    )
    rounds = 0
    while statuses(db).get("pending", 0) and rounds < 20:
        box.deliver(limit=500)
        clock.advance(timedelta(seconds=1))
        rounds += 1
    assert len(target.delivered) == 1000 and len(set(target.delivered)) == 1000
    assert statuses(db) == {"done": 1000, "dead": 1}
    assert rounds <= 6  # the healthy ones never waited on the poison one
    with db.reader.connect() as conn:
        dead = conn.execute(
            select(outbox.c.attempts, outbox.c.last_error).where(outbox.c.status == "dead")
        ).one()
    assert dead.attempts == 4


def test_the_circuit_opens_on_a_dead_target_holds_its_actions_and_closes_when_it_recovers(
    db: Database, clock: FakeClock
) -> None:
    queue(
        db,
        clock,
        [(f"T-{i}", "jira", f"j{i}") for i in range(20)] + [(f"U-{i}", "slack", f"s{i}") for i in range(5)],
    )
    jira, slack, fallback = Target("jira", down=True), Target("slack"), Target("log")
    settings = BreakerSettings(failures_to_open=3, cooldown=timedelta(seconds=30), fallback_connector="log")
    box = Outbox(
        db=db,
        connectors={"jira": jira, "slack": slack, "log": fallback},
        clock=clock,
        worker="w",
        max_attempts=100,
        breakers=Breakers(db=db, clock=clock, settings=settings),
    )
    box.deliver(limit=100)
    with db.reader.connect() as conn:
        (state,) = [s for s in circuit_states(conn, now=clock.now()) if s["connector"] == "jira"]
    assert state["state"] == "open"
    assert len(slack.delivered) == 5  # other connectors keep flowing
    # while open, nothing is claimed for jira even once its retries are due
    clock.advance(timedelta(seconds=10))
    before = statuses(db)
    stats = box.deliver(limit=100)
    assert stats.claimed == 1  # only the fallback notice
    assert fallback.delivered, "people are told the channel is down"
    assert statuses(db)["pending"] == before["pending"] - 1
    # after the cooldown, one trial action: still down, so open again
    clock.advance(timedelta(seconds=30))
    assert box.deliver(limit=100).claimed == 1
    with db.reader.connect() as conn:
        assert circuit_states(conn, now=clock.now())[0]["state"] == "open"
    # it recovers: the next trial closes the circuit and everything waiting is delivered, none lost
    jira.down = False
    clock.advance(timedelta(seconds=31))
    box.deliver(limit=100)
    assert len(jira.delivered) == 1  # one trial, not the whole queue at once
    with db.reader.connect() as conn:
        assert circuit_states(conn, now=clock.now())[0]["state"] == "closed"
    for _ in range(10):
        clock.advance(timedelta(minutes=5))
        box.deliver(limit=100)
    assert sorted(jira.delivered) == sorted(f"j{i}" for i in range(20))
    with db.reader.connect() as conn:
        kinds = list(
            conn.execute(select(audit_log.c.kind).where(audit_log.c.kind.like("connector.%"))).scalars()
        )
    assert kinds[0] == "connector.opened" and kinds[-1] == "connector.closed"
