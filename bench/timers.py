"""Durable timers at scale: firing lateness, firing rate and memory with 1,000,000 pending timers.

    python bench/timers.py               # SQLite, 1,000,000 timers, three 30 s windows
    python bench/timers.py --quick       # 100,000 timers, three 15 s windows
    python bench/timers.py --postgres    # the same on PostgreSQL

Setup (a separate process, so its memory does not count against the worker's): a fresh database
with ``timers / 6`` open tickets (valid ticket state, as ``decide`` builds it for a created
ticket), each with its ``ticket.created`` event and external link (the least history such tickets
come with; real ones carry about five events each), and their six SLA threshold timers each
(first response and resolution at 50/80/100%), all pending, bulk-inserted in large transactions.
Due times are assigned to (ticket, threshold) slots at random, independently of the tickets'
clock targets: firing runs the same path either way (``decide`` on the ticket: notifications at
50/80%, a breach and a tier escalation at 100%).

Most timers are due later (spread over the following 72 hours) and stay pending: the due-timer
query always runs against the full table. Three windows of ``--window`` seconds, starting a few
seconds after the load, have timers due uniformly at a set rate; each starts with an empty outbox:

1. **timers only** at ``--rate`` (500/s): a loop like ``Worker.run`` without the outbox:
   ``Engine.fire_due_timers`` (limit = the worker batch, 100), sleeping the worker poll interval
   (0.2 s) only when nothing was due. This is the figure the target is about;
2. **Worker.run** at ``--rate``: the real worker loop in a thread (timers, then delivery of the
   notifications they queue; every connector is the log connector, so delivery costs only what
   the outbox itself costs);
3. **Worker.run** at ``--realistic-rate`` (50/s), still a very busy organisation.

Whatever a window leaves behind (actions still queued, timers not fired by its end) is set aside
before the next starts, and counted in the window that left it.

Lateness of a timer = wall time when the transaction that fired it had committed, minus its due
time (the loop notes the time right after each ``fire_due_timers`` returns, keyed by the
``fired_ms`` the engine stamps on the rows). Peak memory is the worker process's high-water mark.

The due rate: 1,000,000 SLA thresholds are ~166,000 open tickets; a very large support
organisation opens a few thousand tickets an hour, so its thresholds come due at a few per second,
tens per second in a burst. 500 per second sustained is far beyond that, on purpose.

Last, the maximum firing rate: with every timer already due (an engine whose clock runs days
ahead), fire as fast as possible for a while, at limit 100 (worker default) and 500.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from typing import Any

import orjson
from _common import (
    EXAMPLE_POLICY,
    bulk_insert,
    demo_accounts,
    engine_for,
    fresh_database,
    machine_note,
    maxrss_mb,
    percentile,
    prepare,
    print_table,
    wall_ms,
    workdir,
)
from sqlalchemy import func, select, text, update

from baton.clock import SystemClock, to_ms
from baton.connectors.base import Connector
from baton.connectors.log import LogConnector
from baton.engine.decide import decide
from baton.engine.outbox import Outbox
from baton.engine.runtime import Engine
from baton.engine.worker import Worker
from baton.model import Context, Event, ExternalLink, Ticket, replace
from baton.policy.loader import load_policy
from baton.store import repo
from baton.store.db import Database, open_database
from baton.store.schema import outbox, timers

WORKER_BATCH = 100  # Settings.worker_batch default
POLL_SECONDS = 0.2  # Settings.poll_seconds default
THRESHOLDS = tuple(
    f"sla.{clock}.{pct}" for clock in ("first_response", "resolution") for pct in (50, 80, 100)
)
TARGET_P99_S = 1.0
LEAD_SECONDS = 8.0  # from the end of the load to the first due timer


# -- load (child process) ----------------------------------------------------------------------------


def _created(number: int, at: datetime, accounts: Sequence[str]) -> dict[str, Any]:
    """The ticket.created event of bench ticket ``number``, as a signal adapter would deliver it."""
    account = accounts[number % len(accounts)]
    return {
        "source": "zendesk",
        "event_id": f"zd-{number}-1",
        "type": "ticket.created",
        "occurred_at": at.isoformat(),
        "external": {"system": "zendesk", "id": str(number), "url": f"https://x.example/tickets/{number}"},
        "fields": {
            "subject": "Sync job stuck since this morning",
            "body": "Since about an hour ago our team sees errors. We already cleared caches and retried.",
            "account_id": account,
            "channel": "email",
            "requester": f"user{number}@{account}.example",
            "category": "technical",
            "priority": "normal",
        },
        "actor": {"kind": "customer", "email": f"user{number}@{account}.example"},
    }


def _template_ticket(at: datetime) -> Ticket:
    """A freshly created ticket exactly as ``decide`` builds it (routing, owner, SLA clocks)."""
    policy = load_policy(EXAMPLE_POLICY)
    account = demo_accounts()[1]
    event = Event.model_validate(_created(0, at, [account.id]))
    return decide(None, event, Context(account=account), policy, at).ticket


def _load(
    url: str,
    n_timers: int,
    window_due: list[int],
    window_s: float,
    gap_s: float,
    seed: int,
    out: Queue[Any],
) -> None:
    """Tickets (with their creation event and external link), far timers, then the windows'
    timers (the first due from now + LEAD_SECONDS, each window after the one before plus a gap)."""
    rng = random.Random(seed)
    db = open_database(url)
    started = time.perf_counter()
    at = datetime.now(UTC) - timedelta(hours=1)
    template = _template_ticket(at)
    accounts = [a.id for a in demo_accounts()]
    n_tickets = -(-n_timers // len(THRESHOLDS))
    ids = [f"T-bench{i:09d}" for i in range(n_tickets)]
    chunk = 20_000
    for start in range(0, n_tickets, chunk):
        numbers = range(start, min(n_tickets, start + chunk))
        created = [_created(n, at, accounts) for n in numbers]
        batch = [
            replace(
                template,
                id=ids[n],
                requester=c["fields"]["requester"],
                account_id=c["fields"]["account_id"],
                external_links=(ExternalLink.model_validate(c["external"]),),
            )
            for n, c in zip(numbers, created, strict=True)
        ]
        with db.writer.begin() as conn:
            repo.upsert_tickets(conn, batch)
            bulk_insert(
                conn,
                "events",
                ("source", "event_id", "ticket_id", "type", "occurred_ms", "received_ms", "body"),
                [
                    (
                        "zendesk",
                        c["event_id"],
                        ids[n],
                        "ticket.created",
                        to_ms(at),
                        to_ms(at),
                        orjson.dumps(c).decode(),
                    )
                    for n, c in zip(numbers, created, strict=True)
                ],
            )
            bulk_insert(
                conn,
                "external_links",
                ("system", "external_id", "ticket_id", "url"),
                [
                    ("zendesk", str(n), ids[n], c["external"]["url"])
                    for n, c in zip(numbers, created, strict=True)
                ],
            )
    tickets_s = time.perf_counter() - started

    slots = list(range(n_timers))
    rng.shuffle(slots)
    window_slots, far_slots = slots[: sum(window_due)], slots[sum(window_due) :]
    data = {
        name: orjson.dumps({"clock": name.split(".")[1], "pct": int(name.split(".")[2])}).decode()
        for name in THRESHOLDS
    }
    columns = ("ticket_id", "name", "due_ms", "status", "data")

    def row(slot: int, due_ms: int) -> tuple[str, str, int, str, str]:
        name = THRESHOLDS[slot % len(THRESHOLDS)]
        return (ids[slot // len(THRESHOLDS)], name, due_ms, "pending", data[name])

    far_from = wall_ms() + int((LEAD_SECONDS + len(window_due) * (window_s + gap_s) + 3_600) * 1000)
    far_span = 72 * 3_600 * 1000
    chunk = 100_000
    t_timers = time.perf_counter()
    for start in range(0, len(far_slots), chunk):
        rows = [row(s, far_from + rng.randrange(far_span)) for s in far_slots[start : start + chunk]]
        with db.writer.begin() as conn:
            bulk_insert(conn, "timers", columns, rows)
    t0 = wall_ms() + int(LEAD_SECONDS * 1000)
    windows = [t0 + int(w * (window_s + gap_s) * 1000) for w in range(len(window_due))]
    rows = []
    taken = 0
    for first, count in zip(windows, window_due, strict=True):
        for s in window_slots[taken : taken + count]:
            rows.append(row(s, first + rng.randrange(int(window_s * 1000))))
        taken += count
    with db.writer.begin() as conn:
        bulk_insert(conn, "timers", columns, rows)
    if db.is_postgres:
        with db.writer.begin() as conn:
            conn.execute(text("ANALYZE"))
    timers_s = time.perf_counter() - t_timers
    db.dispose()
    out.put(
        {
            "windows": windows,
            "tickets": n_tickets,
            "tickets_s": tickets_s,
            "timers_s": timers_s,
            "rss": maxrss_mb(),
        }
    )


# -- measurement helpers ----------------------------------------------------------------------------


class AnyConnector(dict[str, Connector]):
    """Every connector the policy names (slack, email, log...) is the log connector here: delivery
    costs what the outbox costs, not what a vendor's API costs."""

    _log = LogConnector()

    def get(self, key: str, default: Connector | None = None) -> Connector:  # type: ignore[override]
        return self._log


