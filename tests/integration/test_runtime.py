"""The runtime, timers and outbox on real SQLite and PostgreSQL."""

from __future__ import annotations

import json
import tempfile
from datetime import timedelta

import pytest
import sqlalchemy
from sqlalchemy import func, select, update

from baton import audit
from baton.clock import FakeClock
from baton.connectors.base import Connector, Delivery, OutboundAction, settle_before_creating
from baton.connectors.fake import FakeConnector
from baton.engine.outbox import Outbox
from baton.engine.runtime import Engine, idempotency_key
from baton.errors import PermanentConnectorError, TransientConnectorError
from baton.model import Stage
from baton.store import read
from baton.store.db import Database, after_commit, open_database
from baton.store.schema import (
    connector_state,
    decisions,
    events,
    external_links,
    metadata,
    outbox,
    sent_log,
    tickets,
    timers,
)
from tests.helpers import claim_as, event, minutes


def count(db: Database, table: object, *where: object) -> int:
    with db.reader.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())  # type: ignore[arg-type]


def test_migrations_build_exactly_the_declared_schema(db: Database) -> None:
    assert set(db.table_names()) == set(metadata.tables) | {"alembic_version"}
    db.migrate()  # idempotent


def test_after_commit_hooks_run_after_a_commit_and_never_after_a_rollback(db: Database) -> None:
    ran: list[str] = []
    with db.write() as conn:
        assert after_commit(conn, lambda: ran.append("committed"))
        assert ran == []  # not before the commit
    assert ran == ["committed"]
    with pytest.raises(RuntimeError), db.write() as conn:
        after_commit(conn, lambda: ran.append("rolled back"))
        raise RuntimeError("abandon")
    with db.write() as conn:
        pass  # the pooled connection again: no hook of the rolled-back transaction is left on it
    assert ran == ["committed"]
    with db.reader.connect() as conn:
        assert not after_commit(conn, lambda: ran.append("no write transaction"))


def assert_first_decides_on_what_second_stored(
    db: Database, first: Engine, second: Engine, ticket_id: str
) -> None:
    """``first`` tried an agent reply that was not kept (its version 2); ``second`` commits its
    own version 2, a customer reply; ``first`` must then decide on that, not on its own copy."""
    second.ingest([event(3, "customer.replied", ticket=1)])
    first.ingest([event(4, "customer.replied", ticket=1)])
    with db.reader.connect() as conn:
        ticket = read.get_ticket(conn, ticket_id)
    assert ticket is not None and ticket.version == 3
    assert (ticket.agent_replies, ticket.customer_replies) == (0, 2)


def test_a_connection_lost_in_a_write_is_reported_as_itself(db: Database) -> None:
    # What the engine's one-by-one retry catches (a DBAPIError), not an error about the cleanup.
    lost = sqlalchemy.exc.OperationalError("INSERT", {}, Exception("server closed the connection"))
    with pytest.raises(sqlalchemy.exc.OperationalError), db.write() as conn:
        conn.invalidate()
        raise lost
    with db.write() as conn:
        assert after_commit(conn, lambda: None)  # the pool hands out a working connection again


def test_a_savepoint_rolled_back_inside_a_committed_write_leaves_nothing_in_the_engine(
    db: Database,
    policy,
    clock: FakeClock,  # type: ignore[no-untyped-def]
) -> None:
    first, second = (Engine(db=db, policy=policy, clock=clock) for _ in range(2))
    (opened,) = first.ingest([event(1)])
    with db.write() as conn:
        savepoint = conn.begin_nested()
        first.ingest_in(conn, [event(2, "agent.replied", ticket=1)])
        savepoint.rollback()  # the transaction itself commits, without that version 2
    assert_first_decides_on_what_second_stored(db, first, second, opened.ticket_id or "")


