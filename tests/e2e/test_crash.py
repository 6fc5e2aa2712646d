"""Acceptance: crash safety of ingest and delivery (the backbone issue).

"10,000 events posted to the API while the server and worker are killed with SIGKILL at 10 random
points and restarted: every event that got a 2xx is stored exactly once, no outbox action is
delivered twice to the fake connector, ``baton audit verify`` passes."

The real ``baton serve`` (API plus its in-process worker thread) runs on SQLite in a temporary
workspace. Clients post each ticket's events in order, retrying a failed request with the same
event until it gets a 2xx. A seeded killer SIGKILLs the server's process group at 10 points and
starts it again on the same port. The test policy (tests/fixtures/policy) notifies through the
fake connector, so every delivery lands in its file, which survives the kills.

"Delivered twice" is judged the way the outbox promises it: a worker killed between sending and
recording the send makes the next worker send again with the same idempotency key, which the
fake (like any target honouring keys) answers as a duplicate. So each key must have exactly one
effect, and the repeated attempts are bounded by the kills: the worker sends one action at a time,
so one kill can leave at most one send unrecorded.
"""

from __future__ import annotations

import http.client
import json
import queue
import random
import sqlite3
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from baton.connectors.fake import read_calls
from tests.conftest import TEST_POLICY
from tests.e2e._procs import Proc, free_port, run_baton, running, wait_until

pytestmark = pytest.mark.slow

SEED = 20_261_122
EVENTS = 10_000
KILLS = 10
# Each ticket gets these events in this order: two notifications (assigned on create, reopened on
# reopen) per ticket under the example policy.
SEQUENCE = ("ticket.created", "customer.replied", "ticket.solved", "ticket.reopened")
TICKETS = EVENTS // len(SEQUENCE)
ACTIONS_PER_TICKET = 2
CLIENTS = 32
POST_TIMEOUT = 240.0  # seconds for all events to be acknowledged, kills and restarts included
DRAIN_TIMEOUT = 120.0


def _events(now: datetime) -> list[list[dict[str, Any]]]:
    """Per ticket, its events in order; all happen "now" so no SLA timer falls due during the test."""
    tickets = []
    for t in range(TICKETS):
        events = []
        for k, kind in enumerate(SEQUENCE):
            ev: dict[str, Any] = {
                "source": "zendesk",
                "event_id": f"crash-{t}-{k}",
                "type": kind,
                "occurred_at": (now + timedelta(milliseconds=k)).isoformat(),
                "external": {"system": "zendesk", "id": f"crash-{t}"},
            }
            if kind == "ticket.created":
                ev["fields"] = {
                    "subject": f"Export fails #{t}",
                    "body": "It spins forever.",
                    "requester": "c",
                }
            events.append(ev)
        tickets.append(events)
    return tickets