class MarkingClock:
    """The system clock, noting the first reading after ``arm()``: ``fire_due_timers`` reads the
    clock first and stamps that instant on the rows it fires (``fired_ms``)."""

    def __init__(self, ahead: timedelta = timedelta(0)) -> None:
        self.ahead = ahead
        self.first: datetime | None = None
        self._armed = False

    def arm(self) -> None:
        self.first, self._armed = None, True

    def now(self) -> datetime:
        now = datetime.now(UTC) + self.ahead
        if self._armed:
            self.first, self._armed = now, False
        return now


@dataclass
class Commits:
    """When each firing transaction had committed, keyed by the ``fired_ms`` it stamped."""

    at: dict[int, int]
    fired: int = 0
    calls: int = 0


def recording(engine: Engine, clock: MarkingClock, commits: Commits) -> Callable[..., int]:
    original = engine.fire_due_timers

    def fire_due_timers(*, limit: int = 500) -> int:
        clock.arm()
        n = original(limit=limit)
        done = wall_ms()
        commits.calls += 1
        if n and clock.first is not None:
            key = to_ms(clock.first)
            commits.at[key] = max(done, commits.at.get(key, 0))
            commits.fired += n
        return n

    return fire_due_timers


def lateness(db: Database, commits: Commits, *, due_from: int, due_to: int) -> tuple[list[float], int, int]:
    """Seconds late of every timer due in [due_from, due_to), and how many are still pending."""
    with db.reader.connect() as conn:
        fired = conn.execute(
            select(timers.c.due_ms, timers.c.fired_ms).where(
                timers.c.status == "fired", timers.c.due_ms >= due_from, timers.c.due_ms < due_to
            )
        ).all()
        pending = conn.scalar(
            select(func.count())
            .select_from(timers)
            .where(timers.c.status == "pending", timers.c.due_ms >= due_from, timers.c.due_ms < due_to)
        )
    unmatched = 0
    late: list[float] = []
    for due_ms, fired_ms in fired:
        committed = commits.at.get(fired_ms)
        if committed is None:
            unmatched += 1
            committed = fired_ms
        late.append((committed - due_ms) / 1000)
    late.sort()
    return late, int(pending or 0), unmatched


