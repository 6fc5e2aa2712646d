"""The e-mail connector through the real outbox against an SMTP relay that resets connections
and answers slowly.

SMTP has no idempotency key, and a client cannot tell a relay that died before taking the
message from one that took it and died before its "250" (RFC 5321 §4.1.1.4, and RFC 1047 on the
duplicate messages this causes). So delivery is at-least-once: every failure is retried, and the
retry is the same message (the same Message-ID, In-Reply-To, References and body; only its Date is
new), so a receiver that deduplicates by Message-ID shows one and every copy threads the same way.
When the relay had taken the first copy it holds two. ``docs/connectors/email.md`` says so.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from baton.clock import FakeClock, to_ms
from baton.connectors.email import EmailConfig, EmailConnector
from baton.engine.outbox import Outbox
from baton.store.db import Database
from baton.store.schema import audit_log, outbox, sent_log
from tests.helpers import outbox_row
from tests.standins.smtp import SmtpFault, SmtpStandIn

TICKET = "T-0123456789abcdef"
KEY = "e" * 64
READ = 0.5
PARAMS = {
    "ticket": TICKET,
    "to": "customer",
    "to_address": "bob@customer.example",
    "subject": "Export fails",
    "text": "We are on it; the fix ships tonight.",
    "in_reply_to": "CAF=2@mail.customer.example",
    "references": ["CAF=1@mail.customer.example", "CAF=2@mail.customer.example"],
}

# (fault, delivered in the first round, copies the relay holds in the end, the first error says)
FAULTS = {
    "reset at MAIL FROM": (SmtpFault("MAIL", reset=True), False, 1, "connection"),
    "reset at RCPT TO": (SmtpFault("RCPT", reset=True), False, 1, "connection"),
    "reset at DATA, message not taken": (SmtpFault("DATA", reset=True), False, 1, "connection"),
    "reset after DATA, message taken": (SmtpFault("DATA", reset=True, keep=True), False, 2, "connection"),
    "250 later than the timeout": (SmtpFault("DATA", hang=READ * 2.4, keep=True), False, 2, "timed out"),
    "250 slow but in time": (SmtpFault("DATA", hang=READ / 3, keep=True), True, 1, ""),
    "MAIL FROM slow but in time": (SmtpFault("MAIL", hang=READ / 3), True, 1, ""),
}


def queue_reply(db: Database, clock: FakeClock) -> None:
    row = outbox_row(
        key=KEY, ticket=TICKET, connector="email", kind="reply", params=PARAMS, now_ms=to_ms(clock.now())
    )
    with db.write() as conn:
        conn.execute(insert(outbox).values(row))


@pytest.mark.parametrize(("fault", "at_once", "copies", "says"), FAULTS.values(), ids=FAULTS.keys())
def test_resets_and_slow_replies_are_retried_with_the_same_message(
    sqlite_db: Database, clock: FakeClock, fault: SmtpFault, at_once: bool, copies: int, says: str
) -> None:
    db = sqlite_db
    queue_reply(db, clock)
    with SmtpStandIn() as relay:
        config = EmailConfig(
            host="127.0.0.1",
            port=relay.port,
            security="none",
            from_address="Acme Support <support@acme.example>",
            connect_timeout=1.0,
            read_timeout=READ,
            total_timeout=3.0,
        )
        connector = EmailConnector(config, clock=clock)
        box = Outbox(db=db, connectors={"email": connector}, clock=clock, worker="w1", max_attempts=3)
        relay.inject(fault)
        first = box.deliver()
        assert relay.handler.faults == []  # the fault was applied
        if at_once:
            assert (first.delivered, first.retried) == (1, 0)
        else:
            assert (first.delivered, first.retried, first.dead) == (0, 1, 0)
            with db.reader.connect() as conn:
                status, error = conn.execute(select(outbox.c.status, outbox.c.last_error)).one()
            assert status == "pending" and says in error, error
            clock.advance(timedelta(minutes=5))
            assert box.deliver().delivered == 1
        assert box.deliver().claimed == 0
        mails = list(relay.mails)
    assert len(mails) == copies
    with db.reader.connect() as conn:
        assert conn.execute(select(outbox.c.status)).scalar_one() == "done"
        assert len(conn.execute(select(sent_log)).all()) == 1
        (delivered,) = conn.execute(
            select(audit_log.c.body).where(audit_log.c.kind == "action.delivered")
        ).scalars()
    message_id = json.loads(delivered)["external_id"]
    # A retry is the same message; only its Date says when this copy left.
    assert len({re.sub(rb"\r\nDate: [^\r]*", b"", m.data) for m in mails}) == 1
    for mail in mails:
        message = mail.message()
        assert message["Message-ID"].strip() == f"<{message_id}>"  # the id on record, which answers carry
        assert message["In-Reply-To"] == "<CAF=2@mail.customer.example>"
        assert message["References"].split() == [
            "<CAF=1@mail.customer.example>",
            "<CAF=2@mail.customer.example>",
        ]
        assert mail.rcpt_tos == ("bob@customer.example",)
