"""Manual override (X2): cancelling a pending action, over the API and from the command line.

A cancellation carries an actor and a reason, stops the action for good (no worker sends it
afterwards), goes on the audit chain and shows on the ticket's timeline (the API's and the
dashboard's). Only roles that may act can cancel; an action that already left, or that does not
exist, gets a 4xx that says so. The API's tests are with the other outbox operations in
``test_ops_api.py``; the command line's are here.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sqlalchemy import select

from baton.clock import SystemClock
from baton.connectors.fake import FakeConnector
from baton.engine.outbox import Outbox
from baton.engine.runtime import Engine
from baton.policy.loader import load_policy
from baton.settings import load_settings
from baton.store.db import Database, open_database
from baton.store.schema import audit_log, outbox
from tests.conftest import TEST_POLICY
from tests.e2e._procs import BATON, run_baton
from tests.helpers import event

REASON = "customer withdrew the request"


def cancellations(db: Database) -> list[dict[str, object]]:
    with db.reader.connect() as conn:
        bodies = conn.execute(
            select(audit_log.c.body).where(audit_log.c.kind == "action.cancelled")
        ).scalars()
        return [json.loads(b) for b in bodies]


# -- the command line ------------------------------------------------------------------------------


def baton(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BATON, *args, "--workspace", str(ws)], capture_output=True, text=True, timeout=60, check=False
    )


def test_baton_outbox_cancel_from_the_command_line(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run_baton("init", "--workspace", str(ws), "--policy", str(TEST_POLICY))
    settings = load_settings({}, workspace=ws)
    db = open_database(settings.resolved_database_url)
    try:
        clock = SystemClock()
        engine = Engine(db=db, policy=load_policy(settings.resolved_policy_dir), clock=clock)
        engine.ingest([event(1), event(2)])
        with db.reader.connect() as conn:
            (first, ticket_id), (second, _) = conn.execute(
                select(outbox.c.id, outbox.c.ticket_id).order_by(outbox.c.id)
            ).all()

        no_reason = baton(ws, "outbox", "cancel", str(first), "--actor", "mia")
        assert no_reason.returncode != 0 and "--reason" in no_reason.stderr
        cancelled = baton(ws, "outbox", "cancel", str(first), "--actor", "mia", "--reason", REASON)
        assert cancelled.returncode == 0, cancelled.stderr
        assert cancelled.stdout.strip() == f"action {first} on {ticket_id}: cancelled"

        target = FakeConnector()
        box = Outbox(db=db, connectors={"log": target}, clock=clock, worker="w1")
        assert box.deliver().delivered == 1  # the other ticket's action still goes
        assert [c.ticket_id for c in target.calls] != [ticket_id]
        assert box.deliver().claimed == 0

        delivered = baton(ws, "outbox", "cancel", str(second), "--actor", "mia", "--reason", REASON)
        assert delivered.returncode == 2
        assert f"action {second} is done; only pending, awaiting_approval actions" in delivered.stderr
        unknown = baton(ws, "outbox", "cancel", "987654", "--actor", "mia", "--reason", REASON)
        assert unknown.returncode == 2 and "no action 987654" in unknown.stderr
        assert [(c["actor"], c["reason"]) for c in cancellations(db)] == [("mia", REASON)]
    finally:
        db.dispose()
    shown = run_baton("tickets", "show", ticket_id, "--workspace", str(ws))
    assert shown.rstrip().splitlines()[-1].endswith("action.cancelled")
    assert (
        json.loads(run_baton("outbox", "show", str(first), "--workspace", str(ws)))["status"] == "cancelled"
    )