def claim_latency_ms(db: Database, *, now_ms: int, limit: int, repeat: int = 15) -> float:
    """Median time of the due-timer query alone (in a transaction that is rolled back)."""
    times = []
    for _ in range(repeat):
        with db.writer.connect() as conn:
            started = time.perf_counter()
            with conn.begin() as tx:
                repo.claim_due_timers(conn, now_ms=now_ms, limit=limit, is_postgres=db.is_postgres)
                times.append(time.perf_counter() - started)
                tx.rollback()
    return statistics.median(times) * 1000


def wait_until(ms: int) -> None:
    delay = (ms - wall_ms()) / 1000
    if delay > 0:
        time.sleep(delay)


# -- phases ---------------------------------------------------------------------------------------


def run_timers_only(fire: Callable[..., int], *, until_ms: int, done: Callable[[], bool]) -> None:
    """``Worker.run`` minus the outbox: fire, and sleep the poll interval only when idle."""
    while wall_ms() < until_ms:
        if fire(limit=WORKER_BATCH) == 0:
            if done():
                return
            time.sleep(POLL_SECONDS)


def run_worker(worker: Worker, *, until_ms: int, done: Callable[[], bool]) -> None:
    thread = threading.Thread(target=worker.run, name="bench-worker", daemon=True)
    thread.start()
    while wall_ms() < until_ms and not done():
        time.sleep(0.25)
    worker.stop()
    thread.join(timeout=120)


