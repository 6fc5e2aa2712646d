"""Slow vendors, through every connector and the real outbox: an answer later than the read
timeout is a failure to retry (not lost, not dead-lettered on the first try), an answer slow but
in time is a success.

Each vendor's stand-in is given a ``late`` fault on the request that makes the effect: the vendor
acts at once and answers after ``LATE`` seconds, longer than the connectors' ``READ`` timeout. The
outbox records a retryable failure; the next round sends again with the same idempotency key.
Targets that recognise a repeat (a key, a lookup or a dedup id) then show the effect once; Slack
takes no key and shows it twice, and the SMTP relay holds two copies of one message with one
Message-ID (at-least-once; a receiver that deduplicates by Message-ID sees one). A ``slow``
fault shorter than the timeout is delivered in the first round.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from baton.clock import FakeClock, to_ms
from baton.connectors.hubspot import marker as hubspot_marker
from baton.connectors.jira import dedup_label
from baton.connectors.linear import client_id
from baton.connectors.registry import build_connectors
from baton.connectors.zendesk import marker as zendesk_marker
from baton.engine.outbox import Outbox
from baton.settings import load_settings
from baton.store.db import Database
from baton.store.schema import audit_log, outbox, sent_log
from tests.helpers import outbox_row
from tests.standins.hubspot import HubSpotStandIn
from tests.standins.jira import JiraStandIn
from tests.standins.linear import LinearStandIn
from tests.standins.pagerduty import PagerDutyStandIn
from tests.standins.salesforce import SalesforceStandIn
from tests.standins.server import Fault, StandIn
from tests.standins.slack import SlackStandIn
from tests.standins.smtp import SmtpFault, SmtpStandIn
from tests.standins.webhook import WebhookStandIn
from tests.standins.zendesk import ZendeskStandIn

READ = 0.5  # the connectors' read timeout (BATON_HTTP_READ_TIMEOUT)
LATE = 1.2  # an answer this late comes after the connector gave up
SLOW = 0.15  # slow, but well within the timeout
TICKET = "T-5104000000000001"
KEY = "5" * 64
SECRET = "SECRET-standin-0000"
WEBHOOK_SECRET = "whsec_c3RhbmQtaW4gc2lnbmluZyBrZXk6IDMyIGJ5dGVzISE="


@dataclass(frozen=True)
class Case:
    """One vendor: its stand-in, the settings that reach it, an action, the request that makes the
    effect (``path`` and a piece of its ``body``), and how many times the target shows the effect."""

    connector: str
    kind: str
    standin: Callable[[FakeClock], AbstractContextManager[Any]]
    settings: Callable[[Any], dict[str, str]]
    params: Callable[[Any], dict[str, Any]]
    effects: Callable[[Any], int]
    path: str | None = None
    body: bytes | None = None
    keyed: bool = True  # the target recognises a repeat of the same key

    def __str__(self) -> str:
        return self.connector


TEXT = {"subject": "Checkout fails", "text": "Acme cannot pay since 09:00."}


def _zendesk_params(z: ZendeskStandIn) -> dict[str, Any]:
    return {"ticket_id": z.add_ticket("Checkout fails", status="new", priority="normal").id, **TEXT}


def _zendesk_effects(z: ZendeskStandIn) -> int:
    return sum(zendesk_marker(KEY) in c.body for t in z.tickets.values() for c in t.comments)


def _hubspot_params(h: HubSpotStandIn) -> dict[str, Any]:
    return {
        "hubspot_ticket_id": h.add_ticket(subject="Checkout fails"),
        "company_id": h.add_company(),
        **TEXT,
    }


CASES = [
    Case(
        "slack",
        "notify",
        lambda _c: SlackStandIn(SECRET),
        lambda s: {"BATON_SLACK_TOKEN": SECRET, "BATON_SLACK_API_URL": f"{s.url}/api/"},
        lambda s: {"to": "ana", "channel": next(iter(s.channels)), **TEXT},
        lambda s: sum(m["metadata"]["event_payload"]["key"] == KEY for m in s.messages),
        path="/api/chat.postMessage",
        keyed=False,  # Slack takes no idempotency key: a lost answer means a second message
    ),
    Case(
        "jira",
        "create_issue",
        lambda _c: JiraStandIn("baton@acme.example", SECRET),
        lambda s: {
            "BATON_JIRA_URL": s.url,
            "BATON_JIRA_EMAIL": "baton@acme.example",
            "BATON_JIRA_API_TOKEN": SECRET,
            "BATON_JIRA_PROJECT": "PROJ",
        },
        lambda _s: {"summary": "Checkout fails", "text": TEXT["text"], "priority": "high"},
        lambda s: sum(dedup_label(KEY) in i.labels for i in s.issues),
        path="/rest/api/3/issue",
    ),
    Case(
        "linear",
        "create_issue",
        lambda _c: LinearStandIn(SECRET),
        lambda s: {
            "BATON_LINEAR_API_KEY": SECRET,
            "BATON_LINEAR_API_URL": f"{s.url}/graphql",
            "BATON_LINEAR_TEAM_ID": s.team.id,
        },
        lambda _s: {"title": "Checkout fails", "text": TEXT["text"], "priority": "high"},
        lambda s: int(client_id("issue", KEY, SECRET) in s.issues) * len(s.issues),
        path="/graphql",
        body=b"issueCreate",
    ),
    Case(
        "zendesk",
        "note",
        lambda _c: ZendeskStandIn("baton@acme.example", SECRET),
        lambda s: {
            "BATON_ZENDESK_URL": s.url,
            "BATON_ZENDESK_EMAIL": "baton@acme.example",
            "BATON_ZENDESK_API_TOKEN": SECRET,
        },
        _zendesk_params,
        _zendesk_effects,
        path="/api/v2/tickets/10001",
    ),
    Case(
        "pagerduty",
        "page",
        lambda _c: PagerDutyStandIn([SECRET.ljust(32, "0")]),
        lambda s: {
            "BATON_PAGERDUTY_ROUTING_KEY": SECRET.ljust(32, "0"),
            "BATON_PAGERDUTY_EVENTS_URL": f"{s.url}/v2/enqueue",
        },
        lambda _s: {"severity": "urgent", **TEXT},
        lambda s: len(s.alerts),  # a repeated trigger joins the open alert (its dedup key)
        path="/v2/enqueue",
    ),
    Case(
        "salesforce",
        "activity",
        lambda _c: SalesforceStandIn(SECRET),
        lambda s: {"BATON_SALESFORCE_URL": s.url, "BATON_SALESFORCE_ACCESS_TOKEN": SECRET},
        lambda s: {"case_id": s.add_case(), **TEXT},
        lambda s: sum((t.key or "").lower() == KEY for t in s.tasks),
        path=f"/Baton_Key__c/{KEY}",
    ),
    Case(
        "hubspot",
        "activity",
        lambda _c: HubSpotStandIn(SECRET),
        lambda s: {"BATON_HUBSPOT_ACCESS_TOKEN": SECRET, "BATON_HUBSPOT_API_URL": s.url},
        _hubspot_params,
        lambda s: sum(hubspot_marker(KEY) in n.body for n in s.notes.values()),
        path="/crm/v3/objects/notes",
    ),
    Case(
        "webhook",
        "notify",
        lambda c: WebhookStandIn(WEBHOOK_SECRET, now=lambda: c.now().timestamp()),
        lambda s: {"BATON_WEBHOOK_URL": f"{s.url}/hooks/baton", "BATON_WEBHOOK_SECRET": WEBHOOK_SECRET},
        lambda _s: {"to": "ana", **TEXT},
        lambda s: len(s.effects),  # one per webhook-id; a repeat is answered as a duplicate
        path="/hooks/baton",
    ),
    Case(
        "email",
        "notify",
        lambda _c: SmtpStandIn(),
        lambda s: {
            "BATON_EMAIL_SMTP_HOST": "127.0.0.1",
            "BATON_EMAIL_SMTP_PORT": str(s.port),
            "BATON_EMAIL_SMTP_SECURITY": "none",
            "BATON_EMAIL_FROM": "Acme Support <support@acme.example>",
        },
        lambda _s: {"to": "ana", "address": "ana@acme.example", **TEXT},
        lambda s: len(s.mails),
        keyed=False,  # SMTP has no idempotency: the relay keeps both copies (one Message-ID)
    ),
]


def late(case: Case) -> Fault | SmtpFault:
    if case.connector == "email":  # the relay queues the message, its "250" comes too late
        return SmtpFault("DATA", hang=LATE, keep=True)
    fault = Fault.late(LATE, path=case.path)
    return fault.matching(case.body) if case.body else fault


def slow(case: Case) -> Fault | SmtpFault:
    if case.connector == "email":
        return SmtpFault("DATA", hang=SLOW)
    fault = Fault.slow(SLOW, path=case.path)
    return fault.matching(case.body) if case.body else fault


@contextmanager
def delivering(case: Case, target: Any, db: Database, clock: FakeClock) -> Iterator[Outbox]:
    """The action queued, and an outbox with the case's connector built from settings."""
    env = {
        "BATON_CONNECTORS": case.connector,
        "BATON_OUTBOUND_ALLOW": "127.0.0.1/32",
        "BATON_HTTP_CONNECT_TIMEOUT": "1",
        "BATON_HTTP_READ_TIMEOUT": str(READ),
        "BATON_HTTP_TOTAL_TIMEOUT": "3",
        **case.settings(target),
    }
    connectors = build_connectors(load_settings(env), clock=clock)
    row = outbox_row(
        key=KEY,
        ticket=TICKET,
        connector=case.connector,
        kind=case.kind,
        params={"ticket": TICKET, **case.params(target)},
        now_ms=to_ms(clock.now()),
    )
    with db.write() as conn:
        conn.execute(insert(outbox).values(row))
    try:
        # A seeded backoff: the first retry waits a known ~0.3 s of fake time, never an instant.
        yield Outbox(
            db=db, connectors=connectors, clock=clock, worker="w1", max_attempts=3, rng=random.Random(7)
        )
    finally:
        for connector in connectors.values():
            connector.close()  # type: ignore[attr-defined]  # every vendor connector has one