def test_one_event_writes_everything_in_one_go(engine: Engine, db: Database) -> None:
    (result,) = engine.ingest([event(1, subject="Help", account_id="acme")])
    assert result.status == "accepted" and result.ticket_id and result.decision_id
    assert count(db, events) == 1
    assert count(db, tickets) == 1
    assert count(db, decisions) == 1
    assert count(db, external_links) == 1
    assert count(db, outbox, outbox.c.status == "pending") == 1
    assert count(db, timers, timers.c.status == "pending") == 6
    with db.reader.connect() as conn:
        assert audit.verify(conn).length == 3  # event, decision, action queued
        ticket = read.get_ticket(conn, result.ticket_id)
    assert ticket is not None and ticket.account_id == "acme" and ticket.external_links[0].id == "1"
    with db.reader.connect() as conn:  # bodies serialised once for the chain are stored as JSON objects
        body = conn.execute(select(events.c.body)).scalar_one()
        record = conn.execute(select(decisions.c.body)).scalar_one()
    assert body["event_id"] == "1" and record["ticket_id"] == result.ticket_id


def test_redelivery_is_recognised_within_and_across_batches(engine: Engine, db: Database) -> None:
    first = engine.ingest([event(1), event(1), event(2, "customer.replied", ticket=1)])
    assert [r.status for r in first] == ["accepted", "duplicate", "accepted"]
    assert first[1].ticket_id == first[0].ticket_id
    again = engine.ingest([event(2, "customer.replied", ticket=1), event(1)])
    assert [r.status for r in again] == ["duplicate", "duplicate"]
    assert count(db, events) == 2


def test_events_of_one_ticket_in_one_batch_see_each_other(engine: Engine, db: Database) -> None:
    results = engine.ingest(
        [event(1), event(2, "agent.replied", ticket=1), event(3, "ticket.solved", ticket=1, at=None)]
    )
    assert len({r.ticket_id for r in results}) == 1
    with db.reader.connect() as conn:
        ticket = read.get_ticket(conn, results[0].ticket_id or "")
    assert ticket is not None and ticket.stage == Stage.SOLVED and ticket.version == 3
    assert count(db, timers, timers.c.status == "pending") == 0


