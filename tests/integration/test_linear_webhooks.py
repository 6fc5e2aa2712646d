"""Linear webhooks over real HTTP (uvicorn on loopback): the endpoint's verdicts, and an issue
Baton created through the Linear connector meeting its own webhooks on the ticket that made it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from baton.clock import to_ms
from baton.connectors.linear import LinearConfig, LinearConnector
from baton.engine.outbox import Outbox
from baton.model import Ticket
from baton.signals.signatures import sign_linear
from baton.store import repo
from baton.store.db import Database
from baton.store.schema import decisions, outbox
from tests.helpers import event, outbox_row, policy_with
from tests.integration.test_webhooks import LIMIT, Server, serve, serve_sqlite
from tests.standins.fixtures import LOOPBACK
from tests.standins.linear import LinearStandIn

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks" / "linear"
NEW = "lin_wh_new_5f0c2a9e71d4"
OLD = "lin_wh_old_0b8d3c61e2a7"
CONFIG = {"sources": {"linear": {"secrets": [NEW, OLD]}}}
LINEAR_KEY = "lin_api_StandIn0000000000000000000000000000SECRET"


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve_sqlite(tmp_path_factory.mktemp("linear-webhooks"), CONFIG) as server:
        yield server


def fresh(server: Server, name: str, *, age: float = 0, updated: str | None = None, **changes: Any) -> bytes:
    """A fixture as Linear would send it now (``age`` seconds ago), with top-level ``changes``;
    ``updated`` makes it another change of the same issue (its ``data.updatedAt``)."""
    payload = json.loads((FIXTURES / f"{name}.json").read_bytes()) | changes
    payload["webhookTimestamp"] = int((server.clock.now() - timedelta(seconds=age)).timestamp() * 1000)
    if updated is not None:
        payload["data"]["updatedAt"] = updated
    return json.dumps(payload).encode()


def post(server: Server, body: bytes, secret: str = NEW, delivery: str | None = None, **extra: str) -> Any:
    headers = {**sign_linear(body=body, secret=secret), **extra}
    if delivery is not None:
        headers["Linear-Delivery"] = delivery
    return server.post("linear", body, headers)


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("valid", 202),
        ("signed with the old secret during a rotation", 202),
        ("59 s old", 202),
        ("wrong secret", 401),
        ("one byte of the body changed", 401),
        ("no signature", 401),
        ("61 s old: a replay", 401),
        ("61 s in the future", 401),
        ("re-serialised", 401),
    ],
)
def test_verdicts(shared: Server, case: str, status: int) -> None:
    age = {"59 s old": 59, "61 s old: a replay": 61, "61 s in the future": -61}.get(case, 0)
    minute = (
        ["valid", "signed with the old secret during a rotation", "59 s old"].index(case)
        if status == 202
        else 9
    )
    body = fresh(shared, "issue_title", age=age, updated=f"2026-03-02T10:3{minute}:00.000Z")
    headers = sign_linear(
        body=body, secret=OLD if "old secret" in case else "nope" if "wrong" in case else NEW
    )
    if case == "one byte of the body changed":
        body = body.replace(b"Export fails above", b"Export fails ABOVE")
    elif case == "no signature":
        headers = {}
    elif case == "re-serialised":
        body = json.dumps(json.loads(body), indent=1).encode()
    before = shared.stored()
    response = shared.post("linear", body, headers)
    assert response.status_code == status, response.text
    if status == 401:
        assert response.json()["error"]["code"] == "unauthorized" and shared.stored() == before
        assert NEW not in response.text and OLD not in response.text
    else:
        assert response.json()["status"] == "accepted" and shared.stored() == before + 1


def test_a_redelivery_is_stored_once(shared: Server) -> None:
    body = fresh(shared, "issue_completed", webhookId="redelivered")
    first, again = post(shared, body, delivery="d-77"), post(shared, body, delivery="d-77")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["status"] == "duplicate"
    # Linear's retry of it: a fresh webhookTimestamp (signed again), the same change.
    retried = fresh(shared, "issue_completed", age=5, webhookId="redelivered")
    assert post(shared, retried, delivery="d-77").json()["status"] == "duplicate"


def test_a_captured_body_posted_again_under_another_delivery_header_is_a_duplicate(shared: Server) -> None:
    # The Linear-Delivery header is not signed: a replay within the 60 s window may carry any.
    body = fresh(shared, "issue_completed", updated="2026-03-02T12:00:00.000Z")
    before = shared.stored()
    first, replayed = post(shared, body, delivery="d-80"), post(shared, body, delivery="d-81-forged")
    assert (first.status_code, replayed.status_code) == (202, 200)
    assert replayed.json()["status"] == "duplicate" and shared.stored() == before + 1


@pytest.mark.parametrize(
    ("name", "body", "status", "code"),
    [
        ("oversized", b'{"action": "update", "pad": "' + b"x" * LIMIT + b'"}', 413, None),
        ("not an object", b"[1, 2, 3]", 401, "unauthorized"),  # no signed webhookTimestamp
        ("not JSON", b"{not json", 401, "unauthorized"),
    ],
)
def test_hostile_bodies_never_reach_the_engine(
    shared: Server, name: str, body: bytes, status: int, code: str | None
) -> None:
    before = shared.stored()
    response = post(shared, body)
    assert response.status_code == status, response.text
    if code:
        assert response.json()["error"]["code"] == code
    assert shared.stored() == before


def test_authentic_but_unacceptable_bodies(shared: Server) -> None:
    deep: dict[str, Any] = {"v": 1}
    for _ in range(100):
        deep = {"v": deep}
    stamp = int(shared.clock.now().timestamp() * 1000)
    nested = json.dumps({"action": "update", "type": "Issue", "data": deep, "webhookTimestamp": stamp})
    assert post(shared, nested.encode()).status_code == 400  # deeper than the JSON limit
    no_action = json.dumps({"type": "Issue", "data": {"id": "i-1"}, "webhookTimestamp": stamp})
    response = post(shared, no_action.encode())
    assert response.status_code == 422 and "action" in response.json()["error"]["message"]
    ignored = post(shared, fresh(shared, "project_updated"))
    assert (ignored.status_code, ignored.json()["status"]) == (200, "ignored")


def test_a_source_not_in_the_webhooks_file_is_not_accepted(db: Database, tmp_path: Path) -> None:
    with serve(db, tmp_path, {"sources": {}}) as server:
        body = fresh(server, "issue_title")
        assert post(server, body).status_code == 503


# -- an issue Baton created, and its webhooks -------------------------------------------------------

BUG_ROUTE = """
  - name: bugs
    when: '"bug" in ticket.subject'
    set: {queue: bugs, tier: L2, owner: l2}
    actions:
      - {name: file-bug, connector: linear, kind: create_issue, params: {title: A bug, priority: high}}
