"""Acceptance: crash safety of delivery through the real connectors (issue 5).

"Crash test: 2,000 actions across connectors while the worker is killed with SIGKILL 20 times:
every action is delivered; targets that honour an idempotency key see each effect once; no Jira
or Linear issue is created twice; every delivered effect has its audit entry."

The real ``baton worker`` runs on SQLite in a temporary workspace with nine connectors (Jira,
Linear, Zendesk, Salesforce, HubSpot, PagerDuty, webhook, Slack, e-mail), each pointed at its
stand-in on loopback. The stand-ins are threads of this test process, so they outlive every kill
and keep the vendors' state. The Baton tickets exist (ingested first, under a routing that
notifies nobody), and the 2,000 actions are written straight into the outbox: ingest has its own
crash test, this one is about delivery. Every ticket has one or two actions, for one vendor, and
a ticket's second action (a Jira comment on the issue its first one creates, say) can only go once
the first is done. A seeded killer SIGKILLs the worker's process group 20 times, each time
another ~90 actions are done plus a random few milliseconds (so kills land mid-send as well as
between sends), and starts it again at once. A killed worker's claims come back when its lease
(5 s) runs out.

What the targets must show afterwards, per the outbox's promise (``engine/outbox.py``): the worker
sends one action at a time, so a kill leaves at most one send unrecorded, and the next worker
repeats it with the same key.

* Targets with a key or a lookup apply that repeat once: one Jira issue per create (its
  ``baton-<key>`` label) and one comment per comment action (its ``baton`` property); one Linear
  issue and comment per action (their ids derive from the key); one Zendesk comment per note and
  per update (its note, with the ``baton:<key[:8]>`` marker); one Salesforce Task per activity,
  and per sync that logs one (the ``Baton_Key__c`` external id); one HubSpot note per activity
  and per sync that logs one (its marker token: the stand-in's search is consistent here,
  ``index_lag`` off, so a retry's search is exact); one PagerDuty alert per ticket (its dedup
  key); one webhook effect per ``webhook-id``. Jira's search is consistent here too (the
  stand-in's ``lagging`` off).
* Slack takes no key and e-mail is only deduplicated by receivers that read its Message-ID (fixed
  per action): every message arrives, and at most one extra per kill.
* Across all targets the repeats the targets absorbed or showed are at most the number of kills.
* The outbox is all ``done``, the sent-log has one row per action, the audit log exactly one
  ``action.delivered`` entry per key (and no ``action.dead``), and ``baton audit verify`` passes.

Observed on 2 cores (the runs while writing this test): 42-66 s a run, 92 s with two busy loops
hogging both cores. A run has 10 to 16 repeated sends for its 20 kills: a kill lands after the
vendor acted and before the outbox recorded it more than half the time, since the worker spends
most of its time waiting on vendors. Every repeat was absorbed (a Jira issue or comment, Zendesk
note, HubSpot note or Linear issue or comment found by its key, a Salesforce Task upserted again,
a PagerDuty trigger joining the open alert, a webhook answered as a duplicate) or, for Slack and
e-mail, showed as one extra message (0 to 2 each a run). Once a kill fell between a webhook's
headers and its body: the receiver read a short body, failed its signature, answered nobody, and
applied the resend once. No duplicate effect at a target that honours a key, no action dead, no failed
attempt. A kill leaves the claims of its whole batch to expire, so about half the actions end
with 2 to 5 claims (``attempts``, which connectors see as ``attempt`` and which makes Zendesk and
HubSpot look for an earlier send) although only 10 to 16 were sent twice; none of that counts
towards the dead-letter limit, which counts recorded failures (``failures``).
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from baton.clock import SystemClock, to_ms
from baton.connectors.hubspot import marker as hubspot_marker
from baton.connectors.jira import dedup_label, ticket_label
from baton.connectors.linear import client_id
from baton.connectors.pagerduty import dedup_key
from baton.connectors.zendesk import marker as zendesk_marker
from baton.store.db import open_database
from baton.store.schema import outbox
from tests.conftest import TEST_POLICY
from tests.e2e._procs import Proc, run_baton, running, wait_until
from tests.standins.hubspot import HubSpotStandIn
from tests.standins.jira import JiraStandIn
from tests.standins.linear import LinearStandIn
from tests.standins.pagerduty import PagerDutyStandIn
from tests.standins.salesforce import SalesforceStandIn
from tests.standins.server import Received
from tests.standins.slack import SlackStandIn
from tests.standins.smtp import SmtpStandIn
from tests.standins.webhook import WebhookStandIn
from tests.standins.zendesk import ZendeskStandIn

pytestmark = pytest.mark.slow

SEED = 20_260_305
ACTIONS = 2_000
KILLS = 20
KILL_EVERY = 90  # actions done between kills, plus up to half as many again (seeded)
GROUP = 10  # tickets whose actions are shuffled together in the outbox
LEASE_SECONDS = 5
DRAIN_TIMEOUT = 150.0

CONNECTORS = ("jira", "linear", "zendesk", "salesforce", "hubspot", "pagerduty", "webhook", "slack", "email")
JIRA_EMAIL, JIRA_TOKEN = "baton@acme.example", "ATATT3xFfGF0-crash-SECRET-token"
LINEAR_KEY = "lin_api_Crash00000000000000000000000000000SECRET"
ZENDESK_EMAIL, ZENDESK_TOKEN = "baton@acme.example", "zdtok-crash-000000000000000SECRET"
SALESFORCE_TOKEN = "00DCRASH!AQ0AQsalesforce.access.token.SECRET"
HUBSPOT_TOKEN = "pat-na1-crash-0000-0000-SECRET"
PAGERDUTY_KEY = "R0UT1NGKEY0000000000000CRASH0001"
WEBHOOK_SECRET = "whsec_c3RhbmQtaW4gc2lnbmluZyBrZXk6IDMyIGJ5dGVzISE="
SLACK_TOKEN = "xoxb-000000000-crash-token-SECRET"
MAIL_FROM = "Acme Support <support@acme.example>"


@dataclass(frozen=True)
class Planned:
    """One outbox action."""

    key: str
    ticket: str
    connector: str
    kind: str
    params: dict[str, Any]


@dataclass
class Vendors:
    """Every stand-in, and the records the worker's actions are checked against."""

    jira: JiraStandIn
    linear: LinearStandIn
    zendesk: ZendeskStandIn
    salesforce: SalesforceStandIn
    hubspot: HubSpotStandIn
    pagerduty: PagerDutyStandIn
    webhook: WebhookStandIn
    slack: SlackStandIn
    smtp: SmtpStandIn
    general: str = ""  # the Slack channel messages go to
    zendesk_ticket: dict[str, int] = field(default_factory=dict)  # Baton ticket -> Zendesk ticket

    def settings(self) -> dict[str, str]:
        """The worker's BATON_* settings for these stand-ins."""
        return {
            "BATON_JIRA_URL": self.jira.url,
            "BATON_JIRA_EMAIL": JIRA_EMAIL,
            "BATON_JIRA_API_TOKEN": JIRA_TOKEN,
            "BATON_JIRA_PROJECT": "PROJ",
            "BATON_LINEAR_API_KEY": LINEAR_KEY,
            "BATON_LINEAR_API_URL": f"{self.linear.url}/graphql",
            "BATON_LINEAR_TEAM_ID": self.linear.team.id,
            "BATON_ZENDESK_URL": self.zendesk.url,
            "BATON_ZENDESK_EMAIL": ZENDESK_EMAIL,
            "BATON_ZENDESK_API_TOKEN": ZENDESK_TOKEN,
            "BATON_SALESFORCE_URL": self.salesforce.url,
            "BATON_SALESFORCE_ACCESS_TOKEN": SALESFORCE_TOKEN,
            "BATON_HUBSPOT_ACCESS_TOKEN": HUBSPOT_TOKEN,
            "BATON_HUBSPOT_API_URL": self.hubspot.url,
            "BATON_PAGERDUTY_ROUTING_KEY": PAGERDUTY_KEY,
            "BATON_PAGERDUTY_EVENTS_URL": f"{self.pagerduty.url}/v2/enqueue",
            "BATON_WEBHOOK_URL": f"{self.webhook.url}/hooks/baton",
            "BATON_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "BATON_SLACK_TOKEN": SLACK_TOKEN,
            "BATON_SLACK_API_URL": f"{self.slack.url}/api/",
            "BATON_EMAIL_SMTP_HOST": "127.0.0.1",
            "BATON_EMAIL_SMTP_PORT": str(self.smtp.port),
            "BATON_EMAIL_SMTP_SECURITY": "none",
            "BATON_EMAIL_FROM": MAIL_FROM,
        }


