"""Overrides, the outbox and connector circuits over the API, with roles checked."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from baton.clock import FakeClock
from baton.connectors.fake import FakeConnector
from baton.engine.batcher import Batcher
from baton.engine.outbox import Outbox
from baton.engine.runtime import Engine
from baton.settings import load_settings
from baton.store import read
from baton.store.db import Database
from baton.store.schema import outbox
from baton.web.app import create_app
from baton.web.auth import create_token
from tests.helpers import event
from tests.integration.test_cancel_action import REASON, cancellations


@pytest.fixture
def tokens(db: Database) -> dict[str, str]:
    with db.write() as conn:
        return {
            role: create_token(conn, role=role, name=f"{role}-person", now_ms=0)
            for role in ("viewer", "agent")
        }


@pytest.fixture
def client(engine: Engine, db: Database, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(
        settings=load_settings({}, workspace=tmp_path),
        db=db,
        batcher=Batcher(engine, wait_seconds=0.001),
        clock=clock,
    )
    with TestClient(app) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_overrides_need_an_agent_and_a_reason_and_go_through_decide(
    client: TestClient, engine: Engine, db: Database, tokens: dict[str, str]
) -> None:
    (result,) = engine.ingest([event(1)])
    tid = result.ticket_id
    body = {"action": "reassign", "person": "ed", "reason": "knows the customer"}
    assert (
        client.post(f"/v1/tickets/{tid}/overrides", json=body, headers=auth(tokens["viewer"])).status_code
        == 403
    )
    assert (
        client.post(
            f"/v1/tickets/{tid}/overrides", json={**body, "reason": " "}, headers=auth(tokens["agent"])
        ).status_code
        == 422
    )
    assert (
        client.post(
            f"/v1/tickets/{tid}/overrides", json={**body, "action": "x"}, headers=auth(tokens["agent"])
        ).status_code
        == 422
    )
    ok = client.post(f"/v1/tickets/{tid}/overrides", json=body, headers=auth(tokens["agent"]))
    assert ok.status_code == 202 and ok.json()["status"] == "accepted"
    with db.reader.connect() as conn:
        ticket = read.get_ticket(conn, tid or "")
    assert ticket is not None and ticket.owner is not None and ticket.owner.person == "ed"


def test_dead_letter_queue_and_circuits_over_the_api(
    client: TestClient, engine: Engine, db: Database, tokens: dict[str, str]
) -> None:
    engine.ingest([event(1)])
    with db.write() as conn:
        conn.execute(update(outbox).values(status="dead", last_error="410"))
        action_id = conn.execute(select(outbox.c.id)).scalar_one()
    listed = client.get("/v1/outbox", headers=auth(tokens["viewer"])).json()["actions"]
    assert [a["id"] for a in listed] == [action_id]
    assert client.get(f"/v1/outbox/{action_id}", headers=auth(tokens["viewer"])).json()["last_error"] == "410"
    assert (
        client.post(
            f"/v1/outbox/{action_id}/retry", json={"reason": "back"}, headers=auth(tokens["viewer"])
        ).status_code
        == 403
    )
    retried = client.post(
        f"/v1/outbox/{action_id}/retry", json={"reason": "back"}, headers=auth(tokens["agent"])
    )
    assert retried.status_code == 200 and retried.json()["status"] == "pending"
    assert (
        client.post(
            f"/v1/outbox/{action_id}/drop", json={"reason": "x"}, headers=auth(tokens["agent"])
        ).status_code
        == 422
    )
    assert client.get("/v1/outbox/999999", headers=auth(tokens["viewer"])).status_code == 404
    assert client.get("/v1/connectors", headers=auth(tokens["viewer"])).json() == {"circuits": []}
    assert client.get("/v1/connectors").status_code == 401


def test_metrics_show_the_outbox_timers_circuits_and_chain_in_prometheus_format(
    client: TestClient, engine: Engine, db: Database, clock: FakeClock, tokens: dict[str, str]
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from baton.engine.breaker import Breakers

    engine.ingest([event(1), event(2)])
    with db.write() as conn:
        first = conn.execute(select(outbox.c.id).order_by(outbox.c.id)).scalars().first()
        conn.execute(update(outbox).where(outbox.c.id == first).values(status="dead"))
    breakers = Breakers(db=db, clock=clock)
    for _ in range(10):
        breakers.failed("slack", error="HTTP 503")
    assert client.get("/metrics").status_code == 401
    response = client.get("/metrics", headers=auth(tokens["viewer"]))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    with db.reader.connect() as conn:
        counts = read.stats(conn)
    assert samples[("baton_outbox_actions", (("status", "dead"),))] == 1
    assert samples[("baton_outbox_actions", (("status", "pending"),))] == counts["outbox"]["pending"]
    assert samples[("baton_timers", (("status", "pending"),))] == counts["timers"]["pending"]
    assert samples[("baton_tickets", (("stage", "open"),))] == 2
    assert samples[("baton_events_total", ())] == 2
    assert samples[("baton_audit_entries", ())] == counts["audit_entries"]
    assert samples[("baton_connector_circuit_state", (("connector", "slack"), ("state", "open")))] == 1
    assert samples[("baton_connector_circuit_state", (("connector", "slack"), ("state", "closed")))] == 0
    assert samples[("baton_outbox_oldest_waiting_seconds", ())] == 0


# -- cancelling a pending action (X2); the command line's is in test_cancel_action.py


def pending_action(db: Database) -> tuple[int, str, str]:
    """The one action the test policy queued: (id, ticket, idempotency key)."""
    with db.reader.connect() as conn:
        row = conn.execute(
            select(outbox.c.id, outbox.c.ticket_id, outbox.c.idempotency_key, outbox.c.status)
        ).one()
    assert row.status == "pending"
    return int(row.id), row.ticket_id, row.idempotency_key


def test_an_agent_cancels_a_pending_action_and_no_worker_sends_it(
    client: TestClient, engine: Engine, db: Database, clock: FakeClock, tokens: dict[str, str]
) -> None:
    engine.ingest([event(1)])
    action_id, ticket_id, key = pending_action(db)
    url = f"/v1/outbox/{action_id}/cancel"

    denied = client.post(url, json={"reason": REASON}, headers=auth(tokens["viewer"]))
    assert denied.status_code == 403
    assert client.post(url, json={"reason": REASON}).status_code == 401
    for bad in ({}, {"reason": "  "}, {"reason": REASON, "actor": "someone-else"}):
        assert client.post(url, json=bad, headers=auth(tokens["agent"])).status_code == 422, bad
    assert pending_action(db) == (action_id, ticket_id, key)  # none of that changed anything

    done = client.post(url, json={"reason": REASON}, headers=auth(tokens["agent"]))
    assert done.status_code == 200, done.text
    assert (done.json()["id"], done.json()["status"]) == (action_id, "cancelled")

    # Not delivered afterwards, however long the workers keep going.
    target = FakeConnector()
    box = Outbox(db=db, connectors={"log": target}, clock=clock, worker="w1")
    for _ in range(3):
        assert box.deliver().claimed == 0
        clock.advance(timedelta(hours=1))
    assert target.calls == []
    with db.reader.connect() as conn:
        assert conn.execute(select(outbox.c.status)).scalar_one() == "cancelled"

    # On the audit chain, with who and why, and on the ticket's timeline.
    (record,) = cancellations(db)
    assert record == {"key": key, "action": record["action"], "actor": "agent-person", "reason": REASON}
    viewer = auth(tokens["viewer"])
    items = client.get(f"/v1/tickets/{ticket_id}/timeline", headers=viewer).json()["items"]
    assert [i["kind"] for i in items][-1] == "action.cancelled"
    assert items[-1]["body"]["actor"] == "agent-person" and items[-1]["body"]["reason"] == REASON
    page = client.get(f"/tickets/{ticket_id}", headers=viewer)
    assert page.status_code == 200
    assert "action.cancelled" in page.text and REASON in page.text and "agent-person" in page.text
    shown = client.get(f"/v1/outbox/{action_id}", headers=viewer).json()
    assert shown["status"] == "cancelled" and "action.cancelled" in [h["kind"] for h in shown["history"]]


def test_cancelling_what_already_left_or_does_not_exist_is_a_clear_4xx(
    client: TestClient, engine: Engine, db: Database, clock: FakeClock, tokens: dict[str, str]
) -> None:
    engine.ingest([event(1)])
    action_id, _, _ = pending_action(db)
    assert (
        Outbox(db=db, connectors={"log": FakeConnector()}, clock=clock, worker="w1").deliver().delivered == 1
    )
    agent = auth(tokens["agent"])

    late = client.post(f"/v1/outbox/{action_id}/cancel", json={"reason": REASON}, headers=agent)
    assert late.status_code == 422
    assert late.json()["error"]["message"] == (
        f"action {action_id} is done; only pending, awaiting_approval actions can be changed so"
    )
    again = client.post(f"/v1/outbox/{action_id}/cancel", json={"reason": REASON}, headers=agent)
    assert again.status_code == 422  # nothing changed by the first refusal

    missing = client.post("/v1/outbox/987654/cancel", json={"reason": REASON}, headers=agent)
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "no action 987654"
    assert (
        client.post("/v1/outbox/not-a-number/cancel", json={"reason": REASON}, headers=agent).status_code
        == 422
    )
    # Ids no database row can have: a clear 422 from every route that takes one, never a 500.
    for huge in ("99999999999999999999999", "9223372036854775808", "0", "-1"):
        for method, path, who in (
            ("post", f"/v1/outbox/{huge}/cancel", agent),
            ("post", f"/v1/outbox/{huge}/retry", agent),
            ("post", f"/v1/outbox/{huge}/drop", agent),
            ("get", f"/v1/outbox/{huge}", agent),
        ):
            body = {"reason": REASON} if method == "post" else None
            answer = client.request(method.upper(), path, json=body, headers=who)
            assert answer.status_code == 422, (path, answer.status_code, answer.text)
    assert cancellations(db) == []
    with db.reader.connect() as conn:
        assert conn.execute(select(outbox.c.status)).scalar_one() == "done"


def test_an_action_claimed_by_a_worker_that_died_can_be_cancelled_but_not_one_being_sent(
    client: TestClient, engine: Engine, db: Database, clock: FakeClock, tokens: dict[str, str]
) -> None:
    engine.ingest([event(1)])
    action_id, _, _ = pending_action(db)
    now_ms = int(clock.now().timestamp() * 1000)
    agent = auth(tokens["agent"])

    def claim(until_ms: int) -> None:
        with db.write() as conn:
            conn.execute(
                update(outbox)
                .where(outbox.c.id == action_id)
                .values(status="claimed", claimed_by="w-gone", claimed_until_ms=until_ms)
            )

    claim(now_ms + 30_000)  # a live worker holds it: it may be on the wire right now
    busy = client.post(f"/v1/outbox/{action_id}/cancel", json={"reason": REASON}, headers=agent)
    assert busy.status_code == 422 and "is claimed" in busy.json()["error"]["message"]

    claim(now_ms - 1)  # its lease ran out: the worker died
    done = client.post(f"/v1/outbox/{action_id}/cancel", json={"reason": REASON}, headers=agent)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "cancelled"
    target = FakeConnector()
    clock.advance(timedelta(minutes=5))
    Outbox(db=db, connectors={"log": target}, clock=clock, worker="w2").deliver()
    assert target.calls == []  # no worker takes it back
