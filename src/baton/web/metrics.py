"""``GET /metrics``: the store's state in the Prometheus text format, for alerting on Baton itself.

Every figure is read from the database at scrape time, so it is the same whichever process
answers and however many workers run: outbox actions by status (the dead-letter queue is
``status="dead"``) and the age of the oldest waiting one, timers by status and how many are
overdue, each connector's circuit (``state`` label, 1 for the current one) and failure count,
tickets by stage, the newest event sequence number (a counter: its rate is the ingest rate) and
the length of the audit chain. Reading needs the ``read`` role, like the rest of the API;
Prometheus sends the token with ``authorization: {credentials: ...}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, func, select

from baton.clock import to_ms
from baton.engine.breaker import circuit_states
from baton.store.db import Database
from baton.store.schema import audit_head, events, outbox, tickets, timers

__all__ = ["StoreCollector", "metrics_router"]

_CIRCUIT_STATES = ("closed", "open", "half_open")


class StoreCollector(Collector):
    """Reads the figures from the store on each ``collect``."""

    def __init__(self, db: Database, now: Callable[[], datetime]) -> None:
        self.db = db
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now()
        with self.db.reader.connect() as conn:
            yield from _outbox(conn, to_ms(now))
            yield from _timers(conn, to_ms(now))
            yield from _circuits(conn, now)
            yield from _tickets(conn)
            yield from _chain(conn)


def _by_status(conn: Connection, table: object) -> dict[str, int]:
    rows = conn.execute(select(table.c.status, func.count().label("n")).group_by(table.c.status))  # type: ignore[attr-defined]
    return {str(r.status): int(r.n) for r in rows}


def _outbox(conn: Connection, now_ms: int) -> Iterator[Metric]:
    family = GaugeMetricFamily("baton_outbox_actions", "Outbox actions by status.", labels=["status"])
    counts = _by_status(conn, outbox)
    for status in sorted({"pending", "claimed", "done", "dead", *counts}):
        family.add_metric([status], counts.get(status, 0))
    yield family
    oldest = conn.execute(
        select(func.min(outbox.c.created_ms)).where(outbox.c.status.in_(("pending", "claimed")))
    ).scalar_one()
    yield GaugeMetricFamily(
        "baton_outbox_oldest_waiting_seconds",
        "Age of the oldest action not yet delivered (0 when none waits).",
        value=max(now_ms - int(oldest), 0) / 1000 if oldest is not None else 0.0,
    )


def _timers(conn: Connection, now_ms: int) -> Iterator[Metric]:
    family = GaugeMetricFamily("baton_timers", "Durable timers by status.", labels=["status"])
    for status, n in sorted(_by_status(conn, timers).items()):
        family.add_metric([status], n)
    yield family
    overdue = conn.execute(
        select(func.count()).where(timers.c.status == "pending", timers.c.due_ms < now_ms)
    ).scalar_one()
    yield GaugeMetricFamily("baton_timers_overdue", "Pending timers past their due time.", value=int(overdue))


def _circuits(conn: Connection, now: datetime) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "baton_connector_circuit_state",
        "Each connector's circuit breaker: 1 for its current state.",
        labels=["connector", "state"],
    )
    failures = GaugeMetricFamily(
        "baton_connector_failures", "Consecutive failures counted by the breaker.", labels=["connector"]
    )
    for circuit in circuit_states(conn, now=now):
        for name in _CIRCUIT_STATES:
            state.add_metric([circuit["connector"], name], 1 if circuit["state"] == name else 0)
        failures.add_metric([circuit["connector"]], circuit["failures"])
    yield state
    yield failures


def _tickets(conn: Connection) -> Iterator[Metric]:
    family = GaugeMetricFamily("baton_tickets", "Tickets by stage.", labels=["stage"])
    rows = conn.execute(select(tickets.c.stage, func.count().label("n")).group_by(tickets.c.stage))
    for r in sorted(rows, key=lambda r: str(r.stage)):
        family.add_metric([str(r.stage)], int(r.n))
    yield family


def _chain(conn: Connection) -> Iterator[Metric]:
    newest = conn.execute(select(func.max(events.c.seq))).scalar_one()
    yield CounterMetricFamily(
        "baton_events", "Events stored (the newest sequence number).", value=int(newest or 0)
    )
    length = conn.execute(select(audit_head.c.seq)).scalar()
    yield GaugeMetricFamily("baton_audit_entries", "Entries on the audit chain.", value=int(length or 0))


def metrics_router(
    *, db: Database, now: Callable[[], datetime], reader: Callable[..., Awaitable[object]]
) -> APIRouter:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(db, now))
    router = APIRouter()

    @router.get("/metrics", tags=["ops"], response_class=Response)
    def metrics(_who: object = Depends(reader)) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
