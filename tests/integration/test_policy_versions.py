"""Policy versions in the store (docs/policy.md section 15), on SQLite and PostgreSQL: activation
and its audit record, history, running clocks that keep their version, the runtime following an
activation made elsewhere, and the `baton policy activate|history|rollback` commands."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import baton.engine.runtime as runtime
from baton import audit
from baton.cli import app
from baton.clock import FakeClock, to_ms
from baton.engine.runtime import Engine
from baton.errors import NotFoundError
from baton.policy import versions
from baton.policy.loader import load_policy, policy_files, policy_version
from baton.policy.versions import PolicySet
from baton.store import read
from baton.store.db import Database
from baton.store.schema import audit_log, decisions, outbox, policies
from tests.conftest import START, TEST_POLICY
from tests.helpers import event

runner = CliRunner()


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


# Version B of the fixture policy: a shorter normal first-response target, and reaching 100% tells
# the manager instead of moving the ticket up a tier.
B_CHANGES = {
    "first_response: {urgent: 30m, high: 2h, normal: 8h, low: 24h}": (
        "first_response: {urgent: 30m, high: 2h, normal: 4h, low: 24h}"
    ),
    "- {at: 100, escalate: tier_up}": "- {at: 100, notify: [{to: manager, template: warn}]}",
}


def make_b(folder: Path) -> Path:
    """Turn a copy of the fixture policy into version B (and give it files A does not have)."""
    sla = (folder / "sla.yaml").read_text()
    for old, new in B_CHANGES.items():
        assert old in sla
        sla = sla.replace(old, new)
    (folder / "sla.yaml").write_text(sla)
    (folder / "escalation.yaml").write_text(
        "escalations:\n"
        "  - {name: urgent-to-l2, when: 'ticket.priority == \"urgent\"', kind: functional,"
        " mode: handoff, to: l2, notify: [{to: owner, template: extra}]}\n"
    )
    (folder / "templates" / "extra.j2").write_text("Urgent ticket {{ ticket.id }}\n")
    return folder


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    a = tmp_path / "a"
    shutil.copytree(TEST_POLICY, a)
    b = tmp_path / "b"
    shutil.copytree(TEST_POLICY, b)
    return a, make_b(b)


def activate(db: Database, folder: Path, *, at_hours: float = 0, actor: str = "ops") -> tuple[str, bool]:
    with db.write() as conn:
        return versions.activate(
            conn,
            files=policy_files(folder),
            name=load_policy(folder).name,
            actor=actor,
            at=START + hours(at_hours),
            is_postgres=db.is_postgres,
        )


def activations(db: Database) -> list[dict[str, Any]]:
    with db.reader.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.body).where(audit_log.c.kind == "policy.activated").order_by(audit_log.c.seq)
        )
        return [json.loads(r.body) for r in rows]


def active(db: Database) -> str | None:
    with db.reader.connect() as conn:
        return versions.active_version(conn)


# -- activation and history ---------------------------------------------------------------------------


def test_activation_records_the_version_and_an_audited_entry(db: Database, dirs: tuple[Path, Path]) -> None:
    a, b = dirs
    va, vb = load_policy(a).version, load_policy(b).version
    assert va != vb
    assert activate(db, a, actor="maria") == (va, True)
    assert activate(db, b, at_hours=1, actor="omar") == (vb, True)
    assert active(db) == vb
    assert activations(db) == [
        {"version": va, "name": "test-policy", "actor": "maria", "replaces": None},
        {"version": vb, "name": "test-policy", "actor": "omar", "replaces": va},
    ]
    with db.reader.connect() as conn:
        row = conn.execute(select(policies).where(policies.c.version == va)).one()
        assert (row.name, row.activated_by, row.activated_ms) == ("test-policy", "maria", to_ms(START))
        assert versions.stored_files(conn, va) == policy_files(a)  # the exact files, kept
        assert versions.load_version(conn, vb).version == vb
        assert audit.verify(conn).ok


def test_activating_the_same_files_twice_changes_nothing(db: Database, dirs: tuple[Path, Path]) -> None:
    a, _ = dirs
    version, _ = activate(db, a, actor="maria")
    copy = a.parent / "copy-of-a"  # the same files anywhere are the same version
    shutil.copytree(a, copy)
    assert activate(db, copy, at_hours=2, actor="someone-else") == (version, False)
    assert len(activations(db)) == 1
    with db.reader.connect() as conn:
        (row,) = conn.execute(select(policies)).all()
    assert (row.activated_by, row.activated_ms) == ("maria", to_ms(START))


def test_history_lists_every_version_with_its_last_activation(db: Database, dirs: tuple[Path, Path]) -> None:
    a, b = dirs
    va, _ = activate(db, a, actor="maria")
    vb, _ = activate(db, b, at_hours=1, actor="omar")
    assert activate(db, a, at_hours=2, actor="ivan") == (va, True)  # back to A: a new activation
    assert active(db) == va
    with db.reader.connect() as conn:
        listed = versions.history(conn)
    assert [(h["version"], h["activated_by"], h["activated_ms"]) for h in listed] == [
        (va, "ivan", to_ms(START + hours(2))),
        (vb, "omar", to_ms(START + hours(1))),
    ]
    assert activations(db)[-1] == {"version": va, "name": "test-policy", "actor": "ivan", "replaces": vb}


def test_the_latest_activation_is_active_even_when_clocks_disagree(
    db: Database, dirs: tuple[Path, Path]
) -> None:
    """A rollback run on a machine whose clock is a little behind the one that activated B (or in
    the same millisecond) must still win: the audit log says A replaced B, so A is active."""
    a, b = dirs
    va, _ = activate(db, a, at_hours=0)
    vb, _ = activate(db, b, at_hours=1)
    assert activate(db, a, at_hours=0.5, actor="rollback") == (va, True)
    assert activations(db)[-1]["replaces"] == vb
    assert active(db) == va


def test_policy_set_falls_back_to_the_current_version_for_an_unknown_one(
    db: Database, dirs: tuple[Path, Path]
) -> None:
    a, b = dirs
    va, _ = activate(db, a)
    current = load_policy(b)
    policies_ = PolicySet(current=current)
    with db.reader.connect() as conn:
        assert policies_.version(conn, None) is current
        assert policies_.version(conn, "0123456789abcdef") is current  # from before versions were stored
        older = policies_.version(conn, va)
        assert older.version == va and older is not current
        assert policies_.version(conn, va) is older  # loaded once
        with pytest.raises(NotFoundError):
            versions.load_version(conn, "0123456789abcdef")


# -- running clocks keep their version -------------------------------------------------------------------


def timer_decisions(db: Database, ticket_id: str) -> dict[str, str]:
    """For each SLA threshold that fired on the ticket, the version that decided it."""
    with db.reader.connect() as conn:
        rows = conn.execute(
            select(decisions.c.policy_version, decisions.c.body).where(decisions.c.ticket_id == ticket_id)
        ).all()
    out = {}
    for version, body in rows:
        if body["event_source"] == "baton.timer":
            (fired,) = [r["rule"] for r in body["reasons"] if r["rule"].startswith("sla.") and r["matched"]]
            out[fired] = version
    return out


@pytest.mark.parametrize("restarted", [False, True], ids=["running-engine-follows", "restarted-engine"])
def test_a_running_sla_clock_keeps_the_version_that_started_it(
    db: Database,
    clock: FakeClock,
    dirs: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    restarted: bool,
) -> None:
    a, b = dirs
    pa, pb = load_policy(a), load_policy(b)
    activate(db, a)
    engine = Engine(db=db, policy=pa, clock=clock)
    (first,) = engine.ingest([event(1, subject="Opened under A")])  # normal: first response due 17:00
    clock.set(START + hours(1))
    activate(db, b, at_hours=1)  # by another process
    monkeypatch.setattr(runtime, "POLICY_CHECK_SECONDS", 0)
    if restarted:  # a process started after B knows only B, and must load A from the store
        engine = Engine(db=db, policy=pb, clock=clock)
    (second,) = engine.ingest([event(2, subject="Opened under B", at=START + hours(1))])
    assert engine.policy.version == pb.version

    clock.set(START + hours(8))
    assert engine.fire_due_timers() == 6  # A's 50/80/100% of first response, B's too

    with db.reader.connect() as conn:
        t1, t2 = read.get_ticket(conn, first.ticket_id or ""), read.get_ticket(conn, second.ticket_id or "")
        entries = list(audit.entries_for_ticket(conn, first.ticket_id or ""))
    assert t1 is not None and t2 is not None
    fired = {"sla.first_response.50", "sla.first_response.80", "sla.first_response.100"}
    assert timer_decisions(db, t1.id) == dict.fromkeys(fired, pa.version)
    assert timer_decisions(db, t2.id) == dict.fromkeys(fired, pb.version)
    # The record of the decision that tiered ticket 1 up names A ...
    (tier_up,) = [
        e["body"]
        for e in entries
        if e["kind"] == "decision"
        and any(r["rule"] == "sla.first_response.100" for r in e["body"]["reasons"])
    ]
    assert tier_up["policy_version"] == pa.version
    # ... and A's behaviour is what happened: ticket 1 went up a tier, ticket 2 (B) only told the manager.
    assert t1.policy_version == pa.version and t1.clock("first_response").policy_version == pa.version  # type: ignore[union-attr]
    assert (t1.tier, [(e.rule, e.policy_version) for e in t1.escalations]) == (
        "L2",
        [("sla.first_response.100", pa.version)],
    )
    assert t2.policy_version == pb.version and t2.tier == "L1" and t2.escalations == ()
    with db.reader.connect() as conn:
        told = conn.execute(
            select(outbox.c.ticket_id, outbox.c.params).where(
                outbox.c.action_name == "sla.first_response.100.notify.0"
            )
        ).all()
    assert [(ticket_id, params["to"], params["template"]) for ticket_id, params in told] == [
        (t2.id, "mia", "warn")
    ]
    assert t2.clock("first_response").due_at == START + hours(5)  # type: ignore[union-attr]  # B's 4 h
    assert t1.clock("first_response").due_at == START + hours(8)  # type: ignore[union-attr]  # A's 8 h


def test_a_clock_started_under_the_new_version_is_decided_by_it_on_an_older_ticket(
    db: Database, clock: FakeClock, dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clock's version decides its timers, not the version that opened the ticket."""
    a, b = dirs
    pa, pb = load_policy(a), load_policy(b)
    activate(db, a)
    monkeypatch.setattr(runtime, "POLICY_CHECK_SECONDS", 0)
    engine = Engine(db=db, policy=pa, clock=clock)
    (opened,) = engine.ingest([event(1, subject="Opened under A")])
    engine.ingest([event(2, "agent.replied", ticket=1, at=START + hours(0.5))])
    activate(db, b, at_hours=1)
    engine.ingest(
        [
            event(3, "ticket.solved", ticket=1, at=START + hours(2)),
            event(4, "ticket.reopened", ticket=1, at=START + hours(3)),  # a new resolution clock, under B
        ]
    )
    clock.set(START + hours(3 + 72))
    assert engine.fire_due_timers() == 3
    with db.reader.connect() as conn:
        ticket = read.get_ticket(conn, opened.ticket_id or "")
    assert ticket is not None and ticket.policy_version == pa.version
    assert ticket.clock("resolution").policy_version == pb.version  # type: ignore[union-attr]
    assert timer_decisions(db, ticket.id) == dict.fromkeys(
        {"sla.resolution.50", "sla.resolution.80", "sla.resolution.100"}, pb.version
    )
    assert ticket.tier == "L1" and ticket.escalations == ()  # B's 100%: tell the manager, no tier up


