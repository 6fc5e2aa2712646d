"""The data a policy expression sees: ``ticket``, ``account``, ``event``, ``signals``, ``now``.

Plain dicts and lists (what the expression language reads), built from the frozen domain values.
Field names here are the policy language's vocabulary, documented in docs/policy.md.
"""

from __future__ import annotations

from datetime import datetime

from baton.model import Context, Event, Ticket

__all__ = ["environment", "ticket_view"]


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


def environment(ticket: Ticket, event: Event, context: Context, now: datetime) -> dict[str, object]:
    a = context.account
    account: dict[str, object] = (
        {
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
        if a is not None
        else {}
    )
    return {
        "ticket": ticket_view(ticket),
        "account": account,
        "event": {
            "type": event.type.value,
            "source": event.source,
            "actor": event.actor.kind if event.actor else None,
            "body": event.fields.body,
            "data": event.data,
        },
        "signals": dict(context.signals),
        "now": now,
    }