"""


@pytest.fixture
def linked(db: Database, tmp_path: Path) -> Iterator[Server]:
    folder = policy_with(tmp_path / "policy", baton="sync:\n  linear: {fields: [status]}\n", routes=BUG_ROUTE)
    with serve(db, tmp_path, CONFIG, policy=folder) as server:
        yield server


def _ticket(db: Database, ticket_id: str) -> Ticket:
    with db.reader.connect() as conn:
        return repo.load_tickets(conn, [ticket_id])[ticket_id]


def _reasons(db: Database, ticket_id: str) -> list[str]:
    """The rules of the ticket's last decision."""
    with db.reader.connect() as conn:
        body = (
            conn.execute(
                select(decisions.c.body)
                .where(decisions.c.ticket_id == ticket_id)
                .order_by(decisions.c.event_seq.desc())
            )
            .scalars()
            .first()
        )
    record = body if isinstance(body, dict) else json.loads(body)
    return [reason["rule"] for reason in record["reasons"]]


def _pending(db: Database) -> list[tuple[str, str]]:
    """(connector, action) of every action waiting to be delivered."""
    with db.reader.connect() as conn:
        rows = conn.execute(
            select(outbox.c.connector, outbox.c.action_name).where(outbox.c.status == "pending")
        )
        return [(r.connector, r.action_name) for r in rows]


@contextmanager
def linear_delivery(linked: Server, db: Database) -> Iterator[tuple[LinearStandIn, Outbox]]:
    """A Linear stand-in, and an outbox delivering to it through the real connector, whose
    deliveries join what they created to tickets through the server's engine."""
    clock = linked.clock
    with LinearStandIn(LINEAR_KEY, clock=lambda: clock.now().timestamp()) as standin:
        config = LinearConfig(
            api_key=LINEAR_KEY, api_url=f"{standin.url}/graphql", team_id=standin.team.id, http=LOOPBACK
        )
        connector = LinearConnector(config, clock=clock)
        try:
            yield (
                standin,
                Outbox(
                    db=db,
                    connectors={"linear": connector},
                    clock=clock,
                    worker="w1",
                    linker=linked.engine.ingest_in,
                ),
            )
        finally:
            connector.close()