@contextmanager
def vendors() -> Iterator[Vendors]:
    with ExitStack() as stack:
        found = Vendors(
            jira=stack.enter_context(JiraStandIn(JIRA_EMAIL, JIRA_TOKEN)),
            linear=stack.enter_context(LinearStandIn(LINEAR_KEY)),
            zendesk=stack.enter_context(ZendeskStandIn(ZENDESK_EMAIL, ZENDESK_TOKEN)),
            salesforce=stack.enter_context(SalesforceStandIn(SALESFORCE_TOKEN)),
            # HubSpot's documented limits (190 calls per 10 s, 5 searches a second) would make this
            # a test of throttling, whose 429s also count towards the circuit breaker; that has
            # tests of its own (tests/integration/connectors/test_hubspot.py).
            hubspot=stack.enter_context(
                HubSpotStandIn(HUBSPOT_TOKEN, window_limit=100_000, search_per_second=1_000)
            ),
            pagerduty=stack.enter_context(PagerDutyStandIn([PAGERDUTY_KEY])),
            webhook=stack.enter_context(WebhookStandIn(WEBHOOK_SECRET)),
            slack=stack.enter_context(SlackStandIn(SLACK_TOKEN)),
            smtp=stack.enter_context(SmtpStandIn()),
        )
        found.general = next(iter(found.slack.channels))
        yield found