def row(db: Database) -> Any:
    with db.reader.connect() as conn:
        return conn.execute(select(outbox.c.status, outbox.c.failures, outbox.c.last_error)).one()


def audit_kinds(db: Database) -> list[str]:
    with db.reader.connect() as conn:
        return list(conn.execute(select(audit_log.c.kind).order_by(audit_log.c.seq)).scalars())


@pytest.mark.parametrize("case", CASES, ids=str)
def test_an_answer_later_than_the_timeout_is_retried_and_the_effect_lands(
    case: Case, sqlite_db: Database, clock: FakeClock
) -> None:
    db = sqlite_db
    with case.standin(clock) as target, delivering(case, target, db, clock) as box:
        target.inject(late(case))
        first = box.deliver()
        assert (first.claimed, first.retried, first.dead, first.delivered) == (1, 1, 0, 0)
        status, failures, error = row(db)
        assert (status, failures) == ("pending", 1), error  # not lost, not dead-lettered
        assert "timed out" in error
        assert case.effects(target) == 1  # the vendor acted although Baton never heard so
        assert box.deliver().claimed == 0  # the retry waits for its backoff
        clock.advance(timedelta(minutes=5))
        second = box.deliver()
        assert (second.delivered, second.dead) == (1, 0), row(db)
        assert row(db)[0] == "done"
        assert box.deliver().claimed == 0
        shown = case.effects(target)
    assert shown == (1 if case.keyed else 2)
    with db.reader.connect() as conn:
        assert len(conn.execute(select(sent_log)).all()) == 1
    kinds = audit_kinds(db)
    assert (kinds.count("action.failed"), kinds.count("action.delivered"), kinds.count("action.dead")) == (
        1,
        1,
        0,
    )