class Poster:
    """Client threads posting every ticket's events in order, each retried until it gets a 2xx.

    Plain ``http.client`` with one keep-alive connection per thread: a client costs little CPU,
    so the two cores go to the server and the measured rate is the server's.
    """

    def __init__(
        self, *, port: int, token: str, tickets: list[list[dict[str, Any]]], deadline: float
    ) -> None:
        self.port = port
        self.headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        self.deadline = deadline
        self.work: queue.SimpleQueue[list[dict[str, Any]]] = queue.SimpleQueue()
        for events in tickets:
            self.work.put(events)
        self.changed = threading.Condition()
        self.first_status: dict[tuple[str, str], int] = {}
        self.failed_attempts = 0  # connection refused/reset, 5xx: retried with the same event
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, name=f"poster-{i}") for i in range(CLIENTS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def acknowledged(self) -> int:
        return len(self.first_status)

    def wait_for(self, count: int, *, timeout: float) -> bool:
        """Block until ``count`` events are acknowledged (or the clients finish or fail)."""
        with self.changed:
            return self.changed.wait_for(
                lambda: len(self.first_status) >= count or self.finished() or self.stop.is_set(),
                timeout=timeout,
            )

    def finished(self) -> bool:
        return not any(thread.is_alive() for thread in self.threads)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=max(self.deadline - time.monotonic(), 0) + 70)

    def _run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        try:
            while not self.stop.is_set():
                try:
                    events = self.work.get_nowait()
                except queue.Empty:
                    return
                for event in events:  # one ticket's events, each only after the previous got a 2xx
                    conn = self._post_until_acknowledged(conn, event)
        except BaseException as exc:  # handed to the test thread, which fails with it
            self.errors.append(exc)
            self.stop.set()
        finally:
            if conn is not None:
                conn.close()
            with self.changed:
                self.changed.notify_all()

    def _post_until_acknowledged(
        self, conn: http.client.HTTPConnection | None, event: dict[str, Any]
    ) -> http.client.HTTPConnection | None:
        key = (event["source"], event["event_id"])
        body = json.dumps(event).encode()
        while True:
            if self.stop.is_set():
                raise RuntimeError("stopped")
            if time.monotonic() > self.deadline:
                raise AssertionError(f"event {key} still not acknowledged after {POST_TIMEOUT:.0f}s")
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                conn.request("POST", "/v1/events", body, self.headers)
                response = conn.getresponse()
                text = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):  # refused, reset, closed mid-answer
                if conn is not None:
                    conn.close()
                conn = None
                status = 0
            if status in (200, 202):
                with self.changed:
                    self.first_status[key] = status
                    self.changed.notify_all()
                return conn
            if status == 0 or status >= 500:
                with self.changed:
                    self.failed_attempts += 1
                time.sleep(0.05)
                continue
            raise AssertionError(f"event {key} refused with {status}: {text[:500]!r}")