# -- the actions ----------------------------------------------------------------------------------


def _key(n: int) -> str:
    return hashlib.sha256(f"crash-connectors\0{n}".encode()).hexdigest()


def _recipes(v: Vendors, ticket: str, t: int) -> list[tuple[str, str, dict[str, Any]]]:
    """Each vendor's actions for one ticket, in order, as (connector, kind, params); the ticket's
    records at the vendor are made here (the Zendesk ticket, the Salesforce case...)."""
    text = {"subject": f"Checkout fails #{t}", "text": f"Acme cannot pay since 09:00 (ticket {ticket})."}
    vendor = CONNECTORS[t % len(CONNECTORS)]
    if vendor == "jira":
        create = {"summary": text["subject"], "text": text["text"], "priority": "high", "labels": ["crash"]}
        return [("jira", "create_issue", create), ("jira", "comment", {**text, "subject": "Escalated"})]
    if vendor == "linear":
        create = {"title": text["subject"], "text": text["text"], "priority": "high"}
        return [("linear", "create_issue", create), ("linear", "comment", {"text": "Escalated to L2."})]
    if vendor == "zendesk":
        zid = v.zendesk.add_ticket(text["subject"], status="new", priority="normal").id
        v.zendesk_ticket[ticket] = zid
        update = {"ticket_id": zid, "priority": "high", "status": "escalated", "tags": ["baton_escalated"]}
        return [
            ("zendesk", "note", {"ticket_id": zid, **text}),
            ("zendesk", "update", {**update, "note": "Escalated to L2 by Baton."}),
        ]
    if vendor == "salesforce":
        case = v.salesforce.add_case()
        account = v.salesforce.add_account() if t % 2 else None
        changes = {"status": "escalated", "priority": "high", "tier": "L2"}
        activity = {"case_id": case, **text} | ({"account_id": account} if account else {})
        return [
            ("salesforce", "sync", {"case_id": case, "changes": changes, "note": "Baton: escalated to L2"}),
            ("salesforce", "activity", activity),
        ]
    if vendor == "hubspot":
        hid, company = v.hubspot.add_ticket(subject=text["subject"]), v.hubspot.add_company()
        changes = {"status": "escalated", "priority": "high", "tier": "L2"}
        return [
            ("hubspot", "sync", {"hubspot_ticket_id": hid, "changes": changes}),
            ("hubspot", "activity", {"hubspot_ticket_id": hid, "company_id": company, **text}),
        ]
    if vendor == "pagerduty":
        return [
            ("pagerduty", "page", {"summary": text["subject"], "severity": "urgent", "text": text["text"]})
        ]
    if vendor == "webhook":
        return [("webhook", "notify", {"to": "ana", **text})]
    if vendor == "slack":
        return [("slack", "notify", {"to": "ana", "channel": v.general, **text})]
    return [("email", "notify", {"to": "ana", "address": "ana@acme.example", **text})]


