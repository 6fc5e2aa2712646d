"""An escalation conditioned on a signal fires the same way live (the runtime on SQLite and
PostgreSQL), in replay (``PolicyRun``) and in ``baton policy test``: all three fill
``Context.signals`` through ``baton.enrich.signals.build_context``.

The decision policy (tests/fixtures/decision) escalates to the leads when ``signals.sentiment <=
-0.5`` (``upset-customer``), to L2 when ``signals.failed_attempts >= 1`` on a reopening
(``solution-did-not-hold``), and to the specialists when ``signals.churn_risk >= 0.8``, a signal a
source sends in ``data.signals`` (``churn-model``).
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from baton.cli import app
from baton.clock import FakeClock
from baton.engine.runtime import Engine
from baton.model import Event
from baton.policy.loader import load_policy
from baton.policy.model import Policy
from baton.replay.run import PolicyRun
from baton.store import read
from baton.store.db import Database
from tests.conftest import START
from tests.helpers import event
from tests.unit.decision.conftest import DECISION

ANGRY = "This is unacceptable. The export is broken again and I am furious."
CALM = "The export seems slow today."


def stories() -> list[tuple[str, list[Event], list[str]]]:
    """(name, events of one ticket, escalations expected on it)."""
    later = START + timedelta(hours=1)
    return [
        ("angry", [event("a", subject="Export", body=ANGRY)], ["upset-customer"]),
        ("calm", [event("c", subject="Export", body=CALM)], []),
        (
            "angry reply",
            [event("r1", subject="Export", body=CALM, ticket="r"),
             event("r2", "customer.replied", ticket="r", at=later, body="Ridiculous. Useless.")],
            ["upset-customer"],
        ),
        (
            "reopened",
            [event("o1", subject="Sync", body=CALM, ticket="o"),
             event("o2", "ticket.solved", ticket="o", at=later),
             event("o3", "ticket.reopened", ticket="o", at=later + timedelta(hours=1))],
            ["solution-did-not-hold"],
        ),
        (
            "sent by the source",
            [event("s", subject="Plan", body=CALM, data={"signals": {"churn_risk": 0.9}})],
            ["churn-model"],
        ),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def decision_policy() -> Policy:
    return load_policy(DECISION)


def escalations_of(rules: Sequence[str]) -> list[str]:
    return [rule.removeprefix("escalation.") for rule in rules]


@pytest.mark.parametrize(("name", "events", "expected"), stories(), ids=[s[0] for s in stories()])
def test_live(
    db: Database, decision_policy: Policy, name: str, events: list[Event], expected: list[str]
) -> None:
    clock = FakeClock(START)
    engine = Engine(db=db, policy=decision_policy, clock=clock)
    ticket_id = None
    for e in events:
        clock.set(e.occurred_at)
        (result,) = engine.ingest([e])
        assert result.status == "accepted", result
        ticket_id = result.ticket_id
    assert ticket_id is not None
    with db.reader.connect() as conn:
        ticket = read.get_ticket(conn, ticket_id)
    assert ticket is not None
    assert escalations_of([x.rule for x in ticket.escalations]) == expected


@pytest.mark.parametrize(("name", "events", "expected"), stories(), ids=[s[0] for s in stories()])
def test_replay(decision_policy: Policy, name: str, events: list[Event], expected: list[str]) -> None:
    sink = io.BytesIO()
    run = PolicyRun(decision_policy, accounts={}, decisions=sink)
    for e in events:
        run.feed(e)
    records = [orjson.loads(line) for line in sink.getvalue().splitlines()]
    applied = [
        r["rule"]
        for record in records
        for r in record["reasons"]
        if r["matched"] and r["rule"].startswith("escalation.")
    ]
    assert escalations_of(applied) == expected


def test_policy_test_reads_signals_from_a_case(tmp_path: Path) -> None:
    """``baton policy test`` passes with the fixture's cases, and fails once a case's given signal
    no longer meets the rule its expectation relies on."""
    runner = CliRunner()
    passing = runner.invoke(app, ["policy", "test", str(DECISION)])
    assert passing.exit_code == 0, passing.output
    folder = tmp_path / "policy"
    shutil.copytree(DECISION, folder)
    cases = folder / "tests" / "signals.yaml"
    cases.write_text(cases.read_text().replace("signals: {churn_risk: 0.9}", "signals: {churn_risk: 0.5}"))
    failing = runner.invoke(app, ["policy", "test", str(folder)])
    assert failing.exit_code == 1, failing.output
    assert "1 failed" in failing.output, failing.output
