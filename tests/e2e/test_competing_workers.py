"""Acceptance: competing workers (the backbone issue).

"4 worker processes on PostgreSQL, 5,000 outbox actions: none delivered twice, actions of one
ticket delivered in order."

Four real ``baton worker`` processes share one PostgreSQL schema and one fake connector file
(``flock`` makes its record atomic across processes, and its order is the order of the sends).
The 5,000 actions (500 tickets, 10 each) are written straight into the outbox, with each ticket's
actions only a few ids apart, so that workers claiming neighbouring rows at the same moment would
deliver one ticket's actions out of order unless the outbox holds the later ones back. Nobody is
killed here, so not even a repeated attempt is allowed.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from baton import audit
from baton.clock import SystemClock, to_ms
from baton.connectors.fake import read_calls
from baton.store.db import open_database
from baton.store.schema import audit_log, outbox, sent_log
from tests.conftest import TEST_POLICY
from tests.e2e._procs import Proc, running, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

WORKERS = 4
TICKETS = 500
PER_TICKET = 10
ACTIONS = TICKETS * PER_TICKET
GROUP = 10  # tickets whose actions are shuffled together
BATCH = 20  # rows one worker claims at once: small, so the four interleave all along
SEED = 20_261_122
DRAIN_TIMEOUT = 150.0


def _key(ticket: int, n: int) -> str:
    return hashlib.sha256(f"competing\0{ticket}\0{n}".encode()).hexdigest()


def _rows(now_ms: int) -> list[dict[str, object]]:
    """The actions in id order. Tickets come in groups of ``GROUP`` whose actions are shuffled
    together (each ticket's own stay in order), so one ticket's actions lie a few ids apart: every
    claim of ``BATCH`` rows would hold several actions of one ticket, and the next worker's claim
    the ones after them, were the outbox not holding a ticket's later actions back."""
    rng = random.Random(SEED)
    order: list[int] = []
    for first in range(0, TICKETS, GROUP):
        group = [t for t in range(first, min(first + GROUP, TICKETS)) for _ in range(PER_TICKET)]
        rng.shuffle(group)
        order.extend(group)
    step: Counter[int] = Counter()
    rows: list[dict[str, object]] = []
    for position, t in enumerate(order):
        n = step[t]
        step[t] += 1
        rows.append(
            {
                "id": position + 1,  # explicit, so id order is this order whatever the driver does
                "idempotency_key": _key(t, n),
                "ticket_id": f"T-{t:04d}",
                "decision_id": f"D-{t:04d}-{n:02d}",
                "action_name": f"notify.step-{n}",
                "connector": "fake",
                "kind": "notify",
                "params": {"to": "ana", "n": n},
                "status": "pending",
                "attempts": 0,
                "available_ms": now_ms,
                "created_ms": now_ms,
            }
        )
    return rows


def test_four_workers_on_postgres_deliver_each_action_once_and_in_order(pg_url: str, tmp_path: Path) -> None:
    db = open_database(pg_url)
    db.migrate()
    fake_file = tmp_path / "fake-calls.jsonl"
    env = {
        "BATON_WORKSPACE": str(tmp_path / "ws"),
        "BATON_DATABASE_URL": pg_url,
        "BATON_POLICY_DIR": str(TEST_POLICY),
        "BATON_CONNECTORS": "fake",
        "BATON_FAKE_CONNECTOR_PATH": str(fake_file),
        "BATON_WORKER_BATCH": str(BATCH),
        "BATON_POLL_SECONDS": "0.05",
        "BATON_LOG_LEVEL": "INFO",  # the "worker ... started" line tells us each one is up
    }
    workers = [Proc(["worker"], env=env, log=tmp_path / f"worker-{i}.log") for i in range(WORKERS)]
    try:
        with running(workers):
            for worker in workers:
                worker.start()
            for worker in workers:
                wait_until(
                    f"worker {worker.pid} to start",
                    lambda w=worker: " started" in w.output() or not w.alive(),
                    timeout=60,
                )
                assert worker.alive(), worker.output()[-4000:]

            # All four are polling an empty outbox; the work appears in one commit.
            with db.writer.begin() as conn:
                conn.execute(insert(outbox), _rows(to_ms(SystemClock().now())))
            started = time.monotonic()

            def drained() -> bool:
                with db.reader.connect() as conn:
                    left = conn.scalar(
                        select(func.count()).select_from(outbox).where(outbox.c.status != "done")
                    )
                if not all(w.alive() for w in workers):
                    raise AssertionError("a worker died:\n" + "\n".join(w.output()[-2000:] for w in workers))
                return left == 0

            wait_until("the workers to deliver every action", drained, timeout=DRAIN_TIMEOUT, every=0.2)
            seconds = time.monotonic() - started
            for worker in workers:
                # SIGINT is the worker's way to stop (KeyboardInterrupt ends its loop cleanly).
                worker.stop(signal.SIGINT)

        with db.reader.connect() as conn:
            rows = conn.execute(
                select(outbox.c.id, outbox.c.idempotency_key, outbox.c.ticket_id, outbox.c.claimed_by)
            ).all()
            sent = conn.scalar(select(func.count()).select_from(sent_log))
            delivered = Counter(
                json.loads(body)["key"]
                for body in conn.scalars(
                    select(audit_log.c.body).where(audit_log.c.kind == "action.delivered")
                )
            )
            report = audit.verify(conn)
    finally:
        db.dispose()

    calls = read_calls(fake_file)
    by_worker = Counter(row.claimed_by for row in rows)
    print(
        f"\ncompeting: {ACTIONS} actions by {WORKERS} workers in {seconds:.1f}s "
        f"({ACTIONS / seconds:.0f} actions/s); finished per worker: "
        f"{sorted(by_worker.values(), reverse=True)}"
    )

    # None delivered twice: one call per action, no repeat even as an attempt.
    keys = {row.idempotency_key for row in rows}
    assert len(rows) == ACTIONS
    assert len(calls) == ACTIONS
    assert Counter(c["key"] for c in calls) == Counter(keys)
    assert not [c for c in calls if c["duplicate"]]
    assert sent == ACTIONS
    assert delivered == Counter(keys), "each action has exactly one action.delivered entry"
    assert report.ok, report.problems[:5]

    # One ticket's actions arrive in outbox order.
    id_of = {row.idempotency_key: row.id for row in rows}
    arrived: dict[str, list[int]] = defaultdict(list)
    for call in calls:
        arrived[call["ticket"]].append(id_of[call["key"]])
    assert len(arrived) == TICKETS
    out_of_order = {t: ids for t, ids in arrived.items() if ids != sorted(ids)}
    assert not out_of_order, (
        f"{len(out_of_order)} tickets out of order, e.g. {next(iter(out_of_order.items()))}"
    )
    assert all(len(ids) == PER_TICKET for ids in arrived.values())

    # They really competed: the worker that finished a row stays in ``claimed_by``.
    assert None not in by_worker
    assert len(by_worker) >= 2, f"only {by_worker} delivered"
