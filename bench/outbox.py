"""How fast the outbox delivers: actions/s through the real pipeline to a local HTTP stand-in.

    python bench/outbox.py            # 4,000 actions per run
    python bench/outbox.py --quick    # 1,000 actions per run

Run from the repository root. The target is the Standard Webhooks stand-in of the test suite
(``tests/standins/webhook.py``: it verifies every signature and applies each ``webhook-id``
once), in a process of its own, on loopback. Each action goes through everything a real one
does: claim under a lease, sent-log check, rate-limit and circuit-breaker stages, lease renewal
when needed, the signed POST through the SSRF-guarded client (plain http to an allowed loopback
address), then the sent-log row, the outbox row and the audit entry committed together.

The ceiling is measured in the same run: the same number of signed POSTs sent straight to the
stand-in by as many client processes as there are workers, with no database at all. The ratio
``delivered / ceiling`` is the figure to compare across machines, which are shared and noisy.

Rows: SQLite with one worker process, PostgreSQL with one and with four worker processes.
Each action is on a ticket of its own (the outbox keeps one ticket's actions in order, so a
single ticket's actions are delivered one round after another by design).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.standins

from _common import fresh_database, machine_note, print_table, workdir  # noqa: E402

from baton.clock import SystemClock, to_ms  # noqa: E402
from baton.connectors.base import OutboundAction  # noqa: E402
from baton.connectors.config import HttpConfig, WebhookConfig  # noqa: E402
from baton.connectors.webhook import WebhookConnector  # noqa: E402
from baton.engine.outbox import Outbox  # noqa: E402
from baton.store.db import open_database  # noqa: E402
from baton.store.schema import outbox  # noqa: E402

SECRET = "whsec_c3RhbmQtaW4gc2lnbmluZyBrZXk6IDMyIGJ5dGVzISE="  # noqa: S105 (the stand-in's test key)
HTTP = HttpConfig(allow=("127.0.0.1/32",), connect_timeout=2.0, read_timeout=5.0, total_timeout=10.0)


def _serve(port: Any, stop: Any, done: Any) -> None:
    from tests.standins.webhook import WebhookStandIn

    with WebhookStandIn(SECRET) as standin:
        port.put(standin.port)
        stop.wait()
        done.put((len(standin.requests), len(standin.effects), len(standin.rejected)))


class StandIn:
    """The stand-in in a process of its own, so it never competes with a worker for the GIL."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.port_q, self.done_q, self.stop = ctx.Queue(), ctx.Queue(), ctx.Event()
        self.proc = ctx.Process(target=_serve, args=(self.port_q, self.stop, self.done_q), daemon=True)
        self.proc.start()
        self.url = f"http://127.0.0.1:{self.port_q.get(timeout=30)}/hooks/baton"

    def close(self) -> tuple[int, int, int]:
        self.stop.set()
        counts: tuple[int, int, int] = self.done_q.get(timeout=30)
        self.proc.join(timeout=10)
        return counts


def _connector(url: str) -> WebhookConnector:
    return WebhookConnector(WebhookConfig(url=url, secret=SecretStr(SECRET), http=HTTP), clock=SystemClock())


def _client(url: str, keys: Sequence[str], start: Any, out: Any) -> None:
    """The ceiling: the connector's own signed POSTs, straight to the stand-in."""
    connector = _connector(url)
    start.wait()
    began = time.perf_counter()
    for key in keys:
        connector.send(OutboundAction(key, "T-bench", "webhook", "notify", {"text": "hello"}, 1))
    out.put(time.perf_counter() - began)
    connector.close()


def _worker(db_url: str, url: str, name: str, start: Any, out: Any) -> None:
    db = open_database(db_url)
    box = Outbox(
        db=db,
        connectors={"webhook": _connector(url)},
        clock=SystemClock(),
        worker=name,
        lease=timedelta(seconds=60),
    )
    start.wait()
    began, delivered, idle = time.perf_counter(), 0, 0
    while idle < 3:  # three empty rounds in a row: the others finished what is left
        stats = box.deliver(limit=100)
        delivered += stats.delivered
        idle = idle + 1 if stats.claimed == 0 else 0
        if stats.claimed == 0:
            time.sleep(0.02)
    out.put((delivered, time.perf_counter() - began))
    db.dispose()


