"""Echo expectations: what a connector wrote to a linked item, kept until it comes back or expires.

``record`` runs in the transaction that marks an action delivered; ``take`` runs in the ingest
transaction of the webhook events that may be the echo. A row matches one event at most: the
first event that reports the value consumes it, so a later, genuine change to the same value
by a person is news again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, delete, insert, select

from baton.store.repo import group_pairs
from baton.store.schema import echoes

__all__ = ["ECHO_TTL_MS", "FORESEEN_TTL_MS", "Expected", "consume", "creators", "record", "take"]

ECHO_TTL_MS = 3_600_000
"""How long a write is awaited: vendors deliver webhooks within seconds to minutes."""
FORESEEN_TTL_MS = 86_400_000
"""How long a write recorded before its send is awaited: the send may be retried for hours, and a
vendor retrying a webhook (Linear: after 1 and 6 hours) sends it again as late."""

Expected = dict[tuple[str, str], list[tuple[int, str, str]]]
"""By ``(system, external_id)``: ``(row id, field, value)`` still awaited."""


def record(
    conn: Connection,
    *,
    system: str,
    external_id: str,
    ticket_id: str,
    wrote: Mapping[str, str],
    now_ms: int,
    ttl_ms: int = ECHO_TTL_MS,
    renew: bool = False,
) -> None:
    """Await ``wrote`` on the item. ``renew``: the same expectation recorded again (each attempt
    of one send foresees the same write) replaces the earlier row instead of adding one."""
    rows = [
        {
            "system": system,
            "external_id": external_id[:256],
            "field": field[:32],
            "value": str(value)[:256],
            "ticket_id": ticket_id,
            "expires_ms": now_ms + ttl_ms,
        }
        for field, value in wrote.items()
        if value is not None
    ]
    if rows:
        conn.execute(delete(echoes).where(echoes.c.expires_ms < now_ms))  # keep the table small
        if renew:
            for row in rows:
                conn.execute(
                    delete(echoes).where(
                        echoes.c.system == row["system"],
                        echoes.c.external_id == row["external_id"],
                        echoes.c.field == row["field"],
                        echoes.c.value == row["value"],
                    )
                )
        conn.execute(insert(echoes), rows)


def take(conn: Connection, keys: Sequence[tuple[str, str]], *, now_ms: int) -> Expected:
    """What is still awaited for these items."""
    found: Expected = {}
    for system, ids in group_pairs(keys).items():
        rows = conn.execute(
            select(echoes.c.id, echoes.c.external_id, echoes.c.field, echoes.c.value)
            .where(echoes.c.system == system, echoes.c.external_id.in_(ids), echoes.c.expires_ms >= now_ms)
            .order_by(echoes.c.id)
        )
        for r in rows:
            found.setdefault((system, r.external_id), []).append((r.id, r.field, r.value))
    return found


def creators(awaited: Expected, keys: Sequence[tuple[str, str]], *, field: str) -> dict[tuple[str, str], str]:
    """The ticket each of ``keys`` is being created for, where a connector said so before its
    send (an expectation of ``field`` whose value is the ticket), read from what :func:`take`
    found: how an item's early webhooks find their ticket before the create's answer is
    recorded. Kept, not consumed: an item sends several webhooks."""
    found: dict[tuple[str, str], str] = {}
    for key in keys:
        for _, name, value in awaited.get(key, ()):
            if name == field:
                found.setdefault(key, value)  # the oldest: take lists them in the order recorded
                break
    return found


def consume(conn: Connection, ids: Sequence[int]) -> None:
    if ids:
        conn.execute(delete(echoes).where(echoes.c.id.in_(list(ids))))
