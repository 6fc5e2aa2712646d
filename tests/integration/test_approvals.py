"""The approvals queue (docs/policy.md section 14), on SQLite and PostgreSQL, through the store, the
outbox, the HTTP API and the `baton approvals` commands.

The feature policy's rule `legal-review` (tests/fixtures/features/escalation.yaml) has
`approval: required` and `author: mia`; the policy's `approvers` role is `leads` (mia, backup lou).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from baton.cli import app as cli_app
from baton.clock import FakeClock
from baton.connectors.fake import FakeConnector
from baton.engine.approvals import approvers_of
from baton.engine.outbox import Outbox
from baton.engine.runtime import Engine
from baton.errors import AuthError, InputError, NotFoundError
from baton.policy.loader import load_policy
from baton.policy.model import Policy
from baton.settings import load_settings
from baton.store.db import Database, open_database
from baton.store.schema import audit_log, outbox
from baton.web.app import create_app
from baton.web.auth import create_token
from tests.conftest import ROOT, START
from tests.helpers import event

FEATURES = ROOT / "tests" / "fixtures" / "features"
RULE = "escalation.legal-review"
WAITING = {f"{RULE}.notify.0", f"{RULE}.notify.1", f"{RULE}.hold-replies"}
# The API stamps a verdict with the system clock (create_app takes no clock), so the outbox that
# delivers approved actions runs on a fake clock set after any real "now".
LATER = datetime(2100, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def features() -> Policy:
    return load_policy(FEATURES)


@pytest.fixture
def queued(db: Database, features: Policy, clock: FakeClock) -> dict[str, int]:
    return queue(db, features, clock)


def queue(db: Database, features: Policy, clock: FakeClock) -> dict[str, int]:
    """A contract question: legal-review applies and its three actions wait. Returns outbox ids by
    action name."""
    engine = Engine(db=db, policy=features, clock=clock)
    (result,) = engine.ingest(
        [event(1, subject="Contract clause 7.2", tags=["contract"], requester="cto@acme.example")]
    )
    assert result.status == "accepted", result.error
    return {row["action_name"]: row["id"] for row in rows(db)}


@pytest.fixture
def sent() -> FakeConnector:
    return FakeConnector()


@pytest.fixture
def deliver(db: Database, sent: FakeConnector) -> Callable[[], int]:
    box = Outbox(db=db, connectors={"log": sent, "email": sent}, clock=FakeClock(LATER), worker="w1")
    return lambda: box.deliver().delivered


def rows(db: Database) -> list[dict[str, Any]]:
    with db.reader.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(outbox).order_by(outbox.c.id))]


def status(db: Database, action_id: int) -> str:
    return str(next(r["status"] for r in rows(db) if r["id"] == action_id))


def verdicts(db: Database) -> list[tuple[str, dict[str, Any]]]:
    with db.reader.connect() as conn:
        found = conn.execute(
            select(audit_log.c.kind, audit_log.c.body)
            .where(audit_log.c.kind.in_(("action.approved", "action.rejected")))
            .order_by(audit_log.c.seq)
        )
        return [(kind, json.loads(body)) for kind, body in found]


def delivered_names(sent: FakeConnector, db: Database) -> set[str]:
    keys = {c.key for c in sent.calls}
    return {r["action_name"] for r in rows(db) if r["idempotency_key"] in keys}


# -- the queue and the outbox ------------------------------------------------------------------------


def test_required_approval_queues_the_rules_actions_and_the_outbox_holds_them(
    db: Database, features: Policy, clock: FakeClock, deliver: Callable[[], int], sent: FakeConnector
) -> None:
    queued = queue(db, features, clock)  # stored at all: the status "awaiting_approval" must fit
    by_name = {r["action_name"]: r for r in rows(db)}
    assert set(by_name) == {"routing.default.notify.0", *WAITING}
    for name in WAITING:
        assert (by_name[name]["status"], by_name[name]["rule"], by_name[name]["author"]) == (
            "awaiting_approval",
            RULE,
            "mia",
        )
    assert by_name["routing.default.notify.0"]["status"] == "pending"
    assert deliver() == 1  # only the routing notification leaves
    assert deliver() == 0
    assert delivered_names(sent, db) == {"routing.default.notify.0"}
    assert all(status(db, queued[name]) == "awaiting_approval" for name in WAITING)


# -- the API -----------------------------------------------------------------------------------------------


@pytest.fixture
def api(db: Database, tmp_path: Path, features: Policy) -> Iterator[Callable[[bool], TestClient]]:
    """``api(restricted)``: a client for an API that does (True) or does not (False) check the
    policy's approvers role."""
    settings = load_settings({}, workspace=tmp_path)
    clients: list[TestClient] = []

    def build(restricted: bool) -> TestClient:
        allowed = approvers_of(features) if restricted else None
        client = TestClient(create_app(settings=settings, db=db, batcher=None, approvers=lambda: allowed))
        clients.append(client.__enter__())
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def tokens(db: Database) -> dict[str, str]:
    """Tokens by name: approvers lou, mia (the rule's author), olivia (the policy's author) and zoe
    (not in the approvers role); viewer vic; agent al."""
    people = {"lou": "approver", "mia": "approver", "olivia": "approver", "zoe": "approver"}
    people |= {"vic": "viewer", "al": "agent", "root": "admin"}
    with db.writer.begin() as conn:
        return {name: create_token(conn, role=role, name=name, now_ms=0) for name, role in people.items()}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_list_shows_waiting_actions_to_approvers_only(
    api: Callable[[bool], TestClient], tokens: dict[str, str], queued: dict[str, int]
) -> None:
    client = api(False)
    r = client.get("/v1/approvals", headers=auth(tokens["lou"]))
    assert r.status_code == 200, r.text
    listed = r.json()["approvals"]
    assert sorted(item["id"] for item in listed) == sorted(queued[name] for name in WAITING)
    assert {(item["rule"], item["author"]) for item in listed} == {(RULE, "mia")}
    assert {(item["kind"], item["params"].get("to"), item["params"].get("address")) for item in listed} == {
        ("notify", "lea", None),  # through the `log` connector, for which lea has no identity
        ("notify", None, "cto@acme.example"),
        ("tag", None, None),
    }
    assert client.get("/v1/approvals", headers=auth(tokens["root"])).status_code == 200
    for name, code in (("vic", 403), ("al", 403)):
        assert client.get("/v1/approvals", headers=auth(tokens[name])).status_code == code
    assert client.get("/v1/approvals").status_code == 401