def _parallel(target: Any, args_per_proc: Sequence[tuple[Any, ...]]) -> list[Any]:
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, start, out)) for a in args_per_proc]
    for p in procs:
        p.start()
    time.sleep(1.5)  # let every process import and connect before the clock starts
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return results


def _fill(db_url: str, n: int, run: str) -> None:
    db = open_database(db_url)
    db.migrate()
    now = to_ms(SystemClock().now())
    rows = [
        {
            "idempotency_key": f"{run}{i:060d}"[-64:],
            "ticket_id": f"T-{run}-{i}",
            "decision_id": f"D-{run}-{i}",
            "action_name": "bench.notify",
            "connector": "webhook",
            "kind": "notify",
            "params": {"to": "ops", "text": f"ticket {i} needs you", "ticket": f"T-{run}-{i}"},
            "status": "pending",
            "attempts": 0,
            "available_ms": now,
            "created_ms": now,
        }
        for i in range(n)
    ]
    with db.write() as conn:
        conn.execute(insert(outbox), rows)
    db.dispose()


def _done(db_url: str) -> int:
    db = open_database(db_url)
    with db.reader.connect() as conn:
        count = conn.execute(select(func.count()).where(outbox.c.status == "done")).scalar_one()
    db.dispose()
    return int(count)


def measure(backend: str, workers: int, n: int, scratch: Path, run: str) -> list[object]:
    standin = StandIn()
    try:
        keys = [f"c{run}{i:060d}"[-64:] for i in range(n)]
        shares = [keys[w::workers] for w in range(workers)]
        spans = _parallel(_client, [(standin.url, share) for share in shares])
        ceiling = n / max(spans)
        with fresh_database(backend, workdir=scratch) as db_url:
            _fill(db_url, n, run)
            results = _parallel(_worker, [(db_url, standin.url, f"bench-{w}") for w in range(workers)])
            delivered = sum(r[0] for r in results)
            # The last worker to see the queue empty waited out its idle rounds: use the busiest span.
            seconds = max(r[1] for r in results) - 3 * 0.02
            done = _done(db_url)
    finally:
        requests, effects, rejected = standin.close()
    rate = delivered / seconds
    if done != n or effects != 2 * n or rejected:
        print(f"  WARNING {backend} x{workers}: done {done}/{n}, effects {effects}, rejected {rejected}")
    return [backend, workers, n, delivered, seconds, rate, ceiling, f"{rate / ceiling:.0%}", requests - 2 * n]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1,000 actions per run")
    parser.add_argument("--actions", type=int, help="actions per run (default 4,000; 1,000 with --quick)")
    parser.add_argument(
        "--runs", default="sqlite:1,postgres:1,postgres:4", help="comma-separated backend:workers"
    )
    parser.add_argument("--dir", default=None, help="folder for SQLite files (default: the temp dir)")
    args = parser.parse_args(argv)
    n = args.actions or (1_000 if args.quick else 4_000)
    print(f"baton outbox benchmark: {machine_note()}")
    print(f"{n:,} actions per run, one per ticket, to the Standard Webhooks stand-in on loopback\n")
    rows = []
    with workdir(args.dir) as scratch:
        for i, spec in enumerate(args.runs.split(",")):
            backend, _, workers = spec.partition(":")
            row = measure(backend, int(workers or 1), n, scratch, run=f"{i}")
            print(
                f"  measured {backend} x{row[1]}: {row[5]:,.0f} actions/s, ceiling {row[6]:,.0f}/s",
                flush=True,
            )
            rows.append(row)
    print()
    print_table(
        [
            "store",
            "workers",
            "actions",
            "delivered",
            "seconds",
            "actions/s",
            "ceiling req/s",
            "ratio",
            "retries",
        ],
        rows,
    )
    print(
        "\nceiling: the same signed POSTs sent straight to the stand-in by as many processes as workers; "
        "ratio: delivered actions/s over it; retries: requests beyond one per action"
    )


if __name__ == "__main__":
    main()
