"""A real connector behind the real outbox and database: vendor Retry-After drives the retries."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from baton.clock import FakeClock
from baton.connectors.config import WebhookConfig
from baton.connectors.webhook import WebhookConnector
from baton.engine.outbox import Outbox
from baton.engine.runtime import Engine
from baton.store.db import Database
from baton.store.schema import audit_log, outbox, sent_log
from tests.helpers import claim_as, event
from tests.standins.fixtures import LOOPBACK, WEBHOOK_SECRET
from tests.standins.server import Fault
from tests.standins.webhook import WebhookStandIn


def test_the_outbox_waits_out_each_retry_after_then_delivers_once(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    engine.ingest([event(1, subject="Refund please", account_id="acme")])
    with WebhookStandIn(WEBHOOK_SECRET, now=lambda: clock.now().timestamp()) as hook:
        hook.inject(Fault.status(503, headers={"retry-after": "30"}), Fault.rate_limited("45"))
        config = WebhookConfig(url=f"{hook.url}/hooks/baton", secret=SecretStr(WEBHOOK_SECRET), http=LOOPBACK)
        connector = WebhookConnector(config, clock=clock)
        # the test policy sends its notifications through the connector named "log"
        box = Outbox(db=db, connectors={"log": connector}, clock=clock, worker="w1")
        try:
            assert box.deliver().retried == 1  # 503, Retry-After: 30
            clock.advance(timedelta(seconds=29.9))
            assert box.deliver().claimed == 0  # still waiting
            clock.advance(timedelta(seconds=3.2))  # and at most a tenth of it more
            assert box.deliver().retried == 1  # 429, Retry-After: 45
            clock.advance(timedelta(seconds=44.9))
            assert box.deliver().claimed == 0
            clock.advance(timedelta(seconds=4.7))
            assert box.deliver().delivered == 1
            assert box.deliver().claimed == 0
        finally:
            connector.close()

    assert [r.fault for r in hook.requests] == ["reply", "reply", None]
    assert len({r.headers["webhook-id"] for r in hook.requests}) == 1  # one idempotency key throughout
    assert [r.json()["data"]["attempt"] for r in hook.requests] == [1, 2, 3]
    assert len(hook.effects) == 1 and hook.rejected == []
    with db.reader.connect() as conn:
        assert conn.execute(select(outbox.c.status)).scalars().all() == ["done"]
        assert len(conn.execute(select(sent_log)).all()) == 1
        records = conn.execute(select(audit_log.c.kind, audit_log.c.body)).all()
    failed = [json.loads(body) for kind, body in records if kind == "action.failed"]  # canonical JSON text
    waits = [f["retry_in_s"] for f in failed]
    assert len(waits) == 2 and 30 <= waits[0] <= 33 and 45 <= waits[1] <= 49.5
    assert "HTTP 503 from http://127.0.0.1" in failed[0]["error"] and "/hooks/baton" not in failed[0]["error"]
    assert [kind for kind, _ in records].count("action.delivered") == 1


def test_claims_cut_short_by_a_crash_do_not_use_up_the_attempts(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    from baton.connectors.fake import FakeConnector
    from baton.errors import TransientConnectorError

    engine.ingest([event(1, subject="Refund please", account_id="acme")])
    for _ in range(3):  # three workers claim the action and die before sending it
        assert claim_as(db, clock, "doomed", lease_ms=1_000)
        clock.advance(timedelta(seconds=2))
    failing = FakeConnector(fail=lambda action: TransientConnectorError("HTTP 503"))
    box = Outbox(db=db, connectors={"log": failing}, clock=clock, worker="w1", max_attempts=2)
    assert box.deliver().retried == 1  # the first real failure: not dead although claimed four times
    assert failing.calls[0].attempt == 4  # the connector knows an earlier claim may have sent it
    with db.reader.connect() as conn:
        assert conn.execute(select(outbox.c.status, outbox.c.failures)).one() == ("pending", 1)
    clock.advance(timedelta(minutes=10))
    assert box.deliver().dead == 1  # the second failure reaches max_attempts=2


def test_an_action_that_kills_every_worker_is_dead_lettered(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    from baton.connectors.fake import FakeConnector
    from baton.engine.outbox import CLAIMS_PER_ATTEMPT

    engine.ingest([event(1, subject="Refund please", account_id="acme")])
    for _ in range(CLAIMS_PER_ATTEMPT * 2):
        claim_as(db, clock, "doomed", lease_ms=1_000)
        clock.advance(timedelta(seconds=2))
    healthy = FakeConnector()
    box = Outbox(db=db, connectors={"log": healthy}, clock=clock, worker="w1", max_attempts=2)
    assert box.deliver().dead == 1 and healthy.calls == []
    with db.reader.connect() as conn:
        assert conn.execute(select(outbox.c.status)).scalar_one() == "dead"


def test_the_outbox_backs_off_with_its_seeded_jitter(engine: Engine, db: Database, clock: FakeClock) -> None:
    import random

    from baton.connectors.fake import FakeConnector
    from baton.engine.outbox import backoff_seconds
    from baton.errors import TransientConnectorError

    engine.ingest([event(1, subject="Refund please", account_id="acme")])
    failing = FakeConnector(fail=lambda action: TransientConnectorError("HTTP 503"))
    box = Outbox(db=db, connectors={"log": failing}, clock=clock, worker="w1", rng=random.Random(11))
    for _ in range(3):
        assert box.deliver().retried == 1
        clock.advance(timedelta(minutes=10))
    with db.reader.connect() as conn:
        bodies = conn.execute(select(audit_log.c.body).where(audit_log.c.kind == "action.failed")).scalars()
        waits = [json.loads(body)["retry_in_s"] for body in bodies]
    expected = random.Random(11)
    assert waits == [round(backoff_seconds(n, rng=expected), 3) for n in (1, 2, 3)]
    assert 0 <= waits[0] <= 1 and 0 <= waits[1] <= 2 and 0 <= waits[2] <= 4


def _outcomes(db: Database) -> list[tuple[str, dict[str, object]]]:
    with db.reader.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.kind, audit_log.c.body)
            .where(audit_log.c.kind.like("action.%"), audit_log.c.kind != "action.queued")
            .order_by(audit_log.c.seq)
        ).all()
    return [(kind, json.loads(body)) for kind, body in rows]


def test_every_attempt_and_its_outcome_are_on_the_audit_chain(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    from baton import audit
    from baton.connectors.fake import FakeConnector
    from baton.errors import TransientConnectorError

    engine.ingest([event(1, subject="Refund please", account_id="acme")])
    flaky = FakeConnector(fail=lambda a: TransientConnectorError("HTTP 503") if a.attempt < 3 else None)
    box = Outbox(db=db, connectors={"log": flaky}, clock=clock, worker="w1")
    for _ in range(3):
        box.deliver()
        clock.advance(timedelta(minutes=10))
    assert len(flaky.calls) == 3
    records = _outcomes(db)
    assert [kind for kind, _ in records] == [
        "action.attempt",
        "action.failed",
        "action.attempt",
        "action.failed",
        "action.attempt",
        "action.delivered",
    ]
    (action,) = flaky.calls[:1]
    for kind, body in records:  # each names the connector, the kind of action and the attempt
        assert (body["connector"], body["kind"], body["key"]) == ("log", action.kind, action.key), kind
    assert [body["attempt"] for _, body in records] == [1, 1, 2, 2, 3, 3]
    assert [body["worker"] for kind, body in records if kind == "action.attempt"] == ["w1"] * 3
    with db.reader.connect() as conn:
        name = conn.execute(select(outbox.c.action_name)).scalar_one()
    failed = [body for kind, body in records if kind == "action.failed"]
    assert {(f["error"], f["error_class"], f["action"]) for f in failed} == {
        ("HTTP 503", "TransientConnectorError", name)
    }
    with db.reader.connect() as conn:
        assert audit.verify(conn).ok


def test_an_attempt_cut_short_by_a_dead_worker_stays_on_the_record(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    from baton import audit
    from baton.connectors.fake import FakeConnector
    from baton.errors import PermanentConnectorError

    class Killed(BaseException):
        """What the outbox cannot catch: the process ends in the middle of the send."""

    engine.ingest([event(1, subject="Refund please", account_id="acme")])

    def dies(action: object) -> Exception | None:
        raise Killed

    dying = Outbox(db=db, connectors={"log": FakeConnector(fail=dies)}, clock=clock, worker="w1")
    with pytest.raises(Killed):
        dying.deliver()
    clock.advance(timedelta(minutes=1))  # the lease runs out
    refusing = FakeConnector(fail=lambda a: PermanentConnectorError("HTTP 400 bad channel"))
    Outbox(db=db, connectors={"log": refusing}, clock=clock, worker="w2").deliver()
    records = _outcomes(db)
    assert [(kind, body["attempt"], body.get("worker")) for kind, body in records] == [
        ("action.attempt", 1, "w1"),  # no outcome: the worker died during the send
        ("action.attempt", 2, "w2"),
        ("action.dead", 2, None),
    ]
    dead = records[-1][1]
    assert (dead["connector"], dead["error_class"], dead["error"]) == (
        "log",
        "PermanentConnectorError",
        "HTTP 400 bad channel",
    )
    with db.reader.connect() as conn:
        assert audit.verify(conn).ok


def test_an_action_whose_lease_ran_out_is_not_recorded_as_attempted(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    from baton.connectors.fake import FakeConnector

    engine.ingest([event(1, subject="Refund please", account_id="acme")])
    box = Outbox(db=db, connectors={"log": FakeConnector()}, clock=clock, worker="w1")
    claimed = claim_as(db, clock, "w0", lease_ms=60_000)  # another worker took the row over
    assert box._start_attempt(claimed[0]) is False
    assert _outcomes(db) == []