def test_engines_sharing_a_database_decide_on_each_others_writes(
    db: Database, policy, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    # Each engine keeps the tickets it committed; another process's write raises the stored
    # version, so the next batch reads the ticket again instead of deciding on a stale copy.
    first, second = (Engine(db=db, policy=policy, clock=clock) for _ in range(2))
    (opened,) = first.ingest([event(1)])
    second.ingest([event(2, "agent.replied", ticket=1)])
    first.ingest([event(3, "agent.replied", ticket=1)])
    with db.reader.connect() as conn:
        ticket = read.get_ticket(conn, opened.ticket_id or "")
    assert ticket is not None and ticket.version == 3 and ticket.agent_replies == 2


def test_a_rolled_back_batch_leaves_nothing_behind_in_the_engine(
    db: Database, policy, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    first, second = (Engine(db=db, policy=policy, clock=clock) for _ in range(2))
    (opened,) = first.ingest([event(1)])

    def refuse(conn: object) -> None:
        raise ValueError("disk trouble")

    sqlalchemy.event.listen(db.writer, "commit", refuse)  # the commit fails after all was written
    try:
        assert [r.status for r in first.ingest([event(2, "agent.replied", ticket=1)])] == ["failed"]
    finally:
        sqlalchemy.event.remove(db.writer, "commit", refuse)
    # The failed batch's version 2 was never committed; another engine commits its own version 2.
    assert_first_decides_on_what_second_stored(db, first, second, opened.ticket_id or "")


def test_batches_that_open_tickets_leave_the_timers_one_event_per_batch_would(
    db: Database,
    policy,
    clock: FakeClock,  # type: ignore[no-untyped-def]
) -> None:
    # A batch cancels no stored timer of a ticket it opens (it has none), but does cancel those of
    # a ticket an earlier batch opened: re-prioritised (its SLA timers move), replied to (some
    # stop), solved and reopened, in two batches, the pending timers are those of one per batch.
    stream = [
        event(1, priority="normal"),
        event(2, "priority.changed", ticket=1, priority="urgent"),
        event(3, "agent.replied", ticket=1),
        event(4, priority="high"),
        event(5, "ticket.solved", ticket=4),
        event(6, "priority.changed", ticket=1, priority="low"),
        event(7, "ticket.reopened", ticket=4),
    ]
    engine = Engine(db=db, policy=policy, clock=clock)
    engine.ingest(stream[:4])
    engine.ingest(stream[4:])
    with db.reader.connect() as conn:
        pending = conn.execute(
            select(timers.c.ticket_id, timers.c.name, timers.c.due_ms).where(timers.c.status == "pending")
        ).all()
    assert pending and sorted(pending) == sorted(one_event_per_batch_timers(policy, clock, stream))


def one_event_per_batch_timers(policy, clock: FakeClock, stream: list) -> list:  # type: ignore[no-untyped-def,type-arg]
    """The pending timers after ``stream``, one event per batch, in a database of their own."""
    with tempfile.TemporaryDirectory() as folder:
        other = open_database(f"sqlite:///{folder}/other.db")
        other.migrate()
        try:
            engine = Engine(db=other, policy=policy, clock=clock)
            for e in stream:
                engine.ingest([e])
            with other.reader.connect() as conn:
                return list(
                    conn.execute(
                        select(timers.c.ticket_id, timers.c.name, timers.c.due_ms).where(
                            timers.c.status == "pending"
                        )
                    ).all()
                )
        finally:
            other.dispose()


def test_a_failing_event_costs_only_itself(
    engine: Engine, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import baton.engine.runtime as runtime

    real = runtime.decide

    def flaky(ticket, ev, context, policy, now):  # type: ignore[no-untyped-def]
        if ev.event_id == "bad":
            raise ValueError("policy bug")
        return real(ticket, ev, context, policy, now)

    monkeypatch.setattr(runtime, "decide", flaky)
    results = engine.ingest([event(1), event("bad"), event(3)])
    assert [r.status for r in results] == ["accepted", "failed", "accepted"]
    assert results[1].error is not None and "policy bug" in results[1].error
    assert count(db, events) == 2
    with db.reader.connect() as conn:
        assert audit.verify(conn).ok


def test_timers_fire_once_through_decide(engine: Engine, db: Database, clock: FakeClock) -> None:
    engine.ingest([event(1, priority="urgent")])  # first response due in 30 min
    assert engine.fire_due_timers() == 0
    clock.advance(minutes(16))
    assert engine.fire_due_timers() == 1  # 50 %
    assert engine.fire_due_timers() == 0  # fired once
    clock.advance(minutes(20))
    assert engine.fire_due_timers() == 2  # 80 % and 100 %
    with db.reader.connect() as conn:
        (row,) = read.list_tickets(conn)
        ticket = read.get_ticket(conn, row["id"])
    assert ticket is not None and ticket.tier == "L2"  # first-response breach: L1 -> L2
    assert count(db, timers, timers.c.status == "fired") == 3
    assert count(db, events, events.c.source == "baton.timer") == 3


def test_timers_survive_a_restart(db: Database, policy, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    Engine(db=db, policy=policy, clock=clock).ingest([event(1, priority="urgent")])
    clock.advance(timedelta(hours=10))
    fresh = Engine(db=db, policy=policy, clock=clock)  # a new process, same database
    assert fresh.fire_due_timers() == 6


def test_cancelled_timers_do_not_fire(engine: Engine, clock: FakeClock) -> None:
    engine.ingest([event(1, priority="urgent"), event(2, "ticket.solved", ticket=1)])
    clock.advance(timedelta(days=30))
    assert engine.fire_due_timers() == 0


def _outbox(
    db: Database, clock: FakeClock, connectors: dict[str, Connector], worker: str = "w1", **kw: object
) -> Outbox:
    return Outbox(db=db, connectors=connectors, clock=clock, worker=worker, **kw)  # type: ignore[arg-type]


def test_outbox_delivers_once_with_stable_keys_and_records_outcomes(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    results = engine.ingest([event(i) for i in range(5)])
    fake = FakeConnector()
    box = _outbox(db, clock, {"log": fake})
    stats = box.deliver()
    assert stats.delivered == 5
    assert box.deliver().claimed == 0
    expected = {
        idempotency_key(r.ticket_id or "", r.decision_id or "", "routing.default.notify.0") for r in results
    }
    assert set(fake.effects) == expected and len(fake.calls) == 5
    assert count(db, sent_log) == 5
    with db.reader.connect() as conn:
        kinds = [json_kind for json_kind in conn.execute(select(audit.audit_log.c.kind)).scalars()]
    assert kinds.count("action.delivered") == 5


class Flaky:
    """Fails the first ``failures`` calls with a transient error, then succeeds."""

    name = "log"

    def __init__(self, failures: int, retry_after: float | None = None) -> None:
        self.failures = failures
        self.retry_after = retry_after
        self.calls: list[OutboundAction] = []

    def send(self, action: OutboundAction) -> Delivery:
        self.calls.append(action)
        if len(self.calls) <= self.failures:
            raise TransientConnectorError("503 from vendor", retry_after=self.retry_after)
        return Delivery(external_id="ok")


def test_transient_failures_back_off_honouring_retry_after(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    engine.ingest([event(1)])
    target = Flaky(failures=2, retry_after=30)
    box = _outbox(db, clock, {"log": target})
    assert box.deliver().retried == 1
    assert box.deliver().claimed == 0  # waiting out Retry-After
    clock.advance(timedelta(seconds=29.9))
    assert box.deliver().claimed == 0  # never sooner than asked
    clock.advance(timedelta(seconds=3.2))  # at most a tenth of it later
    assert box.deliver().retried == 1
    clock.advance(timedelta(seconds=33.1))
    assert box.deliver().delivered == 1
    assert [a.attempt for a in target.calls] == [1, 2, 3]
    assert len({a.key for a in target.calls}) == 1


def test_a_deferral_waits_without_counting_as_a_failure_or_tripping_the_circuit(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    """A connector that chooses to wait (a retried create giving search time) is not failing:
    the failure count and the circuit stay as they were, the claim counts, the record says so."""
    engine.ingest([event(1)])

    class Settling:
        name = "log"

        def __init__(self) -> None:
            self.calls: list[OutboundAction] = []

        def send(self, action: OutboundAction) -> Delivery:
            self.calls.append(action)
            settle_before_creating(action, what="log create", seconds=20)
            if action.attempt == 1:
                raise TransientConnectorError("answer lost", retry_after=0)
            return Delivery(external_id="made")

    target = Settling()
    box = _outbox(db, clock, {"log": target}, max_attempts=2)
    assert box.deliver().retried == 1  # attempt 1 fails: one counted failure of the two allowed
    assert box.deliver().retried == 1  # attempt 2 waits 20 s: not a second failure, so not dead
    assert box.deliver().claimed == 0
    with db.reader.connect() as conn:
        row = conn.execute(select(outbox.c.status, outbox.c.failures, outbox.c.attempts)).one()
        circuit = conn.execute(select(connector_state.c.state, connector_state.c.failures)).one()
    assert tuple(row) == ("pending", 1, 2)
    assert tuple(circuit) == ("closed", 0)  # the vendor answered the search: the run of failures is over
    clock.advance(timedelta(seconds=21))
    assert box.deliver().delivered == 1
    assert [a.attempt for a in target.calls] == [1, 2, 3]
    with db.reader.connect() as conn:
        kinds = list(conn.execute(select(audit.audit_log.c.kind)).scalars())
        deferred = conn.execute(
            select(audit.audit_log.c.body).where(audit.audit_log.c.kind == "action.deferred")
        ).scalar_one()
    assert kinds.count("action.failed") == 1 and kinds.count("action.delivered") == 1
    body = json.loads(deferred)  # the chain keeps the canonical JSON text it hashed
    assert body["retry_in_s"] == 20 and "searching again in 20 s" in body["error"]


def test_permanent_failure_and_exhausted_retries_dead_letter(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    engine.ingest([event(1), event(2)])

    class Mixed:
        name = "log"

        def send(self, action: OutboundAction) -> Delivery:
            if action.params.get("ticket") == first_ticket:
                raise PermanentConnectorError("400 invalid user")
            raise TransientConnectorError("timeout", retry_after=0)

    with db.reader.connect() as conn:
        first_ticket = conn.execute(select(outbox.c.ticket_id).order_by(outbox.c.id)).scalars().first()
    box = _outbox(db, clock, {"log": Mixed()}, max_attempts=3)
    for _ in range(5):
        box.deliver()
    assert count(db, outbox, outbox.c.status == "dead") == 2
    with db.reader.connect() as conn:
        kinds = list(conn.execute(select(audit.audit_log.c.kind)).scalars())
    assert kinds.count("action.dead") == 2 and kinds.count("action.failed") == 2


def test_actions_of_one_ticket_leave_in_order_and_others_are_not_held_up(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    engine.ingest([event(1), event(2)])
    engine.ingest([event(3, "ticket.solved", ticket=1), event(4, "ticket.reopened", ticket=1)])
    target = Flaky(failures=1, retry_after=60)  # the first action (ticket 1's first) fails once
    box = _outbox(db, clock, {"log": target})
    box.deliver()
    # ticket 2's action went out although ticket 1's head is waiting; ticket 1's later action did not
    assert [a.params.get("template") for a in target.calls[1:]] == ["assigned"]
    assert target.calls[1].ticket_id != target.calls[0].ticket_id
    clock.advance(timedelta(seconds=66.1))  # Retry-After and at most a tenth of it more
    for _ in range(3):
        box.deliver()
    t1 = [a for a in target.calls if a.ticket_id == target.calls[0].ticket_id]
    assert [a.kind for a in t1] == ["notify"] * 3
    assert [a.params.get("template") or a.params.get("about") for a in t1] == [
        "assigned",
        "assigned",
        "reopened",
    ]


def test_expired_claims_are_taken_back_and_the_sent_log_prevents_a_resend(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    engine.ingest([event(1), event(2)])
    fake = FakeConnector()
    dead_worker = _outbox(db, clock, {"log": fake}, worker="dead", lease=timedelta(seconds=5))
    claimed = claim_as(db, clock, "dead", lease_ms=5_000)  # the dead worker claimed both, then vanished
    assert len(claimed) == 2
    # ...but it had already sent the first one (sent-log written, outbox row not yet marked)
    with db.writer.begin() as conn:
        conn.execute(
            sent_log.insert().values(
                idempotency_key=claimed[0].idempotency_key, connector="log", sent_ms=0, result={}
            )
        )
    survivor = _outbox(db, clock, {"log": fake}, worker="alive")
    assert survivor.deliver().claimed == 0  # leases still valid
    clock.advance(timedelta(seconds=6))
    stats = survivor.deliver()
    assert (stats.claimed, stats.skipped, stats.delivered) == (2, 1, 1)
    assert [a.key for a in fake.calls] == [claimed[1].idempotency_key]
    assert count(db, outbox, outbox.c.status == "done") == 2
    assert dead_worker.worker == "dead"


def test_a_stale_worker_cannot_complete_a_row_it_lost(engine: Engine, db: Database, clock: FakeClock) -> None:
    engine.ingest([event(1)])
    fake = FakeConnector()
    slow = _outbox(db, clock, {"log": fake}, worker="slow", lease=timedelta(seconds=1))
    (action,) = claim_as(db, clock, "slow", lease_ms=1_000, limit=1)
    with db.writer.begin() as conn:  # another worker took it over after the lease ran out
        conn.execute(update(outbox).where(outbox.c.id == action.id).values(claimed_by="other"))
    slow._finish(action, status="done", kind="action.delivered", delivery=Delivery(external_id="x"))
    assert count(db, sent_log) == 0
    assert count(db, outbox, outbox.c.status == "claimed") == 1


def test_unknown_connector_dead_letters_with_reason(engine: Engine, db: Database, clock: FakeClock) -> None:
    engine.ingest([event(1)])
    _outbox(db, clock, {}).deliver()
    with db.reader.connect() as conn:
        status = conn.execute(select(outbox.c.status)).scalar_one()
    assert status == "dead"


def test_the_dedup_lookup_uses_the_unique_index_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from baton.store import repo
    from baton.store.db import open_database

    db = open_database(f"sqlite:///{tmp_path / 'plan.db'}")
    db.migrate()
    with db.reader.connect() as conn:
        plan = repo.explain_lookup(conn, "zendesk", "1")
    db.dispose()
    assert "uq_events_source_event_id" in plan or "sqlite_autoindex_events" in plan, plan
    assert "SCAN events" not in plan, plan
