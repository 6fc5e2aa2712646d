"""The data a policy expression sees: ``ticket``, ``account``, ``event``, ``signals``, ``now``.

Plain dicts and lists (what the expression language reads), built from the frozen domain values.
Field names here are the policy language's vocabulary, documented in docs/policy.md.
"""

from __future__ import annotations

from datetime import datetime

from baton.model import Account, Context, Event, Owner, Ticket

__all__ = ["VIEWED_FIELDS", "account_view", "environment", "event_view", "ticket_view"]

# The ticket fields ``ticket_view`` reads: a change to any other field leaves the view as it was.
VIEWED_FIELDS = frozenset(
    {
        "id", "subject", "body", "channel", "requester", "account_id", "category", "severity",
        "priority", "tier", "stage", "stage_since", "queue", "team", "owner", "communication_owner",
        "tags", "created_at", "updated_at", "first_response_at", "reopen_count", "customer_replies",
        "agent_replies", "escalations", "external_links", "brief",
    }
)  # fmt: skip


def ticket_view(t: Ticket) -> dict[str, object]:
    return {
        "id": t.id,
        "subject": t.subject,
        "body": t.body,
        "text": f"{t.subject}\n{t.body}",
        "channel": t.channel,
        "requester": t.requester,
        "account_id": t.account_id,
        "category": t.category,
        "severity": t.severity,
        "priority": t.priority.value,
        "tier": t.tier,
        "stage": t.stage.value,
        "stage_since": t.stage_since,
        "queue": t.queue,
        "team": t.team,
        "owner": {"role": t.owner.role, "person": t.owner.person} if t.owner else None,
        "communication_owner": _owner(t.communication_owner or t.owner),
        "split": t.communication_owner is not None,
        "tags": list(t.tags),
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "first_response_at": t.first_response_at,
        "reopen_count": t.reopen_count,
        "customer_replies": t.customer_replies,
        "agent_replies": t.agent_replies,
        "escalations": [e.rule.removeprefix("escalation.") for e in t.escalations],
        "escalation_count": len(t.escalations),
        "links": [link.system for link in t.external_links],
        "brief": dict(t.brief),
    }


def _owner(owner: Owner | None) -> dict[str, object] | None:
    return {"role": owner.role, "person": owner.person} if owner else None


def account_view(a: Account | None) -> dict[str, object]:
    if a is None:
        return {}
    return {
        "id": a.id,
        "name": a.name,
        "plan": a.plan,
        "mrr": a.mrr,
        "arr": a.arr,
        "renewal_date": a.renewal_date,
        "health": a.health,
        "csm": a.csm,
        "ae": a.ae,
        "flags": list(a.flags),
    }


def event_view(event: Event) -> dict[str, object]:
    return {
        "type": event.type.value,
        "source": event.source,
        "actor": event.actor.kind if event.actor else None,
        "body": event.fields.body,
        "data": event.data,
    }


def environment(ticket: Ticket, event: Event, context: Context, now: datetime) -> dict[str, object]:
    return {
        "ticket": ticket_view(ticket),
        "account": account_view(context.account),
        "event": event_view(event),
        "signals": dict(context.signals),
        "now": now,
    }
