"""Live KPIs: the store measured exactly as replay measures, over ``baton kpis`` and ``GET /v1/kpis``.

One mixed history (reopen, pause, escalations, a bounce, SLA breaches, a rollback, unknown
accounts) goes through the live engine on a real database, timers fired at their due instants by
a fake clock, and through the replay simulator: the two sets of KPIs must be identical.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from baton.analytics.live import live_kpis
from baton.cli import app as cli_app
from baton.clock import FakeClock, from_ms, to_ms
from baton.engine.runtime import Engine
from baton.model import Event
from baton.policy import versions
from baton.policy.loader import load_policy, policy_files
from baton.policy.model import Policy
from baton.settings import load_settings
from baton.store import repo
from baton.store.db import Database
from baton.store.schema import timers
from baton.web.app import create_app
from baton.web.auth import create_token
from tests.conftest import START
from tests.unit.analytics.test_kpis import ACCOUNTS, KPI_POLICY, History, h


def mixed() -> History:
    return (
        History()
        .add("reopen", "ticket.created", 0, account_id="acme")
        .add("reopen", "agent.replied", 0.5)
        .add("reopen", "ticket.solved", 2)
        .add("reopen", "ticket.reopened", 5)
        .add("reopen", "ticket.solved", 6)
        .add("pause", "ticket.created", 0, account_id="beta")
        .add("pause", "agent.replied", 0.5)
        .add("pause", "status.changed", 1, status="pending")
        .add("pause", "customer.replied", 7)
        .add("pause", "ticket.solved", 9)
        .add("legal", "ticket.created", 0, subject="contract clause", account_id="ghost")
        .override("legal", 1, "tier", tier="L3")
        .add("assist", "ticket.created", 0, subject="invoice is wrong")
        .add("bounce", "ticket.created", 0, team="alpha")
        .add("bounce", "ticket.assigned", 0.25, team="beta")
        .add("bounce", "ticket.assigned", 0.5, team="alpha")
        .add("late", "ticket.created", 3, account_id="acme")  # breached and open at the end
        .add("late", "agent.replied", 3.5)
        .add("rollback", "ticket.created", 0)  # unanswered: a tier-up at 2 h...
        .override("rollback", 3, "tier", tier="L1")  # ... put back by hand
        .add("risk", "ticket.created", 3.5, account_id="beta")
        .add("risk", "agent.replied", 4)
        .add("end", "note.added", 12)  # moves time to 12 h
    )


@pytest.fixture
def kpi_policy() -> Policy:
    return load_policy(KPI_POLICY)


@pytest.fixture
def live(db: Database, kpi_policy: Policy) -> Iterator[Database]:
    clock = FakeClock(START)
    with db.write() as conn:
        versions.activate(
            conn,
            files=policy_files(KPI_POLICY),
            name=kpi_policy.name,
            actor="test",
            at=START,
            is_postgres=db.is_postgres,
        )
        repo.upsert_accounts(conn, list(ACCOUNTS.values()))
    drive(Engine(db=db, policy=kpi_policy, clock=clock), clock, mixed().events)
    yield db


def drive(engine: Engine, clock: FakeClock, stream: list[Event]) -> None:
    """Ingest ``stream`` in time order with the clock at each event's instant, firing every timer
    at its own due instant first, as a worker polling the timers table does."""
    for e in sorted(stream, key=lambda e: e.occurred_at):
        while True:
            with engine.db.reader.connect() as conn:
                due = conn.scalar(select(func.min(timers.c.due_ms)).where(timers.c.status == "pending"))
            if due is None or due > to_ms(e.occurred_at):
                break
            clock.set(max(from_ms(due), clock.now()))
            engine.fire_due_timers()
        clock.set(e.occurred_at)
        [result] = engine.ingest([e])
        assert result.status == "accepted", result


def test_live_equals_replay(live: Database, kpi_policy: Policy) -> None:
    expected = mixed().kpis(kpi_policy)
    with live.reader.connect() as conn:
        measured = live_kpis(conn, now=h(12))
    assert measured.report.kpis == expected
    assert measured.policy_version == kpi_policy.version
    # the history exercises what it claims to
    assert expected["reopens"] == 1 and expected["rolled_back"] == 1
    assert expected["bounced_tickets"] == 2  # `bounce`, and `rollback` (L1 -> L2 by the SLA -> L1 by hand)
    assert expected["assists"] == 1 and expected["sla_breached"] and expected["revenue_at_risk_arr"]
    assert expected["enrichment_gaps.account"] == 1


def test_get_kpis_needs_read_and_answers_counts_beside_kpis(live: Database, tmp_path: Path) -> None:
    with live.writer.begin() as conn:
        viewer = create_token(conn, role="viewer", name="v", now_ms=0)
        sender = create_token(conn, role="ingest", name="i", now_ms=0)
    app = create_app(
        settings=load_settings({}, workspace=tmp_path), db=live, batcher=None, clock=FakeClock(h(12))
    )
    with TestClient(app) as client:
        assert client.get("/v1/kpis").status_code == 401
        assert client.get("/v1/kpis", headers={"Authorization": f"Bearer {sender}"}).status_code == 403
        r = client.get("/v1/kpis", headers={"Authorization": f"Bearer {viewer}"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tickets"] == 9 and body["events"] >= len(mixed().events)
    assert body["as_of"] == h(12).isoformat()
    assert body["kpis"]["tickets"] == 9 and 0 < body["kpis"]["sla_compliance"] < 1


def test_baton_kpis_prints_the_store_kpis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.setenv("BATON_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("BATON_DATABASE_URL", raising=False)
    assert runner.invoke(cli_app, ["init"]).exit_code == 0
    events = tmp_path / "events.jsonl"
    events.write_text("".join(e.model_dump_json() + "\n" for e in mixed().events[:5]))
    assert runner.invoke(cli_app, ["ingest", str(events)]).exit_code == 0

    as_json = runner.invoke(cli_app, ["kpis", "--json"])
    table = runner.invoke(cli_app, ["kpis"])

    assert as_json.exit_code == 0, as_json.output
    doc = json.loads(as_json.output)
    assert (doc["tickets"], doc["events"], doc["kpis"]["tickets"]) == (1, 5, 1)
    assert table.exit_code == 0 and "mttr_hours" in table.output and "tickets: 1, events: 5" in table.output
