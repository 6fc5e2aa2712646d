"""Durable ingest throughput: events/s through ``Engine.ingest``, against a bare insert of the same rows.

    python bench/ingest.py            # 20,000 events; SQLite and PostgreSQL, 1 and 4 workers; HTTP
    python bench/ingest.py --quick    # 5,000 events, fewer HTTP requests

What is measured, per backend and worker count, in fresh databases:

- **engine**: the demo generator's realistic stream (about 21% ticket creates, the rest replies,
  status changes, solves and reopens) through ``Engine.ingest`` in batches of 256 (what the API's
  micro-batcher commits under load): dedup, decide, ticket upsert, outbox, timers, audit chain,
  one commit per batch. Workers are processes (spawn) ingesting disjoint slices of the stream
  concurrently; a ticket's events all go to one worker, in order. Events/s is the aggregate:
  all events over the time from the common start to the last worker's end.
- **bare insert**: the same ``events`` rows (same columns, same JSON bodies) inserted into an
  equally fresh database of the same kind, by the same number of processes, with the same batch
  size and one commit per batch, through SQLAlchemy Core: nothing else is written. It is the cost
  floor of durably writing those rows on this machine, measured in the same run before and after
  the engine; the table uses the faster of the two, so the ratio is a lower bound.
- **all-rows insert** (context for the ratio): every row the engine left in the database (events,
  links, tickets, decisions, outbox, timers, audit log; about 6 rows and 4 KB per event against
  one row and 0.4 KB) inserted the same way, with as many commits: the floor of the engine's write
  volume, without its reads, decisions, re-upserts and timer cancellations.

The ratio engine / bare insert is the figure to compare across machines; raw rates move with
the disk and with whatever else the shared machine is doing. The CPU time per event of the worker
processes is printed too: on a shared machine it moves much less than wall time.

The HTTP part starts ``baton serve`` (SQLite) as a subprocess and posts events one per request
over 64 keep-alive connections from this process (a minimal asyncio HTTP/1.1 client by default:
httpx's pooled AsyncClient costs several ms of CPU per request here, and the server would be
starved; ``--http-client httpx`` uses one httpx client per connection instead). Client and server
share the machine's cores, so the figure is a floor for the server; the CPU each side used per
request is printed with it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import queue
import signal
import socket
import subprocess
import sys
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import httpx
from _common import (
    DEMO_ACCOUNTS,
    create_share,
    engine_for,
    event_row,
    fresh_database,
    machine_note,
    maxrss_mb,
    partition_key,
    percentile,
    prefill_history,
    prepare,
    print_table,
    realistic_stream,
    reset_peak_rss,
    wall_ms,
    workdir,
)
from sqlalchemy import func, insert, select

from baton.model import Event
from baton.store.db import Database, open_database
from baton.store.schema import audit_log, decisions, events, external_links, outbox, tickets, timers

BATCH = 256
TARGET_EVENTS_PER_S = 2_000
TARGET_RATIO = 0.30


@dataclass(frozen=True)
class Run:
    mode: str  # engine | bare | bare-all
    seconds: float
    events: int
    statuses: dict[str, int]
    peak_rss_mb: float
    cpu_seconds: float
    errors: tuple[str, ...] = ()

    @property
    def durable(self) -> int:
        """Events stored: all of them, except those the engine refused."""
        return self.events - self.statuses.get("failed", 0)

    @property
    def rate(self) -> float:
        return self.durable / self.seconds


# What the engine leaves in the database, in the order it wrote it (bare-all replays these).
_WRITTEN = (
    (events, events.c.seq),
    (external_links, external_links.c.ticket_id),
    (tickets, tickets.c.id),
    (decisions, decisions.c.event_seq),
    (outbox, outbox.c.id),
    (timers, timers.c.id),
    (audit_log, audit_log.c.seq),
)

# A unit of work for one process: event JSON lines (engine, bare) or per-table row batches (bare-all).
Work = list[str] | list[dict[str, list[dict[str, Any]]]]


# -- one worker process ---------------------------------------------------------------------------


def _serve(tasks: Queue[Any], barrier: Barrier, out: Queue[Any]) -> None:
    """A worker process: run measurement tasks until told to stop (spawned once, used many times)."""
    # Refused events are counted and their first errors reported; one log line each would bury
    # the figures (and a refused event makes the engine retry its whole batch one by one).
    logging.getLogger("baton").setLevel(logging.CRITICAL)
    logging.getLogger("psycopg").setLevel(logging.CRITICAL)
    while (task := tasks.get()) is not None:
        try:
            out.put(("ok", _task(*task, barrier=barrier)))
        except BaseException:
            barrier.abort()  # the others must not wait for this one
            out.put(("error", traceback.format_exc()))


def _task(mode: str, url: str, work: Work, batch: int, *, barrier: Barrier) -> tuple[Any, ...]:
    """Ingest, bare-insert or replay ``work`` in batches; report start, end and outcome counts."""
    reset_peak_rss()
    db = open_database(url)
    engine = None
    stream: list[Event] = []
    rows: list[dict[str, Any]] = []
    if mode == "bare-all":
        batches = [b for b in work if isinstance(b, dict)]
    else:
        stream = [Event.model_validate_json(line) for line in work if isinstance(line, str)]
        if mode == "engine":
            engine = engine_for(db)
        else:
            rows = [event_row(e, received_ms=0) for e in stream]
    with db.writer.connect():
        pass  # open the pooled connection before the clock starts
    statuses: Counter[str] = Counter()
    errors: dict[str, None] = {}
    barrier.wait(timeout=600)
    start, cpu = time.time(), time.process_time()
    if mode == "engine":
        assert engine is not None
        for i in range(0, len(stream), batch):
            for result in engine.ingest(stream[i : i + batch]):
                statuses[result.status] += 1
                if result.error:
                    errors[result.error] = None
    elif mode == "bare":
        for i in range(0, len(rows), batch):
            now_ms = wall_ms()
            chunk = [{**row, "received_ms": now_ms} for row in rows[i : i + batch]]
            with db.write() as conn:
                conn.execute(insert(events), chunk)
            statuses["inserted"] += len(chunk)
    else:
        for tables in batches:
            with db.write() as conn:
                for table, _ in _WRITTEN:
                    if tables.get(table.name):
                        conn.execute(insert(table), tables[table.name])
                        statuses[table.name] += len(tables[table.name])
    end, cpu = time.time(), time.process_time() - cpu
    db.dispose()
    return (start, end, dict(statuses), maxrss_mb(), cpu, list(errors)[:3])


class Workers:
    """``n`` spawned processes that stay up for every measurement with that many workers: starting
    a Python process that imports Baton costs seconds, which would otherwise go into every run."""

    def __init__(self, n: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.barrier = ctx.Barrier(n)
        self.out: Queue[Any] = ctx.Queue()
        self.tasks: list[Queue[Any]] = [ctx.Queue() for _ in range(n)]
        self.procs = [
            ctx.Process(target=_serve, args=(tasks, self.barrier, self.out), daemon=True)
            for tasks in self.tasks
        ]
        for proc in self.procs:
            proc.start()

    def run(self, mode: str, url: str, work: Sequence[Work]) -> list[tuple[Any, ...]]:
        self.barrier.reset()
        for tasks, part in zip(self.tasks, work, strict=True):
            tasks.put((mode, url, part, BATCH))
        reports, failures = [], []
        for _ in self.procs:
            try:
                status, report = self.out.get(timeout=900)
            except queue.Empty:
                raise SystemExit(f"{mode}: the workers did not finish in 15 minutes") from None
            (reports if status == "ok" else failures).append(report)
        if failures:
            raise SystemExit(f"{mode}: a worker failed:\n{failures[0]}")
        return reports

    def close(self) -> None:
        for tasks in self.tasks:
            tasks.put(None)
        for proc in self.procs:
            proc.join(timeout=30)


def _slices(lines: Sequence[str], workers: int) -> list[list[str]]:
    """Disjoint slices, all of a ticket's events in one (in stream order)."""
    slices: list[list[str]] = [[] for _ in range(workers)]
    for line in lines:
        key = partition_key(Event.model_validate_json(line)) if workers > 1 else ""
        slices[zlib.crc32(key.encode()) % workers].append(line)
    return slices