def plan(v: Vendors) -> list[list[Planned]]:
    """Exactly ``ACTIONS`` actions, per ticket in order, the vendors taking turns."""
    tickets: list[list[Planned]] = []
    n = 0
    while n < ACTIONS:
        t = len(tickets)
        ticket = "T-" + hashlib.sha256(f"crash-ticket\0{t}".encode()).hexdigest()[:16]  # canonical
        steps = _recipes(v, ticket, t)[: ACTIONS - n]
        tickets.append([Planned(_key(n + i), ticket, c, k, p) for i, (c, k, p) in enumerate(steps)])
        n += len(steps)
    return tickets


def outbox_rows(tickets: list[list[Planned]], now_ms: int) -> list[dict[str, Any]]:
    """The rows in id order: tickets in groups of ``GROUP`` whose actions are shuffled together,
    each ticket's own staying in order, so one ticket's second action lies a few ids after its
    first and the outbox must hold it back."""
    rng = random.Random(SEED)
    order: list[Planned] = []
    for first in range(0, len(tickets), GROUP):
        group = tickets[first : first + GROUP]
        turns = [i for i, actions in enumerate(group) for _ in actions]
        rng.shuffle(turns)
        step: Counter[int] = Counter()
        for i in turns:
            order.append(group[i][step[i]])
            step[i] += 1
    return [
        {
            "id": position + 1,
            "idempotency_key": a.key,
            "ticket_id": a.ticket,
            "decision_id": f"D-{a.ticket}-{a.kind}",
            "action_name": f"escalate.{a.connector}.{a.kind}",
            "connector": a.connector,
            "kind": a.kind,
            "params": {"ticket": a.ticket, **a.params},
            "status": "pending",
            "attempts": 0,
            "available_ms": now_ms,
            "created_ms": now_ms,
        }
        for position, a in enumerate(order)
    ]


# -- the workspace and the killer -----------------------------------------------------------------