@pytest.mark.parametrize("case", CASES, ids=str)
def test_an_answer_slow_but_in_time_is_delivered_at_once(
    case: Case, sqlite_db: Database, clock: FakeClock
) -> None:
    db = sqlite_db
    with case.standin(clock) as target, delivering(case, target, db, clock) as box:
        target.inject(slow(case))
        stats = box.deliver()
        assert (stats.delivered, stats.retried, stats.dead) == (1, 0, 0), row(db)
        assert case.effects(target) == 1
        if isinstance(target, StandIn):
            assert "slow" in [r.fault for r in target.requests]  # the fault was really applied
        else:
            assert target.handler.faults == []
    assert row(db)[0] == "done"
    kinds = audit_kinds(db)
    assert (kinds.count("action.failed"), kinds.count("action.delivered")) == (0, 1)


def test_the_failure_on_record_says_the_target_timed_out(sqlite_db: Database, clock: FakeClock) -> None:
    db = sqlite_db
    (case,) = [c for c in CASES if c.connector == "webhook"]
    with case.standin(clock) as target, delivering(case, target, db, clock) as box:
        target.inject(late(case))
        box.deliver()
    with db.reader.connect() as conn:
        (body,) = conn.execute(select(audit_log.c.body).where(audit_log.c.kind == "action.failed")).scalars()
    failed = json.loads(body)
    assert "timed out" in failed["error"] and failed["attempt"] == 1 and failed["retry_in_s"] <= 1