def test_approve_releases_the_action_to_the_outbox_with_an_audited_reason(
    db: Database,
    api: Callable[[bool], TestClient],
    tokens: dict[str, str],
    queued: dict[str, int],
    deliver: Callable[[], int],
    sent: FakeConnector,
) -> None:
    deliver()  # the routing notification
    action = queued[f"{RULE}.notify.1"]  # the message to the customer
    r = api(True).post(
        f"/v1/approvals/{action}/approve", json={"reason": "Wording checked"}, headers=auth(tokens["lou"])
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and r.json()["id"] == action
    assert status(db, action) == "pending"
    assert deliver() == 1
    assert status(db, action) == "done"
    assert delivered_names(sent, db) == {"routing.default.notify.0", f"{RULE}.notify.1"}
    assert sent.calls[-1].params["address"] == "cto@acme.example"
    ((kind, body),) = verdicts(db)
    assert kind == "action.approved"
    assert (body["actor"], body["reason"], body["rule"], body["action"]) == (
        "lou",
        "Wording checked",
        RULE,
        f"{RULE}.notify.1",
    )
    # the other two still wait
    assert {status(db, queued[n]) for n in WAITING - {f"{RULE}.notify.1"}} == {"awaiting_approval"}


def test_reject_means_never_delivered(
    db: Database,
    api: Callable[[bool], TestClient],
    tokens: dict[str, str],
    queued: dict[str, int],
    deliver: Callable[[], int],
    sent: FakeConnector,
) -> None:
    action = queued[f"{RULE}.hold-replies"]
    r = api(True).post(
        f"/v1/approvals/{action}/reject", json={"reason": "Not needed"}, headers=auth(tokens["lou"])
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    deliver()
    deliver()
    assert status(db, action) == "rejected"
    assert f"{RULE}.hold-replies" not in delivered_names(sent, db)
    ((kind, body),) = verdicts(db)
    assert (kind, body["actor"], body["reason"]) == ("action.rejected", "lou", "Not needed")


@pytest.mark.parametrize("body", [{"reason": ""}, {"reason": "   "}, {}, {"reason": "x" * 1001}])
def test_a_verdict_needs_a_reason(
    db: Database,
    api: Callable[[bool], TestClient],
    tokens: dict[str, str],
    queued: dict[str, int],
    body: dict[str, str],
) -> None:
    action = queued[f"{RULE}.notify.0"]
    client = api(False)
    for verb in ("approve", "reject"):
        r = client.post(f"/v1/approvals/{action}/{verb}", json=body, headers=auth(tokens["lou"]))
        assert r.status_code == 422, r.text
    assert status(db, action) == "awaiting_approval"
    assert verdicts(db) == []


@pytest.mark.parametrize(
    ("restricted", "actor", "verb", "code"),
    [
        (False, "mia", "approve", 403),  # the rule's author may not approve it ...
        (False, "mia", "reject", 200),  # ... but may reject it
        (False, "olivia", "approve", 200),  # the policy's author did not write this rule
        (True, "zoe", "approve", 403),  # not in the approvers role
        (True, "zoe", "reject", 403),
        (True, "olivia", "approve", 403),
        (True, "lou", "approve", 200),  # the role's backup is an approver
        (True, "mia", "approve", 403),  # in the role, but the author
        (False, "zoe", "approve", 200),  # without a role to check, any approver token
    ],
)
def test_who_may_decide(
    db: Database,
    api: Callable[[bool], TestClient],
    tokens: dict[str, str],
    queued: dict[str, int],
    restricted: bool,
    actor: str,
    verb: str,
    code: int,
) -> None:
    action = queued[f"{RULE}.notify.0"]
    r = api(restricted).post(
        f"/v1/approvals/{action}/{verb}", json={"reason": "Reviewed"}, headers=auth(tokens[actor])
    )
    assert r.status_code == code, r.text
    expected = {"approve": "pending", "reject": "rejected"}[verb] if code == 200 else "awaiting_approval"
    assert status(db, action) == expected
    assert len(verdicts(db)) == (1 if code == 200 else 0)


def test_a_verdict_is_given_once_and_only_on_waiting_actions(
    db: Database, api: Callable[[bool], TestClient], tokens: dict[str, str], queued: dict[str, int]
) -> None:
    client = api(True)
    action = queued[f"{RULE}.notify.0"]
    ok = {"reason": "Fine"}
    assert (
        client.post(f"/v1/approvals/{action}/approve", json=ok, headers=auth(tokens["lou"])).status_code
        == 200
    )
    for verb in ("approve", "reject"):
        again = client.post(f"/v1/approvals/{action}/{verb}", json=ok, headers=auth(tokens["lou"]))
        assert again.status_code == 404, again.text
    routed = queued["routing.default.notify.0"]  # pending, never waited
    assert (
        client.post(f"/v1/approvals/{routed}/approve", json=ok, headers=auth(tokens["lou"])).status_code
        == 404
    )
    assert (
        client.post("/v1/approvals/999999/approve", json=ok, headers=auth(tokens["lou"])).status_code == 404
    )
    for huge in ("99999999999999999999999", "0"):  # no row can have it: 422, never a 500
        for verb in ("approve", "reject"):
            answer = client.post(f"/v1/approvals/{huge}/{verb}", json=ok, headers=auth(tokens["lou"]))
            assert answer.status_code == 422, answer.text
    assert status(db, action) == "pending" and len(verdicts(db)) == 1


def test_a_schedule_role_as_approvers_admits_the_people_who_fill_it(tmp_path: Path) -> None:
    """`approvers` names a role, and a role is filled from a pool or from an on-call schedule
    (section 4). With the schedule role `oncall` (rotation esther, farid, grace; override nadia;
    backup nadia) the people on its rotation must be able to approve, not only the backup."""
    folder = tmp_path / "policy"
    shutil.copytree(FEATURES, folder)
    baton_yaml = (folder / "baton.yaml").read_text()
    (folder / "baton.yaml").write_text(baton_yaml.replace("approvers: leads", "approvers: oncall"))
    allowed = approvers_of(load_policy(folder))
    assert allowed is not None
    assert {"esther", "farid", "grace", "nadia"} <= allowed


# -- the commands --------------------------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def workspace(tmp_path: Path, db_url: str, db: Database, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    monkeypatch.setenv("BATON_WORKSPACE", str(ws))
    monkeypatch.setenv("BATON_DATABASE_URL", db_url)
    monkeypatch.delenv("BATON_POLICY_DIR", raising=False)
    result = runner.invoke(cli_app, ["init", "--policy", str(FEATURES)])
    assert result.exit_code == 0, result.output
    return ws


def cli(*args: str) -> Any:
    return runner.invoke(cli_app, list(args), env={"COLUMNS": "200"})


def table(output: str) -> list[list[str]]:
    """The rows `baton approvals list --json` printed, as (id, ticket, rule, author, kind, to) cells."""
    return [
        [
            str(i["id"]),
            i["ticket_id"],
            i["rule"] or "",
            i["author"] or "",
            i["kind"],
            str(i["params"].get("to") or i["params"].get("address") or ""),
        ]
        for i in json.loads(output)
    ]


def test_cli_list_approve_and_reject_round_trip(
    workspace: Path, db: Database, queued: dict[str, int], deliver: Callable[[], int], sent: FakeConnector
) -> None:
    listed = cli("approvals", "list", "--json")
    assert listed.exit_code == 0, listed.output
    notify, customer, hold = (queued[f"{RULE}.{n}"] for n in ("notify.0", "notify.1", "hold-replies"))
    assert sorted((int(row[0]), row[2], row[3], row[4], row[5]) for row in table(listed.output)) == [
        (notify, RULE, "mia", "notify", "lea"),
        (customer, RULE, "mia", "notify", "cto@acme.example"),
        (hold, RULE, "mia", "tag", ""),
    ]

    approved = cli("approvals", "approve", str(customer), "--reason", "Wording checked", "--actor", "lou")
    assert approved.exit_code == 0, approved.output
    assert approved.output.strip().endswith(": pending")
    rejected = cli("approvals", "reject", str(hold), "--reason", "Not needed", "--actor", "mia")
    assert rejected.exit_code == 0 and rejected.output.strip().endswith(": rejected")  # the author may reject

    refused = [
        (["approve", str(notify), "--reason", "", "--actor", "lou"], InputError),
        (["approve", str(notify), "--reason", "Mine", "--actor", "mia"], AuthError),  # the author
        (["approve", str(notify), "--reason", "Sure", "--actor", "zoe"], AuthError),  # not an approver
        (["approve", str(customer), "--reason", "Again", "--actor", "lou"], NotFoundError),  # decided
    ]
    for args, error in refused:
        result = cli("approvals", *args)
        assert result.exit_code != 0 and isinstance(result.exception, error), (args, result.exception)
    assert status(db, notify) == "awaiting_approval"

    assert [int(row[0]) for row in table(cli("approvals", "list", "--json").output)] == [notify]
    deliver()
    deliver()
    assert delivered_names(sent, db) == {"routing.default.notify.0", f"{RULE}.notify.1"}
    assert [(k, b["actor"], b["reason"]) for k, b in verdicts(db)] == [
        ("action.approved", "lou", "Wording checked"),
        ("action.rejected", "mia", "Not needed"),
    ]


def test_cli_reports_a_missing_reason_as_an_error(
    tmp_path: Path, features: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real entry point (once, on the workspace's SQLite): the error is printed and the
    exit status is 2."""
    monkeypatch.setenv("BATON_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("BATON_DATABASE_URL", raising=False)
    monkeypatch.delenv("BATON_POLICY_DIR", raising=False)
    assert runner.invoke(cli_app, ["init", "--policy", str(FEATURES)]).exit_code == 0
    db = open_database(load_settings().resolved_database_url)
    try:
        action = str(queue(db, features, FakeClock(START))[f"{RULE}.notify.0"])
    finally:
        db.dispose()
    command = ["approvals", "approve", action, "--reason", " ", "--actor", "lou"]
    done = subprocess.run(
        [sys.executable, "-c", "from baton.cli import main; main()", *command],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "error: a reason is required" in done.stderr
