"""Manual overrides and the dead-letter queue (X1, X2), recorded with actor and reason."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from baton.clock import FakeClock
from baton.engine import operations as ops
from baton.engine.runtime import Engine
from baton.errors import InputError
from baton.store import read
from baton.store.db import Database
from baton.store.schema import audit_log, outbox
from tests.helpers import event, minutes


def opened(engine: Engine, db: Database) -> str:
    (result,) = engine.ingest([event(1, subject="Broken", priority="normal")])
    assert result.ticket_id is not None
    return result.ticket_id


def ticket(db: Database, ticket_id: str):  # type: ignore[no-untyped-def]
    with db.reader.connect() as conn:
        return read.get_ticket(conn, ticket_id)


def test_reassign_tier_and_priority_overrides_go_through_decide(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    tid = opened(engine, db)
    now = clock.now()
    engine.ingest(
        [
            ops.override_event(
                tid, action="reassign", actor="maya", reason="VIP asked for her", at=now, person="dee"
            )
        ]
    )
    t = ticket(db, tid)
    assert t.owner.person == "dee" and t.escalations[-1].rule == "override.reassign"
    clock.advance(minutes(1))
    engine.ingest(
        [ops.override_event(tid, action="tier", actor="maya", reason="needs L3", at=clock.now(), tier="L3")]
    )
    t = ticket(db, tid)
    assert t.tier == "L3" and t.owner.role == "l3" and t.owner.person == "flo"
    engine.ingest(
        [
            ops.override_event(
                tid, action="priority", actor="maya", reason="outage", at=clock.now(), priority="urgent"
            )
        ]
    )
    t = ticket(db, tid)
    assert t.priority.value == "urgent"
    assert t.clock("first_response").due_at == t.created_at + timedelta(minutes=30)
    with db.reader.connect() as conn:
        timeline = read.timeline(conn, tid)
    overrides = [
        i
        for i in timeline
        if i["kind"] == "decision" and any(r["rule"].startswith("override.") for r in i["body"]["reasons"])
    ]
    assert len(overrides) == 3
    reasons = [
        r
        for i in overrides
        for r in i["body"]["reasons"]
        if r["rule"].startswith("override.") and r["matched"]
    ]
    assert {r["inputs"]["actor"] for r in reasons} == {"maya"} and reasons[0]["inputs"][
        "reason"
    ] == "VIP asked for her"


def test_a_manual_sla_hold_is_not_undone_by_the_policy(
    engine: Engine, db: Database, clock: FakeClock
) -> None:
    tid = opened(engine, db)
    clock.advance(minutes(30))
    engine.ingest(
        [ops.override_event(tid, action="pause_sla", actor="maya", reason="waiting on legal", at=clock.now())]
    )
    t = ticket(db, tid)
    assert t.sla_held_by == "maya" and all(c.paused_at is not None for c in t.sla)
    # a customer reply would resume a policy pause; a manual hold stays
    engine.ingest([event(2, "customer.replied", ticket=1, at=clock.now() + minutes(5))])
    assert all(c.paused_at is not None for c in ticket(db, tid).sla)
    clock.advance(timedelta(hours=5))
    assert engine.fire_due_timers() == 0  # thresholds were cancelled while held
    engine.ingest(
        [ops.override_event(tid, action="resume_sla", actor="maya", reason="legal answered", at=clock.now())]
    )
    t = ticket(db, tid)
    fr = t.clock("first_response")
    assert t.sla_held_by is None and fr is not None and fr.running_since is not None
    assert fr.due_at == t.created_at + timedelta(hours=8) + (clock.now() - (t.created_at + minutes(30)))


@pytest.mark.parametrize("reason", ["", "   "])
def test_overrides_need_a_reason(reason: str, clock: FakeClock) -> None:
    with pytest.raises(InputError):
        ops.override_event("T-1", action="reassign", actor="maya", reason=reason, at=clock.now(), person="x")
    with pytest.raises(InputError):
        ops.override_event("T-1", action="teleport", actor="maya", reason="why not", at=clock.now())


def test_dead_letter_list_show_retry_and_drop(engine: Engine, db: Database, clock: FakeClock) -> None:
    engine.ingest([event(1), event(2)])
    with db.write() as conn:
        conn.execute(update(outbox).values(status="dead", attempts=8, last_error="500 from vendor"))
    with db.reader.connect() as conn:
        dead = ops.list_actions(conn, status="dead")
        assert [d["status"] for d in dead] == ["dead", "dead"]
        shown = ops.show_action(conn, dead[0]["id"])
    assert shown["params"]["template"] == "assigned" and [h["kind"] for h in shown["history"]] == [
        "action.queued"
    ]
    with db.write() as conn:
        retried = ops.retry_action(
            conn,
            dead[0]["id"],
            actor="ops",
            reason="vendor fixed",
            at=clock.now(),
            is_postgres=db.is_postgres,
        )
        dropped = ops.drop_action(
            conn,
            dead[1]["id"],
            actor="ops",
            reason="customer left",
            at=clock.now(),
            is_postgres=db.is_postgres,
        )
    assert (retried["status"], retried["attempts"]) == ("pending", 0)
    assert dropped["status"] == "dropped"
    with db.write() as conn, pytest.raises(InputError):
        ops.retry_action(
            conn, dead[1]["id"], actor="ops", reason="again", at=clock.now(), is_postgres=db.is_postgres
        )
    with db.reader.connect() as conn:
        kinds = [
            (k, json.loads(b)["actor"])
            for k, b in conn.execute(
                select(audit_log.c.kind, audit_log.c.body).where(
                    audit_log.c.kind.in_(("action.retried", "action.dropped"))
                )
            )
        ]
    assert kinds == [("action.retried", "ops"), ("action.dropped", "ops")]


def test_cancel_a_pending_action(engine: Engine, db: Database, clock: FakeClock) -> None:
    engine.ingest([event(1)])
    with db.reader.connect() as conn:
        action_id = conn.execute(select(outbox.c.id)).scalar_one()
    with db.write() as conn:
        cancelled = ops.cancel_action(
            conn, action_id, actor="maya", reason="duplicate", at=clock.now(), is_postgres=db.is_postgres
        )
    assert cancelled["status"] == "cancelled"
    with db.write() as conn, pytest.raises(InputError):
        ops.cancel_action(
            conn, action_id, actor="maya", reason="again", at=clock.now(), is_postgres=db.is_postgres
        )