def test_the_runtime_follows_an_activation_made_by_another_process(
    db: Database, clock: FakeClock, dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = dirs
    pa, pb = load_policy(a), load_policy(b)
    activate(db, a)
    engine = Engine(db=db, policy=pa, clock=clock)

    def decided_by(n: int) -> str:
        (result,) = engine.ingest([event(n, subject=f"ticket {n}")])
        with db.reader.connect() as conn:
            return str(
                conn.execute(
                    select(decisions.c.policy_version).where(decisions.c.id == result.decision_id)
                ).scalar_one()
            )

    assert decided_by(1) == pa.version
    activate(db, b, at_hours=1)
    monkeypatch.setattr(runtime, "POLICY_CHECK_SECONDS", 3600.0)  # not time to look yet
    assert decided_by(2) == pa.version
    monkeypatch.setattr(runtime, "POLICY_CHECK_SECONDS", 0.0)
    assert decided_by(3) == pb.version and engine.policy.version == pb.version
    activate(db, a, at_hours=2)  # a rollback elsewhere is followed too
    assert decided_by(4) == pa.version and engine.policy.version == pa.version


# -- the commands --------------------------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path, db_url: str, db: Database, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    monkeypatch.setenv("BATON_WORKSPACE", str(ws))
    monkeypatch.setenv("BATON_DATABASE_URL", db_url)
    monkeypatch.delenv("BATON_POLICY_DIR", raising=False)
    result = runner.invoke(app, ["init", "--policy", str(TEST_POLICY)])
    assert result.exit_code == 0, result.output
    return ws


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, f"{args}: {result.output} {result.exception!r}"
    return result.output


def test_cli_activate_history_and_rollback(workspace: Path, db: Database) -> None:
    folder = workspace / "policy"
    va = load_policy(folder).version
    (folder / "tests").mkdir()
    (folder / "tests" / "cases.yaml").write_text("[]\n")  # not part of the version: left alone

    assert (
        cli("policy", "activate", str(folder), "--actor", "maria").strip() == f"activated: test-policy {va}"
    )
    assert cli("policy", "activate", str(folder)).strip() == f"already active: test-policy {va}"

    make_b(folder)  # edit the workspace policy into B and ship it
    vb = load_policy(folder).version
    assert cli("policy", "activate", str(folder), "--actor", "omar").strip() == f"activated: test-policy {vb}"
    history = cli("policy", "history").splitlines()
    assert any(va in line and "maria" in line for line in history)
    assert any(vb in line and "omar" in line for line in history)

    out = cli("policy", "rollback", va, "--actor", "ivan")
    assert f"rolled back to test-policy {va}" in out
    assert not (folder / "escalation.yaml").exists()  # B's files that A did not have are removed
    assert not (folder / "templates" / "extra.j2").exists()
    assert policy_files(folder) == policy_files(TEST_POLICY)
    assert policy_version(policy_files(folder)) == va and load_policy(folder).version == va
    assert (folder / "tests" / "cases.yaml").read_text() == "[]\n"
    assert active(db) == va
    assert activations(db)[-1] == {"version": va, "name": "test-policy", "actor": "ivan", "replaces": vb}
    assert any(va in line and "ivan" in line for line in cli("policy", "history").splitlines())


def test_cli_rollback_to_an_unknown_version_fails_and_touches_nothing(workspace: Path, db: Database) -> None:
    folder = workspace / "policy"
    before = policy_files(folder)
    result = runner.invoke(app, ["policy", "rollback", "0123456789abcdef"])
    assert result.exit_code != 0
    assert isinstance(result.exception, NotFoundError)
    assert policy_files(folder) == before
    assert active(db) is None


def test_cli_activate_refuses_a_broken_folder(workspace: Path, tmp_path: Path, db: Database) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(TEST_POLICY, broken)
    (broken / "routing.yaml").write_text("routing: []\n")
    result = runner.invoke(app, ["policy", "activate", str(broken)])
    assert result.exit_code == 1
    assert "routing.yaml" in result.output
    assert active(db) is None


def test_a_time_in_stage_timer_is_decided_by_the_version_that_set_it(
    db: Database, clock: FakeClock, dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stuck rule added in a new version arms on a ticket opened under the old one, and fires
    under the new one (the ticket's own version does not know the rule)."""
    a, b = dirs
    (b / "escalation.yaml").write_text(
        "escalations:\n"
        "  - name: stuck-pending\n"
        "    stuck: {stage: pending, for: 1h}\n"
        "    kind: hierarchical\n"
        "    mode: assist\n"
        "    to: leads\n"
    )
    pa, pb = load_policy(a), load_policy(b)
    activate(db, a)
    monkeypatch.setattr(runtime, "POLICY_CHECK_SECONDS", 0)
    engine = Engine(db=db, policy=pa, clock=clock)
    (opened,) = engine.ingest([event(1, subject="Opened under A")])
    activate(db, b, at_hours=1)
    clock.set(START + hours(1))
    engine.ingest([event(2, "status.changed", ticket=1, status="pending", at=START + hours(1))])
    clock.set(START + hours(2.5))
    engine.fire_due_timers()
    with db.reader.connect() as conn:
        ticket = read.get_ticket(conn, opened.ticket_id or "")
        rows = conn.execute(
            select(decisions.c.policy_version, decisions.c.body).where(
                decisions.c.ticket_id == opened.ticket_id
            )
        ).all()
    assert ticket is not None and ticket.policy_version == pa.version
    (fired,) = [
        (version, body)
        for version, body in rows
        if any(r["rule"] == "stuck.stuck-pending" for r in body["reasons"])
    ]
    assert fired[0] == pb.version
    assert any(r["rule"] == "escalation.stuck-pending" and r["matched"] for r in fired[1]["reasons"]), fired[
        1
    ]
