"""Operating the outbox and overriding the engine (capabilities X1 and X2), for the API and CLI.

- The dead-letter queue: list, show (with the action's whole record), retry, drop.
- Manual overrides: reassign, change tier or priority, pause or resume the SLA. These become
  ``override`` events that go through ``decide`` like any other event, so the ticket changes the
  same way and the decision records the actor and the reason. Cancelling a pending action is an
  outbox change, audited directly.

Every operation takes an actor and a reason, and leaves an audit entry on the ticket's timeline.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from baton import audit
from baton.audit import AuditRecord
from baton.clock import from_ms, to_ms
from baton.errors import InputError, NotFoundError
from baton.model import Actor, Event, EventType
from baton.store.schema import audit_log, outbox

__all__ = [
    "OVERRIDES",
    "cancel_action",
    "drop_action",
    "list_actions",
    "override_event",
    "retry_action",
    "show_action",
]

OVERRIDES = ("reassign", "tier", "priority", "pause_sla", "resume_sla")


def _row(conn: Connection, action_id: int, *, lock: bool) -> Any:
    query = select(outbox).where(outbox.c.id == action_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"no action {action_id}")
    return row


def _view(r: Any) -> dict[str, Any]:
    return {
        "id": int(r.id),
        "ticket_id": r.ticket_id,
        "status": r.status,
        "connector": r.connector,
        "kind": r.kind,
        "action": r.action_name,
        "rule": r.rule,
        "attempts": int(r.attempts),
        "failures": int(r.failures),
        "last_error": r.last_error,
        "key": r.idempotency_key,
        "created_at": from_ms(int(r.created_ms)).isoformat(),
        "available_at": from_ms(int(r.available_ms)).isoformat(),
    }


def list_actions(conn: Connection, *, status: str = "dead", limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(select(outbox).where(outbox.c.status == status).order_by(outbox.c.id).limit(limit))
    return [_view(r) for r in rows]


def show_action(conn: Connection, action_id: int) -> dict[str, Any]:
    """The action with its params and every audit entry about it (queued, attempts, outcome)."""
    row = _row(conn, action_id, lock=False)
    history = [
        {
            "seq": int(e.seq),
            "at": from_ms(int(e.at_ms)).isoformat(),
            "kind": e.kind,
            "body": json.loads(e.body),
        }
        for e in conn.execute(
            select(audit_log).where(audit_log.c.ticket_id == row.ticket_id).order_by(audit_log.c.seq)
        )
        if row.idempotency_key in e.body
    ]
    return {**_view(row), "params": row.params, "history": history}


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InputError("a reason is required")
    return reason[:1_000]


def _change(
    conn: Connection,
    action_id: int,
    *,
    allowed: tuple[str, ...],
    values: dict[str, Any],
    kind: str,
    actor: str,
    reason: str,
    at: datetime,
    is_postgres: bool,
) -> dict[str, Any]:
    why = _reason(reason)
    row = _row(conn, action_id, lock=is_postgres)
    # A claim whose lease ran out belongs to no live worker (one that renews it never lets it
    # lapse mid-send): as good as pending for what may be done to it.
    lapsed = row.status == "claimed" and (row.claimed_until_ms or 0) <= to_ms(at)
    if row.status not in allowed and not (lapsed and "pending" in allowed):
        raise InputError(
            f"action {action_id} is {row.status}; only {', '.join(allowed)} actions can be changed so"
        )
    conn.execute(update(outbox).where(outbox.c.id == action_id).values(**values))
    body = {"key": row.idempotency_key, "action": row.action_name, "actor": actor, "reason": why}
    audit.append(conn, [AuditRecord(kind, row.ticket_id, at, body)], is_postgres=is_postgres)
    return _view(_row(conn, action_id, lock=False))


def retry_action(
    conn: Connection, action_id: int, *, actor: str, reason: str, at: datetime, is_postgres: bool
) -> dict[str, Any]:
    """Put a dead-lettered action back in the outbox with a fresh set of attempts."""
    values = {
        "status": "pending",
        "attempts": 0,
        "failures": 0,
        "available_ms": to_ms(at),
        "claimed_by": None,
        "last_error": None,
    }
    return _change(
        conn, action_id, allowed=("dead",), values=values, kind="action.retried",
        actor=actor, reason=reason, at=at, is_postgres=is_postgres,
    )  # fmt: skip


def drop_action(
    conn: Connection, action_id: int, *, actor: str, reason: str, at: datetime, is_postgres: bool
) -> dict[str, Any]:
    """Give up on a dead-lettered action for good (it stays on the record)."""
    return _change(
        conn, action_id, allowed=("dead",), values={"status": "dropped"}, kind="action.dropped",
        actor=actor, reason=reason, at=at, is_postgres=is_postgres,
    )  # fmt: skip


def cancel_action(
    conn: Connection, action_id: int, *, actor: str, reason: str, at: datetime, is_postgres: bool
) -> dict[str, Any]:
    """Stop an action that has not left yet (pending, waiting for approval, being retried, or
    claimed by a worker whose lease ran out: it died)."""
    return _change(
        conn, action_id, allowed=("pending", "awaiting_approval"),
        values={"status": "cancelled", "claimed_by": None, "claimed_until_ms": None},
        kind="action.cancelled", actor=actor, reason=reason, at=at, is_postgres=is_postgres,
    )  # fmt: skip


def override_event(
    ticket_id: str, *, action: str, actor: str, reason: str, at: datetime, **values: str
) -> Event:
    """The canonical event for a manual override; ``decide`` applies it."""
    if action not in OVERRIDES:
        raise InputError(f"unknown override {action!r}; one of {', '.join(OVERRIDES)}")
    why = _reason(reason)
    identity = hashlib.sha256(f"{ticket_id}\0{action}\0{actor}\0{to_ms(at)}\0{values}".encode()).hexdigest()[
        :24
    ]
    return Event(
        source="baton.override",
        event_id=identity,
        type=EventType.OVERRIDE,
        occurred_at=at,
        ticket_id=ticket_id,
        actor=Actor(kind="agent", id=actor),
        data={"action": action, "reason": why, **{k: v for k, v in values.items() if v is not None}},
    )
