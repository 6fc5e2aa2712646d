"""A connector's circuit through open, half-open and closed, with two real workers on PostgreSQL.

Two ``baton worker`` processes share one PostgreSQL schema and deliver 12 webhook actions to a
stand-in that is dead: it never answers, so every attempt ends at the read timeout. The circuit
opens after ``FAILURES`` failures; with a cooldown of ``COOLDOWN`` seconds (from the settings, no
long sleeps) the API then reports ``half_open``, and one trial may go. Each failed trial opens the
circuit again (an audit entry, ``connector.opened``), so every stretch from the end of a cooldown
to the next opening must hold exactly one request at the target, however the two workers race
for it. After two failed trials the target recovers (slowly: each answer takes ``RECOVERED_SLOW``
seconds, so a second trial sent while the first is out would be seen); the stretch from the last
cooldown's end to ``connector.closed`` must again hold one request, the API reports ``closed``,
and every waiting action is delivered, once.
"""

from __future__ import annotations

import itertools
import json
import signal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from baton.clock import SystemClock, to_ms
from baton.settings import load_settings
from baton.store.db import Database
from baton.store.schema import audit_log, outbox
from baton.web.app import create_app
from baton.web.auth import create_token
from tests.conftest import TEST_POLICY
from tests.e2e._procs import Proc, running, wait_until
from tests.helpers import outbox_row
from tests.standins.fixtures import WEBHOOK_SECRET
from tests.standins.server import Fault, Received
from tests.standins.webhook import WebhookStandIn

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ACTIONS = 12
FAILURES = 2  # BATON_CIRCUIT_FAILURES_TO_OPEN
COOLDOWN = 2.0  # BATON_CIRCUIT_COOLDOWN_SECONDS
READ_TIMEOUT = 1.0  # a dead target's attempt lasts this long
FAILED_TRIALS = 2  # before the target recovers
RECOVERED_SLOW = 0.4


def circuits(api: TestClient, token: str) -> dict[str, str]:
    response = api.get("/v1/connectors", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return {c["connector"]: c["state"] for c in response.json()["circuits"]}


def transitions(db: Database) -> list[tuple[str, float]]:
    """(connector.opened or connector.closed, when in Unix seconds) for the webhook circuit."""
    with db.reader.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.kind, audit_log.c.at_ms, audit_log.c.body)
            .where(audit_log.c.kind.in_(("connector.opened", "connector.closed")))
            .order_by(audit_log.c.seq)
        ).all()
    return [(kind, at_ms / 1000) for kind, at_ms, body in rows if json.loads(body)["connector"] == "webhook"]


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_half_open_lets_one_trial_through_across_two_workers_then_closes(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    with WebhookStandIn(WEBHOOK_SECRET) as hook:
        hook.inject(Fault.hang(30).always())  # dead: never answers
        env = {
            "BATON_WORKSPACE": str(tmp_path / "ws"),
            "BATON_DATABASE_URL": db_url,
            "BATON_POLICY_DIR": str(TEST_POLICY),
            "BATON_CONNECTORS": "webhook",
            "BATON_WEBHOOK_URL": f"{hook.url}/hooks/baton",
            "BATON_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "BATON_OUTBOUND_ALLOW": "127.0.0.1/32",
            "BATON_HTTP_CONNECT_TIMEOUT": "1",
            "BATON_HTTP_READ_TIMEOUT": str(READ_TIMEOUT),
            "BATON_HTTP_TOTAL_TIMEOUT": "2",
            "BATON_CIRCUIT_FAILURES_TO_OPEN": str(FAILURES),
            "BATON_CIRCUIT_COOLDOWN_SECONDS": str(COOLDOWN),
            "BATON_MAX_ATTEMPTS": "100",  # nothing is dead-lettered while the target is down
            "BATON_WORKER_BATCH": "1",
            "BATON_POLL_SECONDS": "0.05",
            "BATON_LOG_LEVEL": "INFO",
        }
        app = create_app(
            settings=load_settings({}, workspace=tmp_path / "api"), db=db, batcher=None, clock=SystemClock()
        )
        with db.write() as conn:
            token = create_token(conn, role="viewer", name="watcher", now_ms=0)
        workers = [Proc(["worker"], env=env, log=tmp_path / f"worker-{i}.log") for i in range(2)]
        with TestClient(app) as api, running(workers):
            now_ms = to_ms(SystemClock().now())
            rows = [
                outbox_row(
                    key=f"{n:064x}",
                    ticket=f"T-{n:016x}",
                    connector="webhook",
                    kind="notify",
                    params={"to": "ana", "text": f"action {n}"},
                    now_ms=now_ms,
                )
                for n in range(ACTIONS)
            ]
            with db.write() as conn:
                conn.execute(insert(outbox), rows)
            for worker in workers:
                worker.start()

            def state_is(wanted: str) -> bool:
                if not all(w.alive() for w in workers):
                    raise AssertionError("a worker died:\n" + "\n".join(w.output()[-3000:] for w in workers))
                return circuits(api, token).get("webhook") == wanted

            seen: list[str] = []
            for _ in range(FAILED_TRIALS):
                wait_until("the circuit to open", lambda: state_is("open"), timeout=30, every=0.02)
                seen.append("open")
                wait_until("the cooldown to pass", lambda: state_is("half_open"), timeout=30, every=0.02)
                seen.append("half_open")
            wait_until(
                "the failed trials",
                lambda: [k for k, _ in transitions(db)].count("connector.opened") > FAILED_TRIALS,
                timeout=30,
                every=0.05,
            )
            hook.clear_faults()
            hook.inject(Fault.slow(RECOVERED_SLOW).always())  # back, slowly
            wait_until("the circuit to close", lambda: state_is("closed"), timeout=30, every=0.02)
            seen.append("closed")

            def drained() -> bool:
                with db.reader.connect() as conn:
                    left = conn.scalar(
                        select(func.count()).select_from(outbox).where(outbox.c.status != "done")
                    )
                return left == 0 and state_is("closed")

            wait_until("every waiting action to be delivered", drained, timeout=60, every=0.1)
            for worker in workers:
                worker.stop(signal.SIGINT)
        requests = list(hook.requests)
        effects = dict(hook.effects)

    assert seen == ["open", "half_open"] * FAILED_TRIALS + ["closed"]
    assert set(effects) == {r["idempotency_key"] for r in rows}  # every action, once
    marks = transitions(db)
    assert marks[-1][0] == "connector.closed" and [k for k, _ in marks[:-1]] == ["connector.opened"] * len(
        marks[:-1]
    )
    assert len(marks) - 2 >= FAILED_TRIALS  # the first opening, the failed trials, the closing
    # From the end of each cooldown to the next transition: the one trial, never two.
    for (_, opened), (_, then) in itertools.pairwise(marks):
        trials = trial_requests(requests, start=opened + COOLDOWN, end=then)
        assert len(trials) == 1, (
            opened,
            then,
            [(r.at, r.fault, r.headers["webhook-id"][-4:]) for r in trials],
        )
    print(
        f"\nhalf-open: {len(marks) - 2} failed trials, {len(requests)} requests, "
        f"{sum(r.fault == 'hang' for r in requests)} of them unanswered"
    )


def trial_requests(requests: list[Received], *, start: float, end: float) -> list[Received]:
    """The requests that arrived from ``start`` (less 10 ms for the audit's millisecond times) to
    ``end``."""
    return [r for r in requests if start - 0.01 <= r.at <= end + 0.001]
