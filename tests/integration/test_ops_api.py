"""Overrides, the outbox and connector circuits over the API, with roles checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from baton.clock import FakeClock
from baton.engine.batcher import Batcher
from baton.engine.runtime import Engine
from baton.settings import load_settings
from baton.store import read
from baton.store.db import Database
from baton.store.schema import outbox
from baton.web.app import create_app
from baton.web.auth import create_token
from tests.helpers import event


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