def test_an_issue_baton_created_meets_its_webhooks_and_batons_own_change_is_not_acted_on(
    linked: Server, db: Database
) -> None:
    with linear_delivery(linked, db) as (standin, box):
        (opened,) = linked.engine.ingest([event(1, subject="bug in the CSV export")])
        ticket_id = opened.ticket_id
        assert ticket_id is not None
        while box.deliver().claimed:
            pass
        (issue_id,) = standin.issues
        issue = standin.issues[issue_id]
        assert ("linear", issue.id) in {(x.system, x.id) for x in _ticket(db, ticket_id).external_links}

        # Baton waits on the customer: pending is a started state in Linear, which Linear's
        # webhook reports as open. It lands on the ticket that filed the issue, and is
        # recognised as Baton's own change: the ticket stays pending.
        linked.engine.ingest([event(2, "status.changed", ticket=1, status="pending")])
        while box.deliver().claimed:
            pass
        issue = standin.issues[issue_id]  # the stand-in keeps each update as a new record
        assert standin.state(issue).name == "In Progress"
        response = post(linked, standin.webhook(issue, updated_from={"stateId": "x"}), delivery="lin-1")
        assert response.status_code == 202, response.text
        assert response.json()["events"][0]["ticket_id"] == ticket_id
        assert "sync.echo" in _reasons(db, ticket_id) and _ticket(db, ticket_id).stage == "pending"

        # Baton solves the ticket: the sync moves the issue to Done, and the echo is not news.
        linked.engine.ingest([event(3, "ticket.solved", ticket=1)])
        while box.deliver().claimed:
            pass
        issue = standin.issues[issue_id]
        assert standin.state(issue).name == "Done" and _pending(db) == []
        response = post(linked, standin.webhook(issue, updated_from={"stateId": "y"}), delivery="lin-2")
        assert response.json()["events"][0]["ticket_id"] == ticket_id
        assert "sync.echo" in _reasons(db, ticket_id) and _pending(db) == []

        # An engineer reopens it in Linear: news, acted on (not written back to Linear itself).
        reopened = standin.webhook(issue, updated_from=standin.move(issue, "In Progress"))
        assert post(linked, reopened, delivery="lin-3").status_code == 202
        assert _ticket(db, ticket_id).stage == "open" and "sync.echo" not in _reasons(db, ticket_id)
        # The policy acts on it (the owner hears of the reopen); nothing goes back to Linear.
        assert _pending(db) == [("log", "notify.reopened")]


def test_batons_own_comment_coming_back_is_not_news_even_before_its_answer_and_a_persons_is(
    linked: Server, db: Database
) -> None:
    # Without this a rule acting on notes could answer Baton's own comment, and so on forever.
    clock = linked.clock
    with linear_delivery(linked, db) as (standin, box):
        (opened,) = linked.engine.ingest([event(1, subject="bug in the CSV export")])
        ticket_id = opened.ticket_id or ""
        while box.deliver().claimed:
            pass
        (issue,) = standin.issues.values()
        params = {"text": "We told the customer a fix is on its way."}
        with db.write() as conn:
            row = outbox_row(
                key="k-comment",
                ticket=ticket_id,
                connector="linear",
                kind="comment",
                params=params,
                now_ms=to_ms(clock.now()),
            )
            conn.execute(insert(outbox), [row])
        # Linear posts the comment, and its answer is lost: the webhook comes before any answer.
        standin.drop_after("BatonCommentCreate")
        assert box.deliver().retried == 1
        (own,) = [c for c in standin.comments.values() if c.body == params["text"]]

        # A person's comment first: news (it cannot use up what Baton awaits).
        person = standin.comment(issue, "Reproduced: the export query times out after 30 s.")
        assert post(linked, standin.comment_webhook(person)).status_code == 202
        assert "sync.echo" not in _reasons(db, ticket_id)

        response = post(linked, standin.comment_webhook(own))
        assert response.status_code == 202, response.text
        assert response.json()["events"][0]["ticket_id"] == ticket_id
        assert _reasons(db, ticket_id) == ["sync.echo"]

        # The retry finds the comment it posted: one comment, delivered once.
        clock.advance(timedelta(minutes=10))
        while box.deliver().claimed:
            pass
        assert [c.body for c in standin.comments.values()].count(params["text"]) == 1
        assert ("linear", "k-comment") not in _pending(db)


def test_an_issues_webhook_before_its_creates_answer_finds_the_ticket_and_a_forged_marker_does_not(
    linked: Server, db: Database
) -> None:
    # The id Baton chose for the issue names the ticket from the send's attempt on; the marker
    # line in a description names nothing, since anyone in the workspace can write one.
    with linear_delivery(linked, db) as (standin, box):
        (opened,) = linked.engine.ingest([event(1, subject="bug in the invoice PDF")])
        ticket_id = opened.ticket_id or ""
        standin.drop_after("BatonIssueCreate")  # Linear creates the issue; the answer is lost
        assert box.deliver().retried == 1
        (issue,) = standin.issues.values()
        assert ("linear", issue.id) not in {(x.system, x.id) for x in _ticket(db, ticket_id).external_links}
        response = post(linked, standin.webhook(issue, "create"))
        assert response.status_code == 202, response.text
        assert response.json()["events"][0]["ticket_id"] == ticket_id

        forged = standin.add_issue(description=f"Please close this.\n\nbaton-ticket: {ticket_id}")
        response = post(linked, standin.webhook(forged, "create"))
        assert response.status_code == 202, response.text
        assert response.json()["events"][0]["ticket_id"] != ticket_id
        assert ("linear", forged.id) not in {(x.system, x.id) for x in _ticket(db, ticket_id).external_links}
