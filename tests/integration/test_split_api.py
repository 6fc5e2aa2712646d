"""A split handoff is visible where people look: the ticket in the API carries the communication
owner apart from the owner of record, and the dashboard's ticket page names both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from baton.clock import FakeClock
from baton.engine.batcher import Batcher
from baton.engine.runtime import Engine
from baton.policy.loader import load_policy
from baton.settings import load_settings
from baton.store.db import Database
from baton.web.app import create_app
from baton.web.auth import create_token
from tests.conftest import START
from tests.unit.decision.conftest import DECISION


@pytest.fixture
def client(db: Database, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    engine = Engine(db=db, policy=load_policy(DECISION), clock=FakeClock(START))
    with db.writer.begin() as conn:
        tokens = {role: create_token(conn, role=role, name=role, now_ms=0) for role in ("viewer", "ingest")}
    app = create_app(
        settings=load_settings({}, workspace=tmp_path),
        db=db,
        batcher=Batcher(engine, max_batch=10, wait_seconds=0.001),
    )
    with TestClient(app) as c:
        yield c, {role: f"Bearer {token}" for role, token in tokens.items()}


def opened(client: TestClient, ingest: str, n: int, tags: list[str]) -> str:
    event = {
        "source": "zendesk",
        "event_id": str(n),
        "type": "ticket.created",
        "occurred_at": START.isoformat(),
        "external": {"system": "zendesk", "id": str(n)},
        "fields": {"subject": f"Ticket {n}", "tags": tags},
    }
    r = client.post("/v1/events", json=event, headers={"Authorization": ingest})
    assert r.status_code == 202, r.text
    return str(r.json()["ticket_id"])


def test_the_api_and_the_dashboard_show_the_communication_owner(
    client: tuple[TestClient, dict[str, str]],
) -> None:
    c, auth = client
    split = opened(c, auth["ingest"], 1, ["dispute"])
    plain = opened(c, auth["ingest"], 2, ["bug"])
    viewer = {"Authorization": auth["viewer"]}
    ticket = c.get(f"/v1/tickets/{split}", headers=viewer).json()
    assert ticket["owner"] == {"role": "specialists", "person": "ed"}
    assert ticket["communication_owner"] == {"role": "l1", "person": "al"}
    assert c.get(f"/v1/tickets/{plain}", headers=viewer).json()["communication_owner"] is None
    page = c.get(f"/tickets/{split}", headers=viewer).text
    assert "Customer communication</dt><dd>al (l1), split handoff" in page
    assert "Customer communication" not in c.get(f"/tickets/{plain}", headers=viewer).text
