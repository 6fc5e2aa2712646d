"""Read-only fallback with real connectors: the webhook target goes down, its actions wait, the
owners of the waiting tickets hear of it in Slack once each, and everything goes out on recovery.

Wired the way ``baton worker`` wires it: settings -> ``build_runtime`` -> ``Runtime.worker``.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from baton.bootstrap import Runtime, build_runtime
from baton.clock import FakeClock
from baton.engine.breaker import Breakers, BreakerSettings, circuit_states
from baton.engine.outbox import Outbox
from baton.policy.loader import load_policy
from baton.settings import load_settings
from baton.store.db import Database, open_database
from baton.store.schema import audit_log, outbox
from tests.conftest import TEST_POLICY, sqlite_url
from tests.helpers import event
from tests.integration.test_breaker import Target, queue, statuses
from tests.standins.fixtures import SLACK_TOKEN, WEBHOOK_SECRET
from tests.standins.server import Fault
from tests.standins.slack import SlackStandIn
from tests.standins.webhook import WebhookStandIn

SLACK_IDS = {"al": "U0000001", "bo": "U0000002", "cy": "U0000003"}


def policy_dir(tmp_path: Path, *, notify_connector: str) -> Path:
    """The test policy, with Slack identities for the L1 people and a webhook action per ticket."""
    target = tmp_path / "policy"
    shutil.copytree(TEST_POLICY, target)
    baton = (target / "baton.yaml").read_text()
    (target / "baton.yaml").write_text(
        baton.replace("notify_connector: log", f"notify_connector: {notify_connector}")
    )
    teams = (target / "teams.yaml").read_text()
    for person, slack_id in SLACK_IDS.items():
        teams = teams.replace(
            f"{person}: {{capacity: 5}}", f"{person}: {{capacity: 5, identities: {{slack: {slack_id}}}}}"
        )
    # Everyone else a notice may reach (manager, other tiers) is on Slack too: policy check
    # requires an identity in the notify connector's system for every member.
    teams = teams.replace(
        "mia: {identities: {email: mia@x.example}}",
        "mia: {identities: {email: mia@x.example, slack: U0000009}}",
    )
    for i, person in enumerate(("dee", "ed", "flo"), start=4):
        teams = teams.replace(
            f"      {person}: {{}}", f"      {person}: {{identities: {{slack: U000000{i}}}}}"
        )
    (target / "teams.yaml").write_text(teams)
    routing = (target / "routing.yaml").read_text()
    routing = routing.replace(
        "    notify: [{to: owner, template: assigned}]",
        "    notify: [{to: owner, template: assigned}]\n"
        "    actions: [{name: hook, connector: webhook, kind: notify, params: {to: owner}}]",
        1,
    )
    (target / "routing.yaml").write_text(routing)
    return target


def runtime(
    tmp_path: Path,
    db_url: str,
    clock: FakeClock,
    hook: WebhookStandIn,
    slack: SlackStandIn,
    **settings: object,
) -> Runtime:
    values: dict[str, object] = {
        "workspace": tmp_path,
        "database_url": db_url,
        "policy_dir": policy_dir(tmp_path, notify_connector=str(settings.pop("notify_connector", "slack"))),
        "connectors": "webhook,slack",
        "webhook_url": f"{hook.url}/hooks/baton",
        "webhook_secret": WEBHOOK_SECRET,
        "slack_token": SLACK_TOKEN,
        "slack_api_url": f"{slack.url}/api/",
        "outbound_allow": "127.0.0.1/32",
        "http_connect_timeout": 1.0,
        "http_read_timeout": 1.0,
        "http_total_timeout": 3.0,
        "circuit_failures_to_open": 2,
        "circuit_cooldown_seconds": 30,
        **settings,
    }
    return build_runtime(load_settings({}, **values), clock=clock)


def outage_notices(slack: SlackStandIn) -> list[dict[str, object]]:
    return [m for m in slack.messages if "webhook is down" in str(m["text"])]


def hook_statuses(db: Database) -> Counter[str]:
    with db.reader.connect() as conn:
        return Counter(conn.execute(select(outbox.c.status).where(outbox.c.connector == "webhook")).scalars())


def test_owners_hear_once_per_outage_in_slack_and_the_waiting_actions_go_out_on_recovery(
    tmp_path: Path, db_url: str, clock: FakeClock
) -> None:
    with (
        WebhookStandIn(WEBHOOK_SECRET, now=lambda: clock.now().timestamp()) as hook,
        SlackStandIn(SLACK_TOKEN) as slack,
    ):
        rt = runtime(tmp_path, db_url, clock, hook, slack)  # fallback: the policy's notify connector
        worker = rt.worker(name="w1")
        try:
            rt.engine.ingest([event(n, subject=f"Help {n}") for n in range(1, 7)])
            hook.inject(*[Fault.status(503) for _ in range(50)])  # the webhook target is down
            worker.outbox.deliver()  # the assignment messages (Slack); each ticket's hook is next
            worker.outbox.deliver()  # the hooks: two failures open the circuit
            with rt.db.reader.connect() as conn:
                (state,) = [c for c in circuit_states(conn, now=clock.now()) if c["connector"] == "webhook"]
            assert state["state"] == "open"
            worker.outbox.deliver()  # the notices
            notices = outage_notices(slack)
            # one per owner of a waiting ticket (six tickets, three L1 people), in their direct messages
            assert sorted(str(m["channel"]) for m in notices) == ["D0000001", "D0000002", "D0000003"]
            assert all("nothing is dropped" in str(m["text"]) for m in notices)
            assert hook_statuses(rt.db)["pending"] == 6 and not hook.effects  # waiting, none dropped

            # the cooldown passes, the one trial fails: open again, and nobody is told twice
            clock.advance(timedelta(seconds=31))
            assert worker.outbox.deliver().claimed == 1
            clock.advance(timedelta(seconds=5))
            worker.outbox.deliver()
            assert len(outage_notices(slack)) == 3

            # it recovers: the next trial closes the circuit and every waiting action goes out once
            hook.clear_faults()
            for _ in range(12):
                clock.advance(timedelta(minutes=5))
                worker.outbox.deliver()
            assert hook_statuses(rt.db) == {"done": 6}
            assert len(hook.effects) == 6 and hook.rejected == []
            assert len(outage_notices(slack)) == 3
            with rt.db.reader.connect() as conn:
                opened = [
                    b
                    for k, b in conn.execute(
                        select(audit_log.c.kind, audit_log.c.body).order_by(audit_log.c.seq)
                    )
                    if k == "connector.opened"
                ]
            assert len(opened) == 2 and all('"fallback":"slack"' in b for b in opened)
        finally:
            for connector in worker.outbox.connectors.values():
                close = getattr(connector, "close", None)
                if close is not None:
                    close()
            rt.db.dispose()  # last: a connection opened after it would be left open


def test_a_fallback_that_is_not_configured_becomes_log_and_is_never_dead_lettered(
    db: Database, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    queue(db, clock, [("T-1", "jira", "j1"), ("T-2", "jira", "j2")])
    jira = Target("jira", down=True)
    breakers = Breakers(
        db=db,
        clock=clock,
        settings=BreakerSettings(failures_to_open=2, fallback_connector="slack"),
        connectors={"jira": jira},
    )
    box = Outbox(db=db, connectors={"jira": jira}, clock=clock, worker="w", breakers=breakers)
    box.deliver()
    with caplog.at_level(logging.INFO, logger="baton.connectors.log"):
        box.deliver()
    assert statuses(db) == {"pending": 2, "done": 1}  # the notice went out through log
    (line,) = [r.getMessage() for r in caplog.records]
    assert "ticket=connector:jira:operations to=operations" in line
    with db.reader.connect() as conn:
        (notice,) = conn.execute(select(outbox).where(outbox.c.action_name == "notify.connector-down")).all()
    assert notice.connector == "log" and notice.status == "done"


FALLBACKS = [
    # (label, configured fallback, policy notify connector, configured connectors, down, chosen)
    ("the setting wins", "email", "slack", {"email", "slack", "jira"}, "jira", "email"),
    ("else the policy's notify connector", None, "slack", {"slack", "jira"}, "jira", "slack"),
    ("never the connector that is down", None, "slack", {"slack"}, "slack", "log"),
    ("the setting is the one that is down", "jira", "slack", {"slack", "jira"}, "jira", "log"),
    ("not configured: log", "email", "slack", {"slack", "jira"}, "jira", "log"),
    ("log itself is down: nobody to tell", None, "log", {"log"}, "log", None),
]


@pytest.mark.parametrize(
    ("label", "setting", "notify", "configured", "down", "chosen"), FALLBACKS, ids=[f[0] for f in FALLBACKS]
)
def test_which_connector_carries_the_notice(
    tmp_path: Path,
    clock: FakeClock,
    label: str,
    setting: str | None,
    notify: str,
    configured: set[str],
    down: str,
    chosen: str | None,
) -> None:
    policy = dataclasses.replace(load_policy(TEST_POLICY), notify_connector=notify)
    db = open_database(sqlite_url(tmp_path))  # the choice reads no rows
    breakers = Breakers(
        db=db,
        clock=clock,
        settings=BreakerSettings(fallback_connector=setting),
        connectors=configured,
        policy=lambda: policy,
    )
    assert breakers.fallback_for(down) == chosen
    db.dispose()


def test_no_notices_when_told_not_to(tmp_path: Path, clock: FakeClock) -> None:
    db = open_database(sqlite_url(tmp_path))
    assert Breakers(db=db, clock=clock, settings=BreakerSettings(notify=False)).fallback_for("jira") is None
    db.dispose()
