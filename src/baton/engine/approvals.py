"""The approvals queue (capability D4): actions that wait for a person before they leave.

A rule with ``approval: required`` queues its actions as ``awaiting_approval``. An approver
releases them (they join the outbox as pending) or rejects them, always with a reason; both are
audited. The approver must belong to the policy's ``approvers`` role (when it names one) and must
not be the rule's recorded author: nobody approves their own rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from baton import audit
from baton.audit import AuditRecord
from baton.clock import from_ms, to_ms
from baton.errors import AuthError, InputError, NotFoundError
from baton.policy.model import Policy
from baton.store.schema import outbox

__all__ = ["Verdict", "approvers_of", "decide_approval", "pending_approvals"]


@dataclass(frozen=True)
class Verdict:
    id: int
    status: str
    ticket_id: str


def pending_approvals(conn: Connection, *, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(outbox).where(outbox.c.status == "awaiting_approval").order_by(outbox.c.id).limit(limit)
    )
    return [
        {
            "id": r.id,
            "ticket_id": r.ticket_id,
            "rule": r.rule,
            "author": r.author,
            "connector": r.connector,
            "kind": r.kind,
            "params": r.params,
            "queued_at": from_ms(r.created_ms).isoformat(),
        }
        for r in rows
    ]


def approvers_of(policy: Policy) -> frozenset[str] | None:
    """The people who may approve under ``policy``: everyone who can fill its ``approvers`` role
    (the pool, or every person in the role's schedule, and the backup); None when the policy names
    no role, and then any approver token may."""
    if policy.approvers is None:
        return None
    role = policy.roles[policy.approvers]
    members = set(role.members)
    if role.schedule is not None and role.schedule in policy.schedules:
        schedule = policy.schedules[role.schedule]
        members.update(person for layer in schedule.layers for person in layer.members)
        members.update(override.person for override in schedule.overrides)
    if role.backup:
        members.add(role.backup)
    return frozenset(members)


def decide_approval(
    conn: Connection,
    *,
    action_id: int,
    approve: bool,
    actor: str,
    reason: str,
    at: datetime,
    is_postgres: bool,
    approvers: frozenset[str] | None = None,
) -> Verdict:
    reason = reason.strip()
    if not reason:
        raise InputError("a reason is required")
    query = select(outbox).where(outbox.c.id == action_id)
    if is_postgres:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None or row.status != "awaiting_approval":
        raise NotFoundError(f"no action {action_id} awaiting approval")
    if approvers is not None and actor not in approvers:
        raise AuthError(f"{actor!r} is not one of the policy's approvers", forbidden=True)
    if approve and row.author and row.author == actor:
        raise AuthError(f"{actor!r} wrote rule {row.rule!r} and may not approve its actions", forbidden=True)
    status = "pending" if approve else "rejected"
    conn.execute(update(outbox).where(outbox.c.id == action_id).values(status=status, available_ms=to_ms(at)))
    audit.append(
        conn,
        [
            AuditRecord(
                "action.approved" if approve else "action.rejected",
                row.ticket_id,
                at,
                {
                    "key": row.idempotency_key,
                    "action": row.action_name,
                    "rule": row.rule,
                    "actor": actor,
                    "reason": reason[:1_000],
                },
            )
        ],
        is_postgres=is_postgres,
    )
    return Verdict(action_id, status, row.ticket_id)