def _post_everything(
    server: Proc, port: int, token: str, tickets: list[list[dict[str, Any]]]
) -> tuple[Poster, list[int]]:
    """Post all events while SIGKILLing the server at ``KILLS`` seeded points; return the clients'
    record and the acknowledged count at each kill."""
    rng = random.Random(SEED)
    points = sorted(rng.sample(range(EVENTS // 20, EVENTS * 9 // 10), KILLS))
    poster = Poster(port=port, token=token, tickets=tickets, deadline=time.monotonic() + POST_TIMEOUT)
    kills: list[int] = []
    poster.start()
    try:
        for point in points:
            while not poster.wait_for(point, timeout=1.0):
                _check_alive(server, poster)
            if poster.finished() or poster.stop.is_set():
                break  # too late to kill at this point: the count check fails the test
            time.sleep(rng.uniform(0, 0.05))  # land anywhere in the next few batches
            kills.append(poster.acknowledged())
            server.kill()
            server.start()
        while not poster.finished():
            poster.wait_for(EVENTS, timeout=1.0)
            _check_alive(server, poster)
    finally:
        poster.stop.set()  # a no-op once every client is done; otherwise they stop
        poster.join()
    if poster.errors:
        raise poster.errors[0]
    return poster, kills


def _check_alive(server: Proc, poster: Poster) -> None:
    """Fail fast if the server died by itself (a startup error, say) instead of retrying forever."""
    if not server.alive():
        poster.stop.set()
        raise AssertionError(f"the server exited on its own:\n{server.output()[-4000:]}")
    if time.monotonic() > poster.deadline:
        poster.stop.set()
        raise AssertionError(f"posting took more than {POST_TIMEOUT:.0f}s")


def _query(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, str]:
    """A workspace from ``baton init`` whose policy notifies through the fake connector, and an
    admin token."""
    ws = tmp_path / "ws"
    run_baton("init", "--workspace", str(ws), "--policy", str(TEST_POLICY))
    policy_file = ws / "policy" / "baton.yaml"
    text = policy_file.read_text()
    assert text.count("notify_connector: log") == 1
    policy_file.write_text(text.replace("notify_connector: log", "notify_connector: fake"))
    token = run_baton("token", "create", "--role", "admin", "--workspace", str(ws)).strip().splitlines()[-1]
    return ws, token


def test_kill_server_and_worker_ten_times_while_posting(workspace: tuple[Path, str], tmp_path: Path) -> None:
    ws, token = workspace
    fake_file = tmp_path / "fake-calls.jsonl"
    db = ws / "baton.db"
    port = free_port()
    env = {
        "BATON_WORKSPACE": str(ws),
        "BATON_CONNECTORS": "fake",
        "BATON_FAKE_CONNECTOR_PATH": str(fake_file),
        "BATON_LEASE_SECONDS": "2",  # a killed worker's claims come back quickly
        "BATON_POLL_SECONDS": "0.05",
        "BATON_LOG_LEVEL": "WARNING",
    }
    server = Proc(["serve", "--workspace", str(ws), "--port", str(port)], env=env, log=tmp_path / "serve.log")
    tickets = _events(datetime.now(UTC))

    with running([server]):
        server.start()
        wait_until("the server to answer", lambda: _healthy(port), timeout=60)
        started = time.monotonic()
        poster, kills = _post_everything(server, port, token, tickets)
        posting_seconds = time.monotonic() - started

        def drained() -> bool:
            left = _query(db, "SELECT count(*) FROM outbox WHERE status IN ('pending', 'claimed')")[0][0]
            return bool(left == 0)

        wait_until("the worker to drain the outbox", drained, timeout=DRAIN_TIMEOUT, every=0.2)
        drain_seconds = time.monotonic() - started - posting_seconds
        assert server.alive(), server.output()[-4000:]
        server.stop()

    calls = read_calls(fake_file)
    duplicates = sum(1 for c in calls if c["duplicate"])
    statuses = Counter(poster.first_status.values())
    print(
        f"\ncrash: {EVENTS} events in {posting_seconds:.1f}s ({EVENTS / posting_seconds:.0f} events/s), "
        f"kills at acknowledged counts {kills}, {poster.failed_attempts} failed attempts retried, "
        f"{statuses[202]} accepted + {statuses[200]} answered as redeliveries; "
        f"{len(calls)} connector calls, {duplicates} duplicate attempts; drained {drain_seconds:.1f}s later"
    )

    assert len(kills) == KILLS, "every kill must land while events are still being posted"
    assert server.starts == KILLS + 1

    # (a) every acknowledged event is stored, exactly once.
    wanted = {(ev["source"], ev["event_id"]) for events in tickets for ev in events}
    assert set(poster.first_status) == wanted
    stored = _query(db, "SELECT source, event_id FROM events")
    assert len(stored) == len(set(stored)) == EVENTS
    assert set(stored) == wanted
    assert _query(db, "SELECT count(*) FROM audit_log WHERE kind = 'event.received'")[0][0] == EVENTS

    # (b) every action is done, and reached the target exactly once (repeats bounded by the kills).
    outbox = _query(db, "SELECT id, idempotency_key, ticket_id, status FROM outbox ORDER BY id")
    assert len(outbox) == TICKETS * ACTIONS_PER_TICKET
    assert Counter(row[3] for row in outbox) == {"done": len(outbox)}
    keys = {row[1] for row in outbox}
    effects = Counter(c["key"] for c in calls if not c["duplicate"])
    assert set(effects) == keys, "a delivered key the outbox does not know, or a done action never sent"
    assert set(effects.values()) == {1}
    assert {c["key"] for c in calls} == keys
    assert duplicates <= KILLS, f"{duplicates} repeated sends for {KILLS} kills"
    assert _query(db, "SELECT count(*) FROM sent_log")[0][0] == len(keys)

    # One ticket's actions reach the target in outbox order, crashes notwithstanding.
    id_of = {row[1]: row[0] for row in outbox}
    first_seen: dict[str, list[int]] = defaultdict(list)
    for call in calls:
        if not call["duplicate"]:
            first_seen[call["ticket"]].append(id_of[call["key"]])
    out_of_order = {t: ids for t, ids in first_seen.items() if ids != sorted(ids)}
    assert not out_of_order

    # (c) the audit chain verifies.
    assert run_baton("audit", "verify", "--workspace", str(ws)).startswith("ok:")

    # (d) every action has one "queued" and one "delivered" entry on the record.
    for kind in ("action.queued", "action.delivered"):
        recorded = Counter(
            json.loads(body)["key"]
            for (body,) in _query(db, "SELECT body FROM audit_log WHERE kind = ?", kind)
        )
        assert set(recorded) == keys, kind
        assert set(recorded.values()) == {1}, kind


def _healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
