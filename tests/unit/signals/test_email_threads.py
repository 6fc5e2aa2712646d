"""Threading e-mail into tickets through the real engine and store (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from baton.clock import FakeClock
from baton.engine.runtime import Engine
from baton.model import Account, Event, Ticket
from baton.signals.email import AttachmentStore, MailIntake, Outcome, parse_message, subject_token
from baton.store import read, repo
from baton.store.schema import events

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "email"


def mail(
    mid: str, *, subject: str = "Export fails", sender: str = "alice@customer.example", **extra: str
) -> bytes:
    headers = {"From": sender, "To": "support@acme.example", "Subject": subject, "Message-ID": f"<{mid}>"}
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    head = "\r\n".join(f"{k}: {v}" for k, v in headers.items())
    return (head + "\r\n\r\nBody of " + mid + "\r\n").encode()


@pytest.fixture
def intake(engine: Engine, tmp_path: Path) -> MailIntake:
    return MailIntake(engine=engine, store=AttachmentStore(tmp_path / "attachments"))


def receive(intake: MailIntake, clock: FakeClock, raw: bytes) -> Outcome:
    return intake.receive(raw, received_at=clock.now())


def ticket(engine: Engine, ticket_id: str | None) -> Ticket:
    assert ticket_id is not None
    with engine.db.reader.connect() as conn:
        found = read.get_ticket(conn, ticket_id)
    assert found is not None
    return found


def stored(engine: Engine, event_id: str) -> dict[str, Any]:
    with engine.db.reader.connect() as conn:
        row = conn.execute(
            select(events).where(events.c.source == "email", events.c.event_id == event_id)
        ).one()
    return {"ticket_id": row.ticket_id, "type": row.type, "body": row.body}


def test_a_new_thread_opens_a_ticket(engine: Engine, intake: MailIntake, clock: FakeClock) -> None:
    outcome = receive(intake, clock, (FIXTURES / "new_ticket.eml").read_bytes())
    assert outcome.status == "accepted" and outcome.ticket_id is not None
    t = ticket(engine, outcome.ticket_id)
    assert t.subject == "Export to CSV fails with error 500"
    assert t.channel == "email" and t.requester == "alice@customer.example"
    assert [a.name for a in t.artifacts] == ["export-log.pdf"]
    row = stored(engine, "CAF=new-1@mail.customer.example")
    assert row["type"] == "ticket.created" and row["body"]["data"]["threading"] == "new"


def test_a_reply_by_in_reply_to_joins_the_ticket(
    engine: Engine, intake: MailIntake, clock: FakeClock
) -> None:
    first = receive(intake, clock, (FIXTURES / "new_ticket.eml").read_bytes())
    reply = receive(intake, clock, (FIXTURES / "reply.eml").read_bytes())
    assert reply.status == "accepted" and reply.ticket_id == first.ticket_id
    row = stored(engine, "CAF=reply-2@mail.customer.example")
    assert row["type"] == "customer.replied" and row["body"]["data"]["threading"] == "references"
    assert row["body"]["fields"]["body"] == (
        "It still fails, and now we need to cancel the renewal if it is not fixed."
    )  # without the quoted history
    t = ticket(engine, first.ticket_id)
    assert t.customer_replies == 1
    assert t.subject == "Export to CSV fails with error 500"  # a reply does not rename the ticket


def test_a_reply_by_references_only_joins_the_ticket(intake: MailIntake, clock: FakeClock) -> None:
    first = receive(intake, clock, mail("root@x"))
    reply = receive(intake, clock, mail("r2@x", subject="Re: Export fails", References="<other@y> <root@x>"))
    assert reply.ticket_id == first.ticket_id


def test_a_reply_to_a_reply_joins_the_ticket(intake: MailIntake, clock: FakeClock) -> None:
    first = receive(intake, clock, mail("root@x"))
    receive(intake, clock, mail("r2@x", In_Reply_To="<root@x>"))
    third = receive(intake, clock, mail("r3@x", In_Reply_To="<r2@x>"))
    assert third.ticket_id == first.ticket_id


def test_a_reply_by_subject_token_joins_the_ticket(
    engine: Engine, intake: MailIntake, clock: FakeClock
) -> None:
    first = receive(intake, clock, mail("root@x"))
    assert first.ticket_id is not None
    reply = receive(
        intake, clock, mail("new-client@x", subject=f"Re: Export fails {subject_token(first.ticket_id)}")
    )
    assert reply.ticket_id == first.ticket_id
    assert stored(engine, "new-client@x")["body"]["data"]["threading"] == "subject-token"


def test_a_reply_to_baton_mail_joins_the_ticket(engine: Engine, intake: MailIntake, clock: FakeClock) -> None:
    first = receive(intake, clock, mail("root@x"))
    reply = receive(intake, clock, mail("r@x", In_Reply_To=f"<baton.{first.ticket_id}.n1@acme.example>"))
    assert reply.ticket_id == first.ticket_id
    assert stored(engine, "r@x")["body"]["data"]["threading"] == "baton-message-id"


def test_headers_win_over_the_subject_token(intake: MailIntake, clock: FakeClock) -> None:
    a = receive(intake, clock, mail("a@x"))
    b = receive(intake, clock, mail("b@x", subject="Other"))
    assert b.ticket_id is not None
    reply = receive(
        intake, clock, mail("r@x", subject=f"Re: {subject_token(b.ticket_id)}", In_Reply_To="<a@x>")
    )
    assert reply.ticket_id == a.ticket_id


def test_unknown_references_open_a_new_ticket(engine: Engine, intake: MailIntake, clock: FakeClock) -> None:
    outcome = receive(intake, clock, (FIXTURES / "forwarded.eml").read_bytes())
    assert outcome.status == "accepted"
    row = stored(engine, "fwd-1@customer.example")
    assert row["type"] == "ticket.created" and row["body"]["data"]["threading"] == "new"
    assert ticket(engine, outcome.ticket_id).subject == "Fwd: Original problem report"
    # ... and its references now lead to that ticket
    later = receive(intake, clock, mail("later@x", In_Reply_To="<inner-1@partner.example>"))
    assert later.ticket_id == outcome.ticket_id


def test_an_unknown_ticket_token_opens_a_new_flagged_ticket(
    engine: Engine, intake: MailIntake, clock: FakeClock
) -> None:
    outcome = receive(intake, clock, mail("t@x", subject="Re: [T-00000000deadbeef]"))
    assert outcome.status == "accepted" and outcome.ticket_id != "T-00000000deadbeef"
    data = stored(engine, "t@x")["body"]["data"]
    assert data["threading"] == "new" and "unknown_ticket" in data["flags"]
    assert data["unknown_ticket"] == "T-00000000deadbeef"


def test_parent_and_reply_in_one_batch_share_a_ticket(
    engine: Engine, intake: MailIntake, clock: FakeClock
) -> None:
    parsed = [
        parse_message(raw, received_at=clock.now())
        for raw in (mail("p@x"), mail("c@x", In_Reply_To="<p@x>"), mail("g@x", References="<p@x> <c@x>"))
    ]
    assert all(isinstance(e, Event) for e in parsed)
    outcomes = intake.commit([e for e in parsed if isinstance(e, Event)])
    assert len({o.ticket_id for o in outcomes}) == 1
    assert [stored(engine, mid)["type"] for mid in ("p@x", "c@x", "g@x")] == [
        "ticket.created",
        "customer.replied",
        "customer.replied",
    ]


def test_a_redelivery_is_a_duplicate(intake: MailIntake, clock: FakeClock) -> None:
    first = receive(intake, clock, mail("once@x"))
    again = receive(intake, clock, mail("once@x"))
    assert (first.status, again.status) == ("accepted", "duplicate")
    assert again.ticket_id == first.ticket_id
    assert intake.counts["accepted"] == 1 and intake.counts["duplicate"] == 1


def test_the_sender_domain_finds_the_account(engine: Engine, intake: MailIntake, clock: FakeClock) -> None:
    with engine.db.write() as conn:
        repo.upsert_accounts(conn, [Account(id="acc-cust", name="Customer", domains=("customer.example",))])
    outcome = receive(intake, clock, mail("acct@x", sender="Bob <Bob@Customer.Example>"))
    assert ticket(engine, outcome.ticket_id).account_id == "acc-cust"


def test_ignored_mail_touches_nothing_and_is_counted(
    engine: Engine, intake: MailIntake, clock: FakeClock
) -> None:
    first = receive(intake, clock, mail("root@x"))
    ooo = receive(intake, clock, mail("ooo@x", In_Reply_To="<root@x>", Auto_Submitted="auto-replied"))
    bounce = receive(intake, clock, (FIXTURES / "bounce.eml").read_bytes())
    assert (ooo.status, ooo.reason) == ("ignored", "auto-submitted")
    assert (bounce.status, bounce.reason) == ("ignored", "bounce")
    assert ticket(engine, first.ticket_id).customer_replies == 0
    with engine.db.reader.connect() as conn:
        assert conn.execute(select(events.c.event_id).where(events.c.source == "email")).scalars().all() == [
            "root@x"
        ]
    counts = intake.counts
    assert counts["ignored"] == 2 and counts["ignored.auto-submitted"] == 1 and counts["ignored.bounce"] == 1


def test_a_refused_message_is_counted_with_its_reason(intake: MailIntake, clock: FakeClock) -> None:
    outcome = receive(intake, clock, b"no headers at all")
    assert outcome.status == "rejected" and outcome.reason and "no header fields" in outcome.reason
    assert intake.counts["rejected"] == 1
