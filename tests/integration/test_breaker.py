"""Circuit breakers and poison actions in the outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import timedelta

from pydantic import SecretStr
from sqlalchemy import func, insert, select

from baton.clock import FakeClock, to_ms
from baton.connectors.base import Delivery, OutboundAction
from baton.connectors.config import HttpConfig, WebhookConfig
from baton.connectors.webhook import WebhookConnector
from baton.engine.breaker import Breakers, BreakerSettings, circuit_states
from baton.engine.outbox import Outbox
from baton.errors import PermanentConnectorError, TransientConnectorError
from baton.store.db import Database
from baton.store.schema import audit_log, outbox
from tests.helpers import outbox_row
from tests.standins.fixtures import WEBHOOK_SECRET
from tests.standins.server import Fault
from tests.standins.webhook import WebhookStandIn


def queue(db: Database, clock: FakeClock, rows: list[tuple[str, str, str]]) -> None:
    """Queue actions as (ticket, connector, key)."""
    now = to_ms(clock.now())
    with db.write() as conn:
        conn.execute(
            insert(outbox),
            [
                outbox_row(
                    key=key,
                    ticket=ticket,
                    connector=connector,
                    kind="notify",
                    params={"key": key},
                    now_ms=now,
                )
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
        self.poison_calls = 0

    def send(self, action: OutboundAction) -> Delivery:
        if self.down:
            raise TransientConnectorError("503 Service Unavailable")
        if self.poison is not None and action.params.get("key") == self.poison:
            self.poison_calls += 1
            raise TransientConnectorError("500 for this payload", retry_after=0)
        key = str(action.params.get("key", action.key))
        self.delivered.append(key)
        return Delivery(external_id=key)


def statuses(db: Database) -> dict[str, int]:
    with db.reader.connect() as conn:
        rows = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
    return {status: int(n) for status, n in rows}


BATCH = 100  # actions a worker claims in one round
ATTEMPTS = 4  # max_attempts: the poison is dead-lettered at its fourth failure
ROUND = timedelta(seconds=10)  # longer than any backoff before the last attempt (at most 2**2 s)


def poison_rows() -> list[tuple[str, str, str]]:
    """1,000 healthy actions on tickets of their own, and one poison among the first batch."""
    rows = [(f"T-{i}", "slack", f"k{i}") for i in range(1000)]
    rows.insert(10, ("T-poison", "slack", "poison"))
    return rows


def drain(db: Database, box: Outbox, clock: FakeClock, healthy: Callable[[], int]) -> tuple[int, int]:
    """Worker rounds (claim up to ``BATCH``, send, then ``ROUND`` passes) until nothing is left to
    send: (the round in which the last healthy action was delivered, rounds in all)."""
    rounds, healthy_done = 0, 0
    while statuses(db).keys() & {"pending", "claimed"} and rounds < 50:
        box.deliver(limit=BATCH)
        clock.advance(ROUND)
        rounds += 1
        if not healthy_done and healthy() == 1000:
            healthy_done = rounds
    return healthy_done, rounds


def assert_dead_after_exactly(db: Database, attempts: int) -> None:
    with db.reader.connect() as conn:
        dead = conn.execute(
            select(outbox.c.idempotency_key, outbox.c.attempts, outbox.c.failures).where(
                outbox.c.status == "dead"
            )
        ).one()
        records = [
            (kind, json.loads(body))
            for kind, body in conn.execute(
                select(audit_log.c.kind, audit_log.c.body).where(
                    audit_log.c.ticket_id == "T-poison",
                    audit_log.c.kind.in_(("action.failed", "action.dead")),
                )
            )
        ]
    assert (dead.idempotency_key, dead.attempts, dead.failures) == ("poison", attempts, attempts)
    assert [kind for kind, _ in records] == ["action.failed"] * (attempts - 1) + ["action.dead"]
    assert [body["attempt"] for _, body in records] == list(range(1, attempts + 1))


def test_a_poison_action_is_dead_lettered_while_a_thousand_healthy_ones_flow(
    db: Database, clock: FakeClock
) -> None:
    queue(db, clock, poison_rows())
    target = Target("slack", poison="poison")
    box = Outbox(
        db=db,
        connectors={"slack": target},
        clock=clock,
        worker="w",
        max_attempts=ATTEMPTS,
        breakers=Breakers(
            db=db, clock=clock, settings=BreakerSettings(failures_to_open=50, fallback_connector=None)
        ),
    )
    healthy_done, rounds = drain(db, box, clock, lambda: len(target.delivered))
    assert len(target.delivered) == 1000 and len(set(target.delivered)) == 1000
    assert statuses(db) == {"done": 1000, "dead": 1}
    # The healthy ones never waited on the poison one: as many rounds as the batches they fill,
    # the poison taking one place in each of its rounds.
    assert healthy_done <= math.ceil(1001 / BATCH) + 1, healthy_done
    assert target.poison_calls == ATTEMPTS
    assert rounds == healthy_done  # the poison was dead before the last healthy batch
    assert_dead_after_exactly(db, ATTEMPTS)


def test_a_poison_target_that_hangs_until_the_timeout_does_not_hold_up_the_healthy_ones(
    db: Database, clock: FakeClock
) -> None:
    """The same over real HTTP: the webhook stand-in never answers the poison action (the
    connector's read timeout ends each attempt) and answers every other one at once."""
    queue(db, clock, poison_rows())
    with WebhookStandIn(WEBHOOK_SECRET, now=lambda: clock.now().timestamp()) as hook:
        hook.inject(Fault.hang(30).matching(b'"key":"poison"').always())
        http = HttpConfig(allow=("127.0.0.1/32",), connect_timeout=1.0, read_timeout=0.5, total_timeout=2.0)
        connector = WebhookConnector(
            WebhookConfig(url=f"{hook.url}/hooks/baton", secret=SecretStr(WEBHOOK_SECRET), http=http),
            clock=clock,
        )
        box = Outbox(db=db, connectors={"slack": connector}, clock=clock, worker="w", max_attempts=ATTEMPTS)
        try:
            healthy_done, _ = drain(db, box, clock, lambda: len(hook.effects))
        finally:
            connector.close()
        hung = [r for r in hook.requests if r.fault == "hang"]
    assert len(hook.effects) == 1000 and hook.rejected == []
    assert statuses(db) == {"done": 1000, "dead": 1}
    assert healthy_done <= math.ceil(1001 / BATCH) + 1, healthy_done
    assert len(hung) == ATTEMPTS and {r.headers["webhook-id"] for r in hung} == {"poison"}
    assert_dead_after_exactly(db, ATTEMPTS)
    with db.reader.connect() as conn:
        error = conn.execute(select(outbox.c.last_error).where(outbox.c.status == "dead")).scalar_one()
        states = circuit_states(conn, now=clock.now())
    assert "timed out" in error
    assert [s["state"] for s in states] in ([], ["closed"])  # healthy answers between its failures


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


def test_half_open_gives_its_one_trial_to_one_worker_at_a_time(db: Database, clock: FakeClock) -> None:
    """Unit-sized twin of tests/e2e/test_circuit_half_open.py (two worker processes)."""
    queue(db, clock, [(f"T-{i}", "jira", f"j{i}") for i in range(3)])
    settings = BreakerSettings(failures_to_open=1, cooldown=timedelta(seconds=30), notify=False)
    breakers = Breakers(db=db, clock=clock, settings=settings)
    jira = Target("jira", down=True)
    box = Outbox(
        db=db, connectors={"jira": jira}, clock=clock, worker="a", max_attempts=100, breakers=breakers
    )
    assert box.deliver(limit=1).retried == 1  # opens
    clock.advance(timedelta(seconds=31))
    with db.reader.connect() as conn:
        assert circuit_states(conn, now=clock.now())[0]["state"] == "half_open"
    with db.write() as conn:
        first = breakers.blocked(conn)
    with db.write() as conn:
        second = breakers.blocked(conn)
    assert first == (set(), {"jira"})  # the first worker has the trial
    assert second == ({"jira"}, set())  # the second one waits for its outcome
    with db.reader.connect() as conn:
        kinds = [k for (k,) in conn.execute(select(audit_log.c.kind).order_by(audit_log.c.seq))]
    assert [k for k in kinds if k.startswith("connector.")] == ["connector.opened", "connector.half_open"]
    with db.reader.connect() as conn:
        assert circuit_states(conn, now=clock.now())[0]["state"] == "half_open"
    with db.write() as conn:
        breakers.release_trials(conn, {"jira"})  # nothing to try after all: handed back
    with db.write() as conn:
        assert breakers.blocked(conn) == (set(), {"jira"})
    # A trial whose worker never reports back is held one cooldown, then offered again.
    clock.advance(timedelta(seconds=29))
    with db.write() as conn:
        assert breakers.blocked(conn) == ({"jira"}, set())
    clock.advance(timedelta(seconds=2))
    # Through the outbox: one trial, it fails, the circuit is open for another cooldown.
    assert box.deliver(limit=10).claimed == 1
    with db.reader.connect() as conn:
        assert circuit_states(conn, now=clock.now())[0]["state"] == "open"
    assert box.deliver(limit=10).claimed == 0


def test_a_trial_is_held_as_long_as_its_send_may_last_not_only_one_cooldown(
    db: Database, clock: FakeClock
) -> None:
    # A short cooldown and a dead target that hangs: the trial's send may run until its timeout
    # (bounded by the claim's lease), and no second trial may start meanwhile.
    queue(db, clock, [(f"T-{i}", "jira", f"j{i}") for i in range(2)])
    settings = BreakerSettings(
        failures_to_open=1, cooldown=timedelta(seconds=5), trial_hold=timedelta(seconds=30), notify=False
    )
    breakers = Breakers(db=db, clock=clock, settings=settings)
    box = Outbox(
        db=db,
        connectors={"jira": Target("jira", down=True)},
        clock=clock,
        worker="a",
        max_attempts=100,
        breakers=breakers,
    )
    assert box.deliver(limit=1).retried == 1  # opens
    clock.advance(timedelta(seconds=6))
    with db.write() as conn:
        assert breakers.blocked(conn) == (set(), {"jira"})  # worker a's trial, still sending...
    clock.advance(timedelta(seconds=6))  # ...past one cooldown
    with db.write() as conn:
        assert breakers.blocked(conn) == ({"jira"}, set())  # no second trial
    clock.advance(timedelta(seconds=25))  # past the hold (30 s from the trial): its claim is gone too
    with db.write() as conn:
        assert breakers.blocked(conn) == (set(), {"jira"})


def test_a_trial_the_vendor_refuses_as_wrong_still_closes_the_circuit(db: Database, clock: FakeClock) -> None:
    # A 4xx to the trial action is the vendor answering: it is up, the other actions may go.
    queue(db, clock, [("T-1", "jira", "bad"), ("T-2", "jira", "good")])

    class Refusing(Target):
        def send(self, action: OutboundAction) -> Delivery:
            if action.params.get("key") == "bad" and not self.down:
                raise PermanentConnectorError("400 Bad Request: field 'summary' is required")
            return super().send(action)

    jira = Refusing("jira", down=True)
    settings = BreakerSettings(failures_to_open=1, cooldown=timedelta(seconds=30), notify=False)
    box = Outbox(
        db=db,
        connectors={"jira": jira},
        clock=clock,
        worker="a",
        max_attempts=100,
        breakers=Breakers(db=db, clock=clock, settings=settings),
    )
    assert box.deliver(limit=1).retried == 1  # opens
    jira.down = False
    clock.advance(timedelta(seconds=31))
    assert box.deliver(limit=1).dead == 1  # the trial: refused for what it is
    with db.reader.connect() as conn:
        assert circuit_states(conn, now=clock.now())[0]["state"] == "closed"
    assert box.deliver(limit=10).delivered == 1 and jira.delivered == ["good"]


def test_a_dead_lettered_action_says_why_and_counts_every_failure(db: Database, clock: FakeClock) -> None:
    """What `baton outbox list` shows: the error that killed the action, and as many failures as
    the target saw, whether it died at once (a permanent error) or at the attempt limit."""
    queue(db, clock, [("T-1", "jira", "gone"), ("T-2", "jira", "flaky")])

    class Failing:
        name = "jira"

        def send(self, action: OutboundAction) -> Delivery:
            if action.params["key"] == "gone":
                raise PermanentConnectorError("HTTP 410 Gone: the project was deleted")
            raise TransientConnectorError(f"HTTP 503 on attempt {action.attempt}", retry_after=0)

    box = Outbox(db=db, connectors={"jira": Failing()}, clock=clock, worker="w", max_attempts=3)
    for _ in range(5):
        box.deliver()
        clock.advance(timedelta(minutes=1))
    with db.reader.connect() as conn:
        rows = conn.execute(
            select(
                outbox.c.idempotency_key, outbox.c.status, outbox.c.failures, outbox.c.last_error
            ).order_by(outbox.c.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("gone", "dead", 1, "HTTP 410 Gone: the project was deleted"),
        ("flaky", "dead", 3, "HTTP 503 on attempt 3"),
    ]