def pending_between(db: Database, lo: int, hi: int) -> Callable[[], bool]:
    def done() -> bool:
        with db.reader.connect() as conn:
            left = conn.scalar(
                select(func.count())
                .select_from(timers)
                .where(timers.c.status == "pending", timers.c.due_ms >= lo, timers.c.due_ms < hi)
            )
        return not left and wall_ms() >= hi

    return done


def max_rate(db: Database, *, limit: int, seconds: float) -> tuple[float, float, int]:
    """Fire as fast as possible with every timer already due; (timers/s, CPU ms per timer, fired)."""
    engine = engine_for(db, clock=MarkingClock(ahead=timedelta(days=5)))
    fired = 0
    started, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - started < seconds:
        n = engine.fire_due_timers(limit=limit)
        if n == 0:
            break
        fired += n
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return fired / elapsed, cpu / max(fired, 1) * 1000, fired


def summarize(name: str, late: Sequence[float], pending: int, unmatched: int, rate: float) -> list[object]:
    return [
        name,
        rate,
        len(late),
        pending,
        percentile(late, 50),
        percentile(late, 99),
        late[-1] if late else float("nan"),
        "yes" if late and percentile(late, 99) < TARGET_P99_S and not pending else "NO",
    ] + ([f"{unmatched} unmatched"] if unmatched else [])