def _written_rows(db: Database, *, batches: int, workers: int, after_seq: int) -> list[Work]:
    """Every row the engine left (audit entries after ``after_seq``, the ones a fresh database
    does not already have), read back and cut into ``batches`` commits, dealt to workers."""
    plans: list[list[dict[str, list[dict[str, Any]]]]] = [[] for _ in range(workers)]
    cut: list[dict[str, list[dict[str, Any]]]] = [{} for _ in range(batches)]
    with db.reader.connect() as conn:
        for table, order in _WRITTEN:
            query = select(table).order_by(order)
            if table is audit_log:
                query = query.where(audit_log.c.seq > after_seq)
            found = [dict(r._mapping) for r in conn.execute(query)]
            size = -(-len(found) // batches)
            for b in range(batches):
                cut[b][table.name] = found[b * size : (b + 1) * size]
    for b, tables in enumerate(cut):
        plans[b % workers].append(tables)
    return list(plans)


def measure(
    pool: Workers,
    backend: str,
    mode: str,
    work: Sequence[Work],
    events_n: int,
    *,
    scratch: Path,
    keep: int = 0,
    history: int = 0,
) -> tuple[Run, list[Work]]:
    """One timed run in a fresh database, one process per item of ``work``; checks afterwards that
    every event was stored. With ``keep`` (engine runs), also returns what the engine wrote, cut
    into ``keep`` commits, for a bare-all run."""
    written: list[Work] = []
    with fresh_database(backend, workdir=scratch) as url:
        fresh = prepare(url)
        with fresh.reader.connect() as conn:
            base_seq = conn.scalar(select(func.max(audit_log.c.seq))) or 0
        fresh.dispose()
        if history:
            first = next(line for part in work for line in part if isinstance(line, str))
            prefill_history(url, events=history, seed_event=Event.model_validate_json(first))
        reports = pool.run(mode, url, work)
        db = open_database(url)
        with db.reader.connect() as conn:
            stored = (conn.scalar(select(func.count()).select_from(events)) or 0) - history
            chained = conn.scalar(select(func.count()).select_from(audit_log)) or 0
        if keep:
            written = _written_rows(db, batches=keep, workers=len(work), after_seq=base_seq)
        db.dispose()
    statuses: Counter[str] = Counter()
    errors: dict[str, None] = {}
    for report in reports:
        statuses.update(report[2])
        errors.update(dict.fromkeys(report[5]))
    if stored != events_n - statuses.get("failed", 0):
        raise SystemExit(f"{backend}/{mode}: {stored} events stored of {events_n} ({dict(statuses)})")
    if mode == "engine" and chained - base_seq < 2 * (events_n - statuses.get("failed", 0)):
        raise SystemExit(f"{backend}/{mode}: only {chained} audit entries for {events_n} events")
    seconds = max(r[1] for r in reports) - min(r[0] for r in reports)
    run = Run(
        mode,
        seconds,
        events_n,
        dict(statuses),
        max(r[3] for r in reports),
        sum(r[4] for r in reports),
        tuple(errors),
    )
    return run, written


# -- HTTP ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (and its reaped children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


async def _post_raw(
    host: str, port: int, token: str, bodies: Iterator[bytes], statuses: Counter[int], latencies: list[float]
) -> None:
    """One keep-alive HTTP/1.1 connection posting bodies one after the other: a client that costs
    well under a millisecond of CPU per request, so the server is what is measured."""
    reader, writer = await asyncio.open_connection(host, port)
    head = f"POST /v1/events HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\n"
    head += "content-type: application/json\r\ncontent-length: "
    try:
        for body in bodies:
            sent = time.perf_counter()
            writer.write(b"%s%d\r\n\r\n%s" % (head.encode(), len(body), body))
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - sent)
            statuses[status] += 1
    finally:
        writer.close()


