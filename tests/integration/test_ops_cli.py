"""``baton outbox`` and ``baton override`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from baton.cli import app
from baton.engine.runtime import Engine
from baton.policy.loader import load_policy
from baton.settings import load_settings
from baton.store import read
from baton.store.db import open_database
from baton.store.schema import outbox
from tests.conftest import TEST_POLICY
from tests.helpers import event

runner = CliRunner()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    monkeypatch.setenv("BATON_WORKSPACE", str(ws))
    monkeypatch.delenv("BATON_DATABASE_URL", raising=False)
    assert runner.invoke(app, ["init", "--policy", str(TEST_POLICY)]).exit_code == 0
    return ws


def ingest(ws: Path) -> str:
    settings = load_settings(workspace=ws)
    db = open_database(settings.resolved_database_url)
    from baton.clock import SystemClock

    try:
        (result,) = Engine(
            db=db, policy=load_policy(settings.resolved_policy_dir), clock=SystemClock()
        ).ingest([event(1)])
    finally:
        db.dispose()
    assert result.ticket_id is not None
    return result.ticket_id


def test_dead_letter_round_trip(workspace: Path) -> None:
    ingest(workspace)
    db = open_database(load_settings(workspace=workspace).resolved_database_url)
    with db.write() as conn:
        conn.execute(update(outbox).values(status="dead", last_error="410 Gone"))
    db.dispose()
    listed = json.loads(runner.invoke(app, ["outbox", "list", "--json"]).output)
    assert [i["status"] for i in listed] == ["dead"] and listed[0]["last_error"] == "410 Gone"
    action_id = str(listed[0]["id"])
    shown = json.loads(runner.invoke(app, ["outbox", "show", action_id]).output)
    assert shown["params"]["template"] == "assigned"
    missing = runner.invoke(app, ["outbox", "retry", action_id, "--actor", "ops"])
    assert missing.exit_code != 0  # the reason is required
    retried = runner.invoke(app, ["outbox", "retry", action_id, "--actor", "ops", "--reason", "vendor back"])
    assert retried.exit_code == 0 and retried.output.strip().endswith("pending")
    again = runner.invoke(app, ["outbox", "drop", action_id, "--actor", "ops", "--reason", "oops"])
    assert again.exit_code != 0  # only dead actions can be dropped


def test_override_commands_change_the_ticket(workspace: Path) -> None:
    ticket_id = ingest(workspace)
    result = runner.invoke(
        app,
        [
            "override",
            "reassign",
            ticket_id,
            "--person",
            "ed",
            "--actor",
            "mia",
            "--reason",
            "knows the customer",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        runner.invoke(
            app, ["override", "tier", ticket_id, "L2", "--actor", "mia", "--reason", "needs L2"]
        ).exit_code
        == 0
    )
    assert (
        runner.invoke(
            app, ["override", "pause-sla", ticket_id, "--actor", "mia", "--reason", "legal"]
        ).exit_code
        == 0
    )
    db = open_database(load_settings(workspace=workspace).resolved_database_url)
    with db.reader.connect() as conn:
        ticket = read.get_ticket(conn, ticket_id)
    db.dispose()
    assert ticket is not None and ticket.tier == "L2" and ticket.sla_held_by == "mia"
    assert [e.rule for e in ticket.escalations] == ["override.reassign", "override.tier"]
    assert (
        runner.invoke(app, ["override", "reassign", ticket_id, "--actor", "mia", "--reason", "x"]).exit_code
        != 0
    )