# -- main ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="100,000 timers, 15 s windows, 5 s max-rate runs"
    )
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--timers", type=int, help="pending timers (default 1,000,000; 100,000 quick)")
    parser.add_argument("--rate", type=float, default=500.0, help="timers due per second (windows 1, 2)")
    parser.add_argument(
        "--realistic-rate", type=float, default=50.0, help="timers due per second in window 3 (Worker.run)"
    )
    parser.add_argument("--window", type=float, help="seconds per window (default 30; 15 quick)")
    parser.add_argument("--max-seconds", type=float, help="seconds per max-rate run (default 10; 5 quick)")
    parser.add_argument("--dir", default=None, help="folder for the SQLite file (default: the temp dir)")
    args = parser.parse_args(argv)
    n_timers = args.timers or (100_000 if args.quick else 1_000_000)
    window_s = args.window or (15.0 if args.quick else 30.0)
    max_s = args.max_seconds or (5.0 if args.quick else 10.0)
    plan = [("timers only", args.rate), ("Worker.run", args.rate), ("Worker.run", args.realistic_rate)]
    window_due = [int(rate * window_s) for _, rate in plan]
    gap_s = 5.0
    backend = "postgres" if args.postgres else "sqlite"

    print(f"baton timers benchmark ({backend}): {machine_note()}")
    with workdir(args.dir) as scratch, fresh_database(backend, workdir=scratch) as url:
        prepare(url).dispose()
        db = open_database(url)
        clock = MarkingClock()
        engine = engine_for(db, clock=clock)

        ctx = multiprocessing.get_context("spawn")
        out: Queue[Any] = ctx.Queue()
        loader = ctx.Process(
            target=_load, args=(url, n_timers, window_due, window_s, gap_s, 7, out), daemon=True
        )
        loader.start()
        loaded = out.get(timeout=1_800)
        loader.join()
        starts: list[int] = loaded["windows"]
        window_ms = int(window_s * 1000)
        with db.reader.connect() as conn:
            pending = conn.scalar(
                select(func.count()).select_from(timers).where(timers.c.status == "pending")
            )
        print(
            f"loaded {loaded['tickets']:,} tickets (each with its creation event and link) in "
            f"{loaded['tickets_s']:.1f} s and {pending:,} pending timers in {loaded['timers_s']:.1f} s"
        )
        idle_ms = claim_latency_ms(db, now_ms=starts[0], limit=WORKER_BATCH)
        busy_ms = claim_latency_ms(db, now_ms=starts[-1] + window_ms, limit=WORKER_BATCH)
        print(
            f"due-timer query with {pending:,} pending: {idle_ms:.2f} ms (nothing due), {busy_ms:.2f} ms "
            f"(every window due, limit {WORKER_BATCH}); median of 15, rolled back"
        )
        print(
            f"{len(plan)} windows of {window_s:.0f} s, timers due uniformly in each; the rest "
            f"({pending - sum(window_due):,}) due over the following 72 h; worker batch {WORKER_BATCH}, "
            f"poll {POLL_SECONDS} s\n",
            flush=True,
        )

        rows: list[list[object]] = []
        notes: list[str] = []
        fired_total = 0
        results: list[tuple[list[float], int]] = []
        for i, ((name, rate), first) in enumerate(zip(plan, starts, strict=True)):
            end = first + window_ms
            until = starts[i + 1] - 1_000 if i + 1 < len(starts) else end + 60_000
            commits = Commits(at={})
            fire = recording(engine, clock, commits)
            with db.write() as conn:  # each window starts clean: no backlog left by the one before
                conn.execute(update(outbox).where(outbox.c.status != "done").values(status="done"))
                conn.execute(
                    update(timers)
                    .where(timers.c.status == "pending", timers.c.due_ms < first)
                    .values(status="cancelled")
                )
            wait_until(first - 500)
            cpu = time.process_time()
            if name == "timers only":
                run_timers_only(fire, until_ms=until, done=pending_between(db, first, end))
            else:
                engine.fire_due_timers = fire  # type: ignore[method-assign]
                box = Outbox(db=db, connectors=AnyConnector(), clock=SystemClock(), worker="bench")
                worker = Worker(engine=engine, outbox=box, batch=WORKER_BATCH, poll_seconds=POLL_SECONDS)
                run_worker(worker, until_ms=until, done=pending_between(db, first, end))
                del engine.fire_due_timers
            cpu = time.process_time() - cpu
            late, left, unmatched = lateness(db, commits, due_from=first, due_to=end)
            with db.reader.connect() as conn:
                queued = conn.scalar(
                    select(func.count()).select_from(outbox).where(outbox.c.status != "done")
                )
            fired_total += len(late)
            results.append((late, left))
            rows.append(summarize(name, late, left, unmatched, rate))
            notes.append(
                f"{name} at {rate:,.0f}/s: {commits.calls:,} fire calls, "
                f"{cpu / max(len(late), 1) * 1000:.2f} ms CPU per fired timer"
                + ("" if name == "timers only" else f", {queued:,} actions still queued in the outbox after")
            )
        print_table(
            [
                "loop",
                "due/s",
                "fired",
                "not fired",
                "p50 late s",
                "p99 late s",
                "max late s",
                f"p99 < {TARGET_P99_S:g} s",
            ],
            rows,
        )
        for line in notes:
            print(line)

        print(f"\nmaximum firing rate (every timer due; {pending - fired_total:,} pending):")
        max_rows = []
        for limit in (WORKER_BATCH, 500):
            rate, cpu_ms, fired = max_rate(db, limit=limit, seconds=max_s)
            max_rows.append([limit, fired, rate, cpu_ms])
        print_table(["limit", "fired", "timers/s", "CPU ms/timer"], max_rows)
        print(
            f"\npeak RSS of the worker process: {maxrss_mb():.0f} MB "
            f"(loader process, separately: {loaded['rss']:.0f} MB)"
        )
        late1, left1 = results[0]
        p99 = percentile(late1, 99)
        verdict = "met" if late1 and p99 < TARGET_P99_S and not left1 else "NOT met"
        print(
            f"target (p99 lateness < {TARGET_P99_S:g} s at {args.rate:,.0f} due/s, timers only): "
            f"{verdict} (p99 {p99:.3f} s)"
        )
        db.dispose()


if __name__ == "__main__":
    main()