async def _post_httpx(
    base: str, token: str, bodies: Iterator[bytes], statuses: Counter[int], latencies: list[float]
) -> None:
    """The same with one httpx.AsyncClient per connection: a shared pool of many connections costs
    several ms of client CPU per request (encode/httpx#3215)."""
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
        for body in bodies:
            sent = time.perf_counter()
            response = await client.post("/v1/events", content=body)
            latencies.append(time.perf_counter() - sent)
            statuses[response.status_code] += 1


async def _post_all(
    port: int, token: str, bodies: Sequence[bytes], concurrency: int, client: str
) -> tuple[float, Counter[int], list[float]]:
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    todo = iter(bodies)  # shared: each connection takes the next body when it is free
    start = time.perf_counter()
    if client == "raw":
        senders = [_post_raw("127.0.0.1", port, token, todo, statuses, latencies) for _ in range(concurrency)]
    else:
        base = f"http://127.0.0.1:{port}"
        senders = [_post_httpx(base, token, todo, statuses, latencies) for _ in range(concurrency)]
    await asyncio.gather(*senders)
    return time.perf_counter() - start, statuses, latencies


def measure_http(
    stream: Sequence[Event], *, scratch: Path, concurrency: int, worker: bool, client: str
) -> dict[str, Any]:
    baton = str(Path(sys.executable).with_name("baton"))
    ws = scratch / f"ws-{client}-{'worker' if worker else 'api'}"
    env = {**os.environ, "BATON_LOG_LEVEL": "WARNING"}

    def cli(*args: str) -> str:
        done = subprocess.run([baton, *args, "--workspace", str(ws)], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"baton {' '.join(args)} failed: {done.stderr}")
        return done.stdout.strip()

    cli("init")
    cli("accounts", "load", str(DEMO_ACCOUNTS))
    token = cli("token", "create", "--role", "ingest").splitlines()[-1]
    port = _free_port()
    log = ws / "serve.log"  # a file, not a pipe: a full pipe would stall the server
    log_file = log.open("w")
    server = subprocess.Popen(
        [
            baton,
            "serve",
            "--workspace",
            str(ws),
            "--port",
            str(port),
            "--worker" if worker else "--no-worker",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("baton serve did not come up")
            time.sleep(0.1)
        bodies = [e.model_dump_json(exclude_none=True).encode() for e in stream]
        server_cpu = _cpu_seconds(server.pid)
        client_cpu = time.process_time()
        seconds, statuses, latencies = asyncio.run(_post_all(port, token, bodies, concurrency, client))
        server_cpu = _cpu_seconds(server.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log_file.close()
    if statuses.get(202, 0) != len(bodies):
        raise SystemExit(
            f"HTTP: expected {len(bodies)} x 202, got {dict(statuses)}\n{log.read_text()[-2000:]}"
        )
    latencies.sort()
    return {
        "worker": worker,
        "requests": len(bodies),
        "seconds": seconds,
        "rate": len(bodies) / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
    }


# -- main ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5,000 events and 1,000 HTTP requests")
    parser.add_argument("--events", type=int, help="events per run (default 20,000; 5,000 with --quick)")
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    parser.add_argument("--workers", default="1,4", help="comma-separated worker counts")
    parser.add_argument("--http-requests", type=int, help="HTTP requests (default 4,000; 1,000 quick)")
    parser.add_argument("--http-concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument("--http-client", choices=["raw", "httpx"], default="raw", help="HTTP client")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP measurement")
    parser.add_argument("--dir", default=None, help="folder for SQLite files (default: the temp dir)")
    parser.add_argument(
        "--history",
        type=int,
        help="earlier events for the history run (default 300,000; 100,000 quick; 0: skip)",
    )
    args = parser.parse_args(argv)
    if args.history is None:
        args.history = 100_000 if args.quick else 300_000
    n = args.events or (5_000 if args.quick else 20_000)
    http_n = args.http_requests or (1_000 if args.quick else 4_000)

    stream = realistic_stream(n)
    lines = [e.model_dump_json() for e in stream]
    print(f"baton ingest benchmark: {machine_note()}")
    print(
        f"stream: {len(stream):,} events from baton.demo.generate_stream, {create_share(stream):.0%} "
        f"ticket creates; batches of {BATCH}; SQLite with WAL and synchronous=FULL"
    )
    print("order per row: bare insert, engine, bare insert of all engine rows, bare insert again\n")
    counts = [int(w) for w in args.workers.split(",")]
    pools = {w: Workers(w) for w in sorted({*counts, 1})}
    try:
        run_all(args, n, http_n, lines, pools)
    finally:
        for pool in pools.values():
            pool.close()


def run_all(
    args: argparse.Namespace, n: int, http_n: int, lines: Sequence[str], pools: dict[int, Workers]
) -> None:
    rows: list[list[object]] = []
    details: list[str] = []
    with workdir(args.dir) as scratch:
        for backend in args.backends.split(","):
            for workers in (int(w) for w in args.workers.split(",")):
                pool = pools[workers]
                slices: list[Work] = list(_slices(lines, workers))
                commits = sum(-(-len(part) // BATCH) for part in slices)
                before, _ = measure(pool, backend, "bare", slices, n, scratch=scratch)
                run, written = measure(pool, backend, "engine", slices, n, scratch=scratch, keep=commits)
                floor, _ = measure(pool, backend, "bare-all", written, run.durable, scratch=scratch)
                after, _ = measure(pool, backend, "bare", slices, n, scratch=scratch)
                bare = max(before.rate, after.rate)
                failed = run.statuses.get("failed", 0)
                rows.append(
                    [
                        backend,
                        workers,
                        f"{run.events:,} ({failed:,} FAILED)" if failed else run.events,
                        run.seconds,
                        run.rate,
                        bare,
                        f"{run.rate / bare:.0%}",
                        floor.rate,
                        f"{run.rate / floor.rate:.0%}",
                        run.cpu_seconds / n * 1e6,
                    ]
                )
                details.append(
                    f"{backend} x{workers}: engine {run.statuses}, peak RSS per worker "
                    f"{run.peak_rss_mb:.0f} MB; bare insert {before.rate:,.0f} before, {after.rate:,.0f} "
                    f"after ({before.cpu_seconds / n * 1e6:.0f} and {after.cpu_seconds / n * 1e6:.0f} us "
                    f"CPU/event); all rows: {sum(floor.statuses.values()) / n:.1f} rows/event, "
                    f"{floor.cpu_seconds / n * 1e6:.0f} us CPU/event"
                    + "".join(f"\n    engine error: {e}" for e in run.errors)
                )
                print(
                    f"  measured {backend} x{workers}: {run.rate:,.0f} events/s, bare {bare:,.0f}", flush=True
                )
        print()
        print_table(
            [
                "backend",
                "workers",
                "events",
                "seconds",
                "events/s",
                "bare-insert events/s",
                "ratio",
                "all-rows insert events/s",
                "ratio",
                "engine CPU us/event",
            ],
            rows,
        )
        print(
            "\nbare insert: the same events rows only. all-rows insert: every row the engine left in the "
            "database\n(events, links, tickets, decisions, outbox, timers, audit log) inserted with the "
            "same number of commits,\nwithout the reads, re-upserts and timer cancellations: the floor "
            "of the engine's write volume.\nCPU us/event: user+system CPU of the worker processes per "
            "event (less noisy than wall time on a shared machine).\n"
        )
        for line in details:
            print(line)
        for row in rows:
            if row[0] == "sqlite" and row[1] == 1:
                rate, ratio = float(row[4]), float(row[4]) / float(row[5])  # type: ignore[arg-type]
                verdict = "met" if rate >= TARGET_EVENTS_PER_S and ratio >= TARGET_RATIO else "NOT met"
                print(
                    f"\ntarget (SQLite, 1 worker: >= {TARGET_EVENTS_PER_S:,} events/s and >= "
                    f"{TARGET_RATIO:.0%} of bare insert): {verdict} ({rate:,.0f} events/s, {ratio:.0%})"
                )

        if args.history and "sqlite" in args.backends.split(","):
            m = min(n, 5_000)
            print(
                f"\nhistory: SQLite, 1 worker, the first {m:,} events of the stream into a fresh database "
                f"and into one that already\nholds {args.history:,} earlier events (of {args.history // 5:,} "
                "tickets, with their links), as after some weeks of a busy deployment:"
            )
            one = [list(lines[:m])]
            fresh, _ = measure(pools[1], "sqlite", "engine", one, m, scratch=scratch)
            grown, _ = measure(pools[1], "sqlite", "engine", one, m, scratch=scratch, history=args.history)
            print_table(
                ["events before", "events/s", "engine CPU us/event", "events/s vs fresh", "CPU vs fresh"],
                [
                    [0, fresh.rate, fresh.cpu_seconds / m * 1e6, "100%", "100%"],
                    [
                        args.history,
                        grown.rate,
                        grown.cpu_seconds / m * 1e6,
                        f"{grown.rate / fresh.rate:.0%}",
                        f"{grown.cpu_seconds / fresh.cpu_seconds:.0%}",
                    ],
                ],
            )

        if not args.no_http:
            client_note = (
                "keep-alive HTTP/1.1 connections on asyncio streams"
                if args.http_client == "raw"
                else "httpx.AsyncClient, one per connection"
            )
            print(
                f"\nHTTP: baton serve (SQLite) as a subprocess; {http_n:,} POST /v1/events, one event each, "
                f"from {args.http_concurrency} {client_note} in this process.\nClient and server share the "
                f"{os.cpu_count()} cores (and the machine with whatever else runs on it)."
            )
            http_rows = []
            for worker in (False, True):
                r = measure_http(
                    realistic_stream(http_n, seed=11),
                    scratch=scratch,
                    concurrency=args.http_concurrency,
                    worker=worker,
                    client=args.http_client,
                )
                http_rows.append(
                    [
                        "serve --worker" if worker else "serve --no-worker",
                        r["requests"],
                        r["seconds"],
                        r["rate"],
                        r["p50_ms"],
                        r["p99_ms"],
                        r["server_cpu"] / r["requests"] * 1000,
                        r["client_cpu"] / r["requests"] * 1000,
                    ]
                )
            print_table(
                [
                    "server",
                    "requests",
                    "seconds",
                    "requests/s",
                    "p50 ms",
                    "p99 ms",
                    "server CPU ms/req",
                    "client CPU ms/req",
                ],
                http_rows,
            )
            print("(--worker: the server also runs its worker thread: timers and outbox delivery)")


if __name__ == "__main__":
    main()
