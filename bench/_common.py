"""What the benchmarks share: a realistic event stream, fresh databases, and table printing.

Not a public module; the scripts next to it import it as ``_common`` (run them as
``python bench/<name>.py`` from the repository root).
"""

from __future__ import annotations

import os
import resource
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, create_engine, text

from baton.bootstrap import tune_gc
from baton.clock import Clock, SystemClock, to_ms
from baton.demo import generate_stream
from baton.engine.decide import new_ticket_id
from baton.engine.runtime import Engine
from baton.enrich.accounts import read_accounts_csv
from baton.model import Account, Event
from baton.policy import versions
from baton.policy.loader import load_policy, policy_files
from baton.store import repo
from baton.store.db import Database, open_database

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_POLICY = ROOT / "examples" / "policy"
DEMO_ACCOUNTS = ROOT / "src" / "baton" / "demo" / "accounts.csv"
PG_ADMIN_URL = os.environ.get("BATON_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def demo_accounts() -> list[Account]:
    return [row.account for row in read_accounts_csv(DEMO_ACCOUNTS) if row.account]


def realistic_stream(events: int, *, seed: int = 7) -> list[Event]:
    """``events`` canonical events from the demo generator: about 21% ticket creates, the rest
    replies, status changes, solves and reopens of those tickets, in time order.

    4,500 tickets over 48 hours give about 21,000 events; the ticket count scales with ``events``
    so that the mix stays the same at every size.
    """
    tickets = max(10, round(events * 4_500 / 21_000 * 1.05))
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    accounts = [a.id for a in demo_accounts()]
    return generate_stream(tickets=tickets, start=start, hours=48, accounts=accounts, seed=seed)[:events]


def create_share(stream: Sequence[Event]) -> float:
    return sum(1 for e in stream if e.type.value == "ticket.created") / max(len(stream), 1)


def partition_key(event: Event) -> str:
    """What keeps one ticket's events on one worker (and so in order)."""
    if event.ticket_id:
        return event.ticket_id
    if event.external is not None:
        return f"{event.external.system}\0{event.external.id}"
    return f"{event.source}\0{event.event_id}"


def event_row(event: Event, *, received_ms: int) -> dict[str, Any]:
    """The row ``Engine.ingest`` writes to ``events`` for this event (minus the generated ``seq``)."""
    return {
        "source": event.source,
        "event_id": event.event_id,
        "ticket_id": event.ticket_id or new_ticket_id(event),
        "type": event.type.value,
        "occurred_ms": to_ms(event.occurred_at),
        "received_ms": received_ms,
        "body": event.model_dump(mode="json", exclude_none=True),
    }


@contextmanager
def fresh_database(backend: str, *, workdir: Path) -> Iterator[str]:
    """A URL to an empty database, removed afterwards: a SQLite file under ``workdir`` or a
    PostgreSQL schema of its own (``search_path`` set through the URL, as the tests do)."""
    name = f"b_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        folder = workdir / name
        folder.mkdir(parents=True)
        try:
            yield f"sqlite:///{folder / 'baton.db'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    if backend != "postgres":
        raise ValueError(f"unknown backend {backend!r}")
    admin = create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{name}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def prepare(url: str) -> Database:
    """Migrate ``url``, load the demo accounts (the context every decision looks up) and record the
    example policy as the active version, as ``build_runtime`` does at start-up."""
    db = open_database(url)
    db.migrate()
    policy = load_policy(EXAMPLE_POLICY)
    with db.write() as conn:
        repo.upsert_accounts(conn, demo_accounts())
        versions.activate(
            conn,
            files=policy_files(EXAMPLE_POLICY),
            name=policy.name,
            actor="bench",
            at=SystemClock().now(),
            is_postgres=db.is_postgres,
        )
    return db


def engine_for(db: Database, *, clock: Clock | None = None) -> Engine:
    """An engine wired as ``build_runtime`` wires one (including its garbage-collector tuning)."""
    engine = Engine(db=db, policy=load_policy(EXAMPLE_POLICY), clock=clock or SystemClock())
    tune_gc()
    return engine


@contextmanager
def workdir(base: str | None) -> Iterator[Path]:
    """A scratch folder for SQLite files (on the disk being measured; /tmp is the root disk here)."""
    path = Path(tempfile.mkdtemp(prefix="baton-bench-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def bulk_insert(
    conn: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert many rows at driver level (JSON columns as text): COPY on PostgreSQL, executemany on
    SQLite. For setting up large tables quickly, never for what is being measured."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        dbapi = conn.connection.driver_connection
        with dbapi.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", list(rows))


def prefill_history(url: str, *, events: int, seed_event: Event) -> float:
    """Put ``events`` earlier events (five per ticket, one external link per ticket) in the database,
    as a deployment accumulates them; returns the seconds it took."""
    started = time.perf_counter()
    body = orjson.dumps(seed_event.model_dump(mode="json", exclude_none=True)).decode()
    db = open_database(url)
    chunk = 100_000
    for start in range(0, events, chunk):
        ids = range(start, min(events, start + chunk))
        with db.writer.begin() as conn:
            bulk_insert(
                conn,
                "events",
                ("source", "event_id", "ticket_id", "type", "occurred_ms", "received_ms", "body"),
                [("zendesk", f"zd-h{i}", f"T-h{i // 5}", "agent.replied", 0, 0, body) for i in ids],
            )
            bulk_insert(
                conn,
                "external_links",
                ("system", "external_id", "ticket_id", "url"),
                [("zendesk", f"h{i // 5}", f"T-h{i // 5}", None) for i in ids if i % 5 == 0],
            )
    if db.is_postgres:
        with db.writer.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    db.dispose()
    return time.perf_counter() - started


def maxrss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    ``VmHWM`` rather than ``getrusage``: ``ru_maxrss`` survives ``exec``, so a spawned worker would
    report its parent's size at fork time instead of its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    """Start this process's high-water mark afresh (Linux: ``clear_refs`` 5), so that a process
    reused for several measurements reports each one's own peak."""
    with suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(pct / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def machine_note() -> str:
    return f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


__all__ = [
    "DEMO_ACCOUNTS",
    "EXAMPLE_POLICY",
    "ROOT",
    "bulk_insert",
    "create_share",
    "demo_accounts",
    "engine_for",
    "event_row",
    "fresh_database",
    "machine_note",
    "maxrss_mb",
    "partition_key",
    "percentile",
    "prefill_history",
    "prepare",
    "print_table",
    "realistic_stream",
    "reset_peak_rss",
    "wall_ms",
    "workdir",
]
