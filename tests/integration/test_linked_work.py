"""Linked work: items a connector creates join their ticket, Baton's changes reach each linked
system that should know, and Baton's own writes coming back are recognised (no echo loops)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from baton.clock import FakeClock
from baton.connectors.base import Delivery, OutboundAction
from baton.engine.outbox import Outbox
from baton.engine.runtime import Engine
from baton.model import ExternalLink, Ticket
from baton.policy.loader import load_policy
from baton.store import repo
from baton.store.db import Database
from baton.store.schema import decisions, echoes, external_links
from tests.conftest import TEST_POLICY
from tests.helpers import event

SYNC = """
connectors: [log]
sync:
  zendesk: {fields: [priority, status]}
  jira: {connector: webhook, fields: [priority]}
"""
BUG_ROUTE = """
  - name: bugs
    when: '"bug" in ticket.subject'
    set: {queue: bugs, tier: L2, owner: l2}
    actions: [{name: file-bug, connector: webhook, kind: create_issue, params: {project: ENG}}]
"""


class Vendor:
    """A connector that answers like one whose items have ids: it reports the item each action
    created or changed, and what it wrote there."""

    def __init__(self, system: str) -> None:
        self.name = system
        self.system = system
        self.calls: list[OutboundAction] = []

    def send(self, action: OutboundAction) -> Delivery:
        self.calls.append(action)
        if action.kind == "create_issue":
            return Delivery(
                external_id="ENG-1",
                link=ExternalLink(system="jira", id="10001", url="https://jira.example/browse/ENG-1"),
            )
        changes: Mapping[str, str] = action.params.get("changes") or {}  # type: ignore[assignment]
        item = str(action.params.get("external_id"))
        return Delivery(external_id=item, link=ExternalLink(system=self.system, id=item), wrote=changes)


@pytest.fixture
def linked_engine(db: Database, clock: FakeClock, tmp_path: Path) -> Engine:
    folder = tmp_path / "policy"
    shutil.copytree(TEST_POLICY, folder)
    with (folder / "baton.yaml").open("a") as f:
        f.write(SYNC)
    routing = (folder / "routing.yaml").read_text().replace("routing:\n", "routing:\n" + BUG_ROUTE, 1)
    (folder / "routing.yaml").write_text(routing)
    return Engine(db=db, policy=load_policy(folder), clock=clock)


@pytest.fixture
def vendors() -> dict[str, Vendor]:
    return {"webhook": Vendor("jira"), "zendesk": Vendor("zendesk"), "log": Vendor("log")}


def _outbox(engine: Engine, db: Database, clock: FakeClock, vendors: Mapping[str, Vendor]) -> Outbox:
    return Outbox(db=db, connectors=vendors, clock=clock, worker="w1", linker=engine.ingest_in)


def _drain(box: Outbox) -> int:
    """Deliver until nothing is left (a round takes one action per ticket, in order)."""
    delivered = 0
    while (stats := box.deliver()).claimed:
        delivered += stats.delivered
    return delivered


def _ticket(db: Database, ticket_id: str) -> Ticket:
    with db.reader.connect() as conn:
        return repo.load_tickets(conn, [ticket_id])[ticket_id]


def _last_decision(db: Database, ticket_id: str) -> dict[str, Any]:
    """The last decision as the record keeps it (JSON)."""
    with db.reader.connect() as conn:
        body = conn.execute(
            select(decisions.c.body)
            .where(decisions.c.ticket_id == ticket_id)
            .order_by(decisions.c.event_seq.desc())
        ).first()
    assert body is not None
    return body[0] if isinstance(body[0], dict) else json.loads(body[0])


def test_a_created_issue_joins_its_ticket_and_its_webhooks_land_there(
    linked_engine: Engine, db: Database, clock: FakeClock, vendors: dict[str, Vendor]
) -> None:
    (opened,) = linked_engine.ingest([event(1, subject="bug in the export")])
    assert _drain(_outbox(linked_engine, db, clock, vendors)) >= 2
    (create,) = [a for a in vendors["webhook"].calls if a.kind == "create_issue"]
    assert create.params["links"] == {"zendesk": "1"}  # rule actions know the ticket's links

    ticket = _ticket(db, opened.ticket_id or "")
    assert ("jira", "10001") in {(link.system, link.id) for link in ticket.external_links}
    with db.reader.connect() as conn:
        rows = conn.execute(select(external_links.c.ticket_id).where(external_links.c.system == "jira")).all()
    assert [r.ticket_id for r in rows] == [opened.ticket_id]

    # The Jira issue's own webhook (no Baton ticket id on it) lands on the same ticket.
    (comment,) = linked_engine.ingest(
        [event("j-1", "note.added", ticket="10001", source="jira", body="fixed")]
    )
    assert comment.status == "accepted" and comment.ticket_id == opened.ticket_id


def test_a_change_reaches_each_linked_system_and_its_echo_is_not_acted_on(
    linked_engine: Engine, db: Database, clock: FakeClock, vendors: dict[str, Vendor]
) -> None:
    (opened,) = linked_engine.ingest([event(1, subject="bug in the export", priority="normal")])
    box = _outbox(linked_engine, db, clock, vendors)
    _drain(box)
    ticket_id = opened.ticket_id or ""

    # Jira says the issue is urgent: the ticket follows, and Zendesk hears of it (Jira does not).
    linked_engine.ingest([event("j-1", "priority.changed", ticket="10001", source="jira", priority="urgent")])
    decision = _last_decision(db, ticket_id)
    syncs = [a for a in decision["actions"] if a["kind"] == "sync"]
    assert [(a["connector"], a["params"]["external_id"], a["params"]["changes"]) for a in syncs] == [
        ("zendesk", "1", {"priority": "urgent"})
    ]
    _drain(box)
    assert [a.params["changes"] for a in vendors["zendesk"].calls if a.kind == "sync"] == [
        {"priority": "urgent"}
    ]

    # Zendesk's webhook for that very change comes back: recorded, recognised, not acted on.
    (echo,) = linked_engine.ingest([event("z-2", "priority.changed", ticket="1", priority="urgent")])
    assert echo.status == "accepted"
    decision = _last_decision(db, ticket_id)
    assert [r["rule"] for r in decision["reasons"]] == ["sync.echo"]
    assert decision["actions"] == [] and decision["changes"] == []
    with db.reader.connect() as conn:
        assert conn.execute(select(echoes)).all() == []  # consumed

    # The same value reported again later is a person's change, and news again.
    linked_engine.ingest([event("z-3", "priority.changed", ticket="1", priority="urgent")])
    assert "sync.echo" not in [r["rule"] for r in _last_decision(db, ticket_id)["reasons"]]


def test_a_stale_echo_does_not_undo_a_later_change(
    linked_engine: Engine, db: Database, clock: FakeClock, vendors: dict[str, Vendor]
) -> None:
    (opened,) = linked_engine.ingest([event(1, subject="export is slow", priority="normal")])
    box = _outbox(linked_engine, db, clock, vendors)
    ticket_id = opened.ticket_id or ""
    # Two changes from elsewhere (an agent in another tool), in quick succession.
    linked_engine.ingest(
        [
            event("o-1", "priority.changed", ticket="1", source="zendesk-api", priority="high").model_copy(
                update={"ticket_id": ticket_id, "external": None}
            ),
            event("o-2", "priority.changed", ticket="1", source="zendesk-api", priority="urgent").model_copy(
                update={"ticket_id": ticket_id, "external": None}
            ),
        ]
    )
    _drain(box)
    wrote = [a.params["changes"] for a in vendors["zendesk"].calls if a.kind == "sync"]
    assert wrote == [{"priority": "high"}, {"priority": "urgent"}]
    # Zendesk's webhook for the first write arrives after the second write.
    linked_engine.ingest([event("z-2", "priority.changed", ticket="1", priority="high")])
    assert _ticket(db, ticket_id).priority.value == "urgent"
    assert [r["rule"] for r in _last_decision(db, ticket_id)["reasons"]] == ["sync.echo"]


def test_a_value_a_system_reported_is_not_written_back_to_it(
    linked_engine: Engine, db: Database, clock: FakeClock, vendors: dict[str, Vendor]
) -> None:
    (opened,) = linked_engine.ingest([event(1, subject="export is slow", priority="normal")])
    linked_engine.ingest([event("z-2", "priority.changed", ticket="1", priority="high")])
    decision = _last_decision(db, opened.ticket_id or "")
    assert [c["field"] for c in decision["changes"]] == ["priority"]
    assert [a for a in decision["actions"] if a["kind"] == "sync"] == []


def test_a_senders_own_echo_flag_is_ignored(linked_engine: Engine, db: Database) -> None:
    (opened,) = linked_engine.ingest([event(1, subject="export is slow", priority="normal")])
    linked_engine.ingest([event("z-2", "priority.changed", ticket="1", priority="high", data={"echo": True})])
    decision = _last_decision(db, opened.ticket_id or "")
    assert "sync.echo" not in [r["rule"] for r in decision["reasons"]]
    assert _ticket(db, opened.ticket_id or "").priority.value == "high"


def test_a_whole_item_webhook_is_an_echo_when_only_batons_write_differs(
    linked_engine: Engine, db: Database, clock: FakeClock, vendors: dict[str, Vendor]
) -> None:
    (opened,) = linked_engine.ingest([event(1, subject="export is slow", priority="normal")])
    ticket_id = opened.ticket_id or ""
    box = _outbox(linked_engine, db, clock, vendors)
    linked_engine.ingest(
        [
            event("o-1", "priority.changed", source="console", priority="high").model_copy(
                update={"ticket_id": ticket_id, "external": None}
            ),
            event("o-2", "priority.changed", source="console", priority="urgent").model_copy(
                update={"ticket_id": ticket_id, "external": None}
            ),
        ]
    )
    _drain(box)
    # Zendesk reports the whole ticket on each update: the stale priority plus what is unchanged.
    whole = {"priority": "high", "status": "open", "subject": "export is slow"}
    linked_engine.ingest([event("z-2", "ticket.updated", ticket="1", **whole)])
    assert [r["rule"] for r in _last_decision(db, ticket_id)["reasons"]] == ["sync.echo"]
    assert _ticket(db, ticket_id).priority.value == "urgent"
    # The next whole-ticket update carries a person's change besides Baton's write: news.
    linked_engine.ingest(
        [event("z-3", "ticket.updated", ticket="1", **{**whole, "priority": "urgent"}, tier="L3")]
    )
    decision = _last_decision(db, ticket_id)
    assert "sync.echo" not in [r["rule"] for r in decision["reasons"]]
    assert _ticket(db, ticket_id).tier == "L3"


def test_linked_work_does_not_rewrite_or_solve_the_customers_ticket(
    linked_engine: Engine, db: Database, clock: FakeClock, vendors: dict[str, Vendor]
) -> None:
    (opened,) = linked_engine.ingest([event(1, subject="bug in the export", priority="normal")])
    ticket_id = opened.ticket_id or ""
    _drain(_outbox(linked_engine, db, clock, vendors))
    # Jira announces the issue Baton created, then an engineer resolves it.
    linked_engine.ingest(
        [
            event(
                "j-1",
                "ticket.created",
                ticket="10001",
                source="jira",
                subject="ENG-1 export bug",
                priority="low",
            ),
            event("j-2", "ticket.solved", ticket="10001", source="jira"),
        ]
    )
    ticket = _ticket(db, ticket_id)
    assert ticket.subject == "bug in the export" and ticket.stage.value != "solved"
    assert ticket.priority.value == "low"  # priority is shared with Jira in this policy's sync
    notes = [r["note"] for r in _last_decision(db, ticket_id)["reasons"] if r["rule"] == "linked.jira"]
    assert notes == ["linked work: ticket.solved kept for the policy; not applied: its status"]


def test_a_write_foreseen_at_every_attempt_is_awaited_once(db: Database) -> None:
    from baton.store import echoes as expected

    wrote = {"comment": "c-1"}
    with db.write() as conn:
        for now_ms in (1_000, 2_000, 3_000):  # three attempts of one send
            expected.record(
                conn,
                system="linear",
                external_id="c-1",
                ticket_id="T-1",
                wrote=wrote,
                now_ms=now_ms,
                renew=True,
            )
        expected.record(conn, system="linear", external_id="c-2", ticket_id="T-1", wrote=wrote, now_ms=1_000)
        expected.record(conn, system="linear", external_id="c-2", ticket_id="T-1", wrote=wrote, now_ms=2_000)
    with db.reader.connect() as conn:
        rows = conn.execute(select(echoes.c.external_id, echoes.c.expires_ms).order_by(echoes.c.id)).all()
    assert [r.external_id for r in rows].count("c-1") == 1 and [r.external_id for r in rows].count("c-2") == 2
    assert next(r.expires_ms for r in rows if r.external_id == "c-1") == 3_000 + expected.ECHO_TTL_MS


def test_a_label_claiming_a_ticket_holds_only_while_that_tickets_create_is_in_flight(
    db: Database, clock: FakeClock
) -> None:
    from sqlalchemy import insert, update

    from baton.clock import to_ms
    from baton.store.schema import outbox
    from tests.helpers import outbox_row

    engine = Engine(db=db, policy=load_policy(TEST_POLICY), clock=clock)
    (opened,) = engine.ingest([event(1, subject="bug in the export")])
    ticket_id = opened.ticket_id or ""

    def issue_created(n: int) -> Any:
        claim = {"claims_ticket": ticket_id}  # as the Jira adapter reads the baton-t- label
        (result,) = engine.ingest([event(f"j-{n}", ticket=f"2000{n}", source="jira", data=claim)])
        return result.ticket_id

    assert issue_created(1) != ticket_id  # no create of that ticket's in flight: anyone's label
    with db.write() as conn:
        row = outbox_row(
            key="k-create",
            ticket=ticket_id,
            connector="jira",
            kind="create_issue",
            params={},
            now_ms=to_ms(clock.now()),
        )
        conn.execute(insert(outbox), [{**row, "status": "claimed", "attempts": 1}])
    assert issue_created(2) == ticket_id  # Baton's issue, its webhook ahead of the create's answer
    with db.write() as conn:
        conn.execute(update(outbox).where(outbox.c.idempotency_key == "k-create").values(status="done"))
    assert issue_created(3) != ticket_id  # the create is over: a later label is anyone's