def _query(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def make_workspace(root: Path, tickets: list[list[Planned]]) -> Path:
    """``baton init`` with the test policy, routed without a notification (so the outbox holds
    only this test's actions), and the Baton tickets the actions belong to."""
    ws = root / "ws"
    run_baton("init", "--workspace", str(ws), "--policy", str(TEST_POLICY))
    routing = ws / "policy" / "routing.yaml"
    text = routing.read_text()
    assert text.count("    notify: [{to: owner, template: assigned}]\n") == 1
    routing.write_text(text.replace("    notify: [{to: owner, template: assigned}]\n", ""))
    now = datetime.now(UTC).isoformat()
    events = root / "tickets.jsonl"
    with events.open("w") as out:
        for actions in tickets:
            ticket = actions[0].ticket
            event = {
                "source": "crash-test",
                "event_id": f"created-{ticket}",
                "type": "ticket.created",
                "occurred_at": now,
                "ticket_id": ticket,
                "fields": {"subject": "Checkout fails", "requester": "ops@acme.example"},
            }
            out.write(json.dumps(event) + "\n")
    run_baton("ingest", str(events), "--workspace", str(ws))
    db = ws / "baton.db"
    assert _query(db, "SELECT count(*) FROM tickets")[0][0] == len(tickets)
    assert _query(db, "SELECT count(*) FROM outbox")[0][0] == 0
    return ws


def kill_while_delivering(worker: Proc, db: Path) -> list[int]:
    """SIGKILL the worker's process group ``KILLS`` times at seeded points and start it again;
    return the number of actions done at each kill."""
    rng = random.Random(SEED)
    points = [KILL_EVERY // 2 + i * KILL_EVERY + rng.randrange(KILL_EVERY // 2) for i in range(KILLS)]
    assert points[-1] < ACTIONS * 0.95
    deadline = time.monotonic() + DRAIN_TIMEOUT
    conn = sqlite3.connect(db, timeout=30)

    def done() -> int:
        count: int = conn.execute("SELECT count(*) FROM outbox WHERE status = 'done'").fetchone()[0]
        return count

    kills: list[int] = []
    try:
        for point in points:
            while (count := done()) < point:
                if not worker.alive():
                    raise AssertionError(f"the worker exited on its own:\n{worker.output()[-4000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"only {count} actions done after {DRAIN_TIMEOUT:.0f}s")
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.03))  # anywhere in the next few sends
            kills.append(done())
            worker.kill()
            worker.start()
    finally:
        conn.close()
    return kills


# -- the test -------------------------------------------------------------------------------------


def test_kill_the_worker_twenty_times_while_it_delivers_through_every_connector(tmp_path: Path) -> None:
    with vendors() as v:
        tickets = plan(v)
        actions = [a for group in tickets for a in group]
        assert len(actions) == ACTIONS
        ws = make_workspace(tmp_path, tickets)
        db = ws / "baton.db"
        env = {
            "BATON_WORKSPACE": str(ws),
            "BATON_CONNECTORS": ",".join(CONNECTORS),
            "BATON_OUTBOUND_ALLOW": "127.0.0.1/32",
            "BATON_LEASE_SECONDS": str(LEASE_SECONDS),  # a killed worker's claims come back quickly
            "BATON_HTTP_CONNECT_TIMEOUT": "1",
            "BATON_HTTP_READ_TIMEOUT": "2",
            "BATON_HTTP_TOTAL_TIMEOUT": "3",  # under the lease, as the settings demand
            "BATON_POLL_SECONDS": "0.05",
            "BATON_LOG_LEVEL": "WARNING",
            **v.settings(),
        }
        worker = Proc(["worker", "--workspace", str(ws)], env=env, log=tmp_path / "worker.log")
        database = open_database(f"sqlite:///{db}")
        try:
            with database.writer.begin() as conn:
                conn.execute(insert(outbox), outbox_rows(tickets, to_ms(SystemClock().now())))
        finally:
            database.dispose()

        with running([worker]):
            started = time.monotonic()
            worker.start()
            kills = kill_while_delivering(worker, db)

            def drained() -> bool:
                if not worker.alive():
                    raise AssertionError(f"the worker exited on its own:\n{worker.output()[-4000:]}")
                left = _query(db, "SELECT count(*) FROM outbox WHERE status IN ('pending', 'claimed')")
                return bool(left[0][0] == 0)

            wait_until("the worker to deliver every action", drained, timeout=DRAIN_TIMEOUT, every=0.2)
            seconds = time.monotonic() - started
            worker.stop(signal.SIGINT)

        # Every action done (none dead), with no action besides the test's own.
        keys = {a.key for a in actions}
        rows = _query(db, "SELECT idempotency_key, status, attempts, last_error FROM outbox")
        not_done = [row for row in rows if row[1] != "done"]
        assert not not_done, f"{len(not_done)} actions not done, e.g. {not_done[:3]}"
        assert len(rows) == ACTIONS and {row[0] for row in rows} == keys
        report = _check_targets(v, tickets) + _found_on_record(db)

    repeats = sum(report.values())
    attempts = dict(sorted(Counter(row[2] for row in rows).items()))
    failed = _query(db, "SELECT count(*) FROM audit_log WHERE kind = 'action.failed'")[0][0]
    print(
        f"\ncrash-connectors: {ACTIONS} actions in {seconds:.1f}s with {KILLS} kills at done counts "
        f"{kills}; repeated sends per target {dict(report)} ({repeats} in all, {len(_cut(v.webhook))} "
        f"webhook requests cut short); actions by attempts counted {attempts}; {failed} failed attempts"
    )
    assert len(kills) == KILLS, "every kill must land while actions are still being delivered"
    assert worker.starts == KILLS + 1
    # The worker sends one action at a time: a kill leaves at most one send unrecorded.
    assert repeats <= KILLS, f"{repeats} repeated sends for {KILLS} kills"

    # Recorded as sent once, with exactly one "delivered" entry on the record, and the chain holds.
    assert _query(db, "SELECT count(*) FROM sent_log")[0][0] == ACTIONS
    delivered = Counter(
        json.loads(body)["key"]
        for (body,) in _query(db, "SELECT body FROM audit_log WHERE kind = 'action.delivered'")
    )
    assert delivered == Counter(keys), "each action has exactly one action.delivered entry"
    assert _query(db, "SELECT count(*) FROM audit_log WHERE kind = 'action.dead'")[0][0] == 0
    assert run_baton("audit", "verify", "--workspace", str(ws)).startswith("ok:")


def _check_targets(v: Vendors, tickets: list[list[Planned]]) -> Counter[str]:
    """Assert each target holds each action's effect once (at least once for Slack and e-mail);
    return how many repeated sends each target absorbed or showed."""
    by: dict[tuple[str, str], list[Planned]] = defaultdict(list)
    for a in (a for group in tickets for a in group):
        by[(a.connector, a.kind)].append(a)
    repeats: Counter[str] = Counter()

    # Jira: one issue per create (dedup label, on its ticket), one comment per comment (property).
    creates = by[("jira", "create_issue")]
    assert len(v.jira.issues) == len(creates)
    issue_of: dict[str, int] = {}
    for a in creates:
        (issue,) = [i for i in v.jira.issues if dedup_label(a.key) in i.labels]
        assert ticket_label(a.ticket) in issue.labels
        issue_of[a.ticket] = issue.id
    comments = [(i.id, c) for i in v.jira.issues for c in i.comments]
    assert len(comments) == len(by[("jira", "comment")])
    for a in by[("jira", "comment")]:
        (on,) = [i for i, c in comments if c.properties.get("baton", {}).get("key") == a.key]
        assert on == issue_of[a.ticket]

    # Linear: issues and comments under ids derived from the action keys.
    creates = by[("linear", "create_issue")]
    assert set(v.linear.issues) == {client_id("issue", a.key, LINEAR_KEY) for a in creates}
    assert len(v.linear.comments) == len(by[("linear", "comment")])
    first = {a.ticket: client_id("issue", a.key, LINEAR_KEY) for a in creates}
    for a in by[("linear", "comment")]:
        assert v.linear.comments[client_id("comment", a.key, LINEAR_KEY)].issue_id == first[a.ticket]
    repeats["linear"] = _linear_found_again(v.linear)

    # Zendesk: one comment per note and per update (its note), found by the action's marker.
    for a in by[("zendesk", "note")] + by[("zendesk", "update")]:
        ticket = v.zendesk.tickets[v.zendesk_ticket[a.ticket]]
        marked = [c for c in ticket.comments if zendesk_marker(a.key) in c.body]
        assert len(marked) == 1, (a.kind, a.ticket, [c.body for c in ticket.comments])
    for a in by[("zendesk", "update")]:
        ticket = v.zendesk.tickets[v.zendesk_ticket[a.ticket]]
        assert (ticket.priority, ticket.status, len(ticket.comments)) == ("high", "open", 2)

    # Salesforce: one Task per activity and per sync (its tier note), by external id.
    logged = by[("salesforce", "activity")] + by[("salesforce", "sync")]
    tasks = Counter((t.key or "").lower() for t in v.salesforce.tasks)
    assert tasks == Counter(a.key for a in logged)
    repeats["salesforce"] = sum(t.updates for t in v.salesforce.tasks)

    # HubSpot: one note per activity and per sync (its tier note), by marker token.
    logged = by[("hubspot", "activity")] + by[("hubspot", "sync")]
    assert len(v.hubspot.notes) == len(logged)
    for a in logged:
        assert sum(hubspot_marker(a.key) in n.body for n in v.hubspot.notes.values()) == 1

    # PagerDuty: one alert per ticket's dedup key; a repeated trigger joins the open alert.
    pages = by[("pagerduty", "page")]
    assert Counter(a.dedup_key for a in v.pagerduty.alerts) == Counter(dedup_key(a.ticket) for a in pages)
    assert not v.pagerduty.dropped
    repeats["pagerduty"] = sum(a.triggers - 1 for a in v.pagerduty.alerts)

    # Webhook: one effect per webhook-id; repeats were answered as duplicates. A kill between the
    # headers and the body leaves the receiver a body shorter than its Content-Length, which
    # fails verification (answered to nobody); every complete request verified.
    assert set(v.webhook.effects) == {a.key for a in by[("webhook", "notify")]}
    assert len(v.webhook.rejected) == len(_cut(v.webhook))
    repeats["webhook"] = len(v.webhook.requests) - len(v.webhook.effects)

    # Slack and e-mail: every message at least once; a repeat shows (at most one per kill).
    sent = Counter(m["metadata"]["event_payload"]["key"] for m in v.slack.messages)
    assert set(sent) == {a.key for a in by[("slack", "notify")]}
    repeats["slack"] = sum(n - 1 for n in sent.values())
    mails = Counter(str(m.message()["Message-ID"]) for m in v.smtp.mails)
    wanted = {a.ticket for a in by[("email", "notify")]}
    assert len(mails) == len(wanted)
    assert {mid.split(".")[1] for mid in mails} == wanted
    repeats["email"] = sum(n - 1 for n in mails.values())
    return repeats


def _linear_found_again(linear: LinearStandIn) -> int:
    """Lookups of an issue or comment that an earlier attempt had already created: each is a
    repeated send that Linear's ids absorbed."""
    created: set[str] = set()
    found = 0
    for request in linear.requests:
        try:
            body = json.loads(request.body)
        except ValueError:
            continue  # cut short by a kill: Linear refused it, nothing was created
        variables = body.get("variables") or {}
        if body.get("operationName") in ("BatonIssueCreate", "BatonCommentCreate"):
            created.add(str(variables.get("input", {}).get("id")))
        elif body.get("operationName") in ("BatonIssueById", "BatonCommentById"):
            found += str(variables.get("id")) in created
    return found


def _found_on_record(db: Path) -> Counter[str]:
    """Deliveries that found the effect of an earlier attempt at the target, as their audit
    entries say (Jira, Zendesk and HubSpot look before they write)."""
    found: Counter[str] = Counter()
    for (text,) in _query(db, "SELECT body FROM audit_log WHERE kind = 'action.delivered'"):
        body = json.loads(text)
        detail = body.get("detail") or {}
        if body["connector"] == "jira":
            found["jira"] += detail.get("created") is False
        elif body["connector"] == "zendesk":
            # A note's retry says "recovered"; an update's finds its note and has nothing left to write.
            found["zendesk"] += bool(
                detail.get("recovered") or (detail.get("unchanged") and "comment_id" in detail)
            )
        elif body["connector"] == "hubspot":
            found["hubspot"] += detail.get("created") is False or detail.get("note_created") is False
    return found


def _cut(webhook: WebhookStandIn) -> list[Received]:
    """Requests whose body stopped short of their Content-Length: the sender died mid-request."""
    return [r for r in webhook.requests if len(r.body) < int(r.headers.get("content-length", "0"))]
