"""Read-side queries for the API, dashboard and CLI."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, func, select

from baton.clock import from_ms
from baton.model import Ticket, load
from baton.store.schema import audit_log, events, outbox, tickets, timers

__all__ = ["count_tickets", "get_ticket", "list_tickets", "stats", "timeline"]


def list_tickets(
    conn: Connection,
    *,
    stage: str | None = None,
    owner: str | None = None,
    queue: str | None = None,
    limit: int = 50,
    before_ms: int | None = None,
) -> list[dict[str, Any]]:
    """Most recently updated first; page with ``before_ms`` (the last row's ``updated_ms``)."""
    query = select(
        tickets.c.id,
        tickets.c.subject,
        tickets.c.stage,
        tickets.c.priority,
        tickets.c.tier,
        tickets.c.queue,
        tickets.c.owner_role,
        tickets.c.owner_person,
        tickets.c.account_id,
        tickets.c.created_ms,
        tickets.c.updated_ms,
    )
    if stage:
        query = query.where(tickets.c.stage == stage)
    if owner:
        query = query.where(tickets.c.owner_person == owner)
    if queue:
        query = query.where(tickets.c.queue == queue)
    if before_ms is not None:
        query = query.where(tickets.c.updated_ms < before_ms)
    query = query.order_by(tickets.c.updated_ms.desc(), tickets.c.id).limit(limit)
    return [
        {
            "id": r.id,
            "subject": r.subject,
            "stage": r.stage,
            "priority": r.priority,
            "tier": r.tier,
            "queue": r.queue,
            "owner": {"role": r.owner_role, "person": r.owner_person} if r.owner_role else None,
            "account_id": r.account_id,
            "created_at": from_ms(r.created_ms).isoformat(),
            "updated_at": from_ms(r.updated_ms).isoformat(),
            "updated_ms": r.updated_ms,
        }
        for r in conn.execute(query)
    ]


def count_tickets(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(tickets.c.stage, func.count().label("n")).group_by(tickets.c.stage))
    return {r.stage: int(r.n) for r in rows}


def get_ticket(conn: Connection, ticket_id: str) -> Ticket | None:
    row = conn.execute(select(tickets.c.state).where(tickets.c.id == ticket_id)).first()
    return None if row is None else load(Ticket, row.state)


def timeline(conn: Connection, ticket_id: str) -> list[dict[str, Any]]:
    """The ticket's record in order: events (with their content), decisions, actions, outcomes."""
    bodies = {
        (r.source, r.event_id): r.body
        for r in conn.execute(
            select(events.c.source, events.c.event_id, events.c.body).where(events.c.ticket_id == ticket_id)
        )
    }
    items = []
    rows = conn.execute(select(audit_log).where(audit_log.c.ticket_id == ticket_id).order_by(audit_log.c.seq))
    for row in rows:
        body = json.loads(row.body)
        item: dict[str, Any] = {
            "seq": int(row.seq),
            "at": from_ms(int(row.at_ms)).isoformat(),
            "kind": row.kind,
            "body": body,
            "hash": row.hash,
        }
        if row.kind == "event.received":
            item["event"] = bodies.get((body.get("source"), body.get("event_id")))
        items.append(item)
    return items


def stats(conn: Connection) -> dict[str, Any]:
    def by_status(table: Any) -> dict[str, int]:
        rows = conn.execute(select(table.c.status, func.count().label("n")).group_by(table.c.status))
        return {r.status: int(r.n) for r in rows}

    return {
        "tickets": count_tickets(conn),
        "events": int(conn.execute(select(func.count()).select_from(events)).scalar_one()),
        "outbox": by_status(outbox),
        "timers": by_status(timers),
        "audit_entries": int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one()),
    }
