"""The handoff brief (capability H1): what the next owner needs, and a completeness check.

Fields: summary, what the customer reported, steps tried, artifacts, account context, urgency,
reason for escalation, and the next open question. Agents fill ``steps_tried`` and
``next_question`` (and may override any other) through ``data.brief`` on an event; the rest is
derived from the ticket and its context.
"""

from __future__ import annotations

from baton.engine.env import ticket_view
from baton.model import Context, Event, Owner, Ticket

__all__ = ["BRIEF_FIELDS", "brief", "brief_values", "missing_fields"]

BRIEF_FIELDS = (
    "summary",
    "customer_report",
    "steps_tried",
    "artifacts",
    "account",
    "urgency",
    "reason",
    "next_question",
)


def brief(ticket: Ticket, context: Context, *, reason: str = "") -> dict[str, str]:
    account = context.account
    derived = {
        "summary": ticket.subject,
        "customer_report": ticket.body[:2_000],
        "artifacts": ", ".join(a.name for a in ticket.artifacts),
        "account": (
            f"{account.name or account.id} · plan {account.plan or '?'} · MRR {account.mrr or '?'}"
            f" · renewal {account.renewal_date or '?'} · health {account.health or '?'}"
            if account
            else ""
        ),
        "urgency": f"{ticket.priority.value}" + (f", severity {ticket.severity}" if ticket.severity else ""),
        "reason": reason,
        "steps_tried": "",
        "next_question": "",
    }
    return {**derived, **{k: v for k, v in ticket.brief.items() if k in BRIEF_FIELDS and v}}


def missing_fields(ticket: Ticket, context: Context, required: tuple[str, ...]) -> tuple[str, ...]:
    filled = brief(ticket, context, reason="set by the rule")
    return tuple(name for name in required if not filled.get(name, "").strip())


def brief_values(
    ticket: Ticket,
    event: Event,
    context: Context,
    *,
    rule: str,
    target: Owner | None,
    view: dict[str, object] | None = None,
    only: frozenset[str] | None = None,
) -> dict[str, object]:
    """Everything a template may use, or of it ``only`` what a template reads (see
    ``Templates.uses``). ``view`` is ``ticket_view(ticket)`` when the caller has it already
    (templates cannot change it: the sandbox refuses to modify a dict)."""
    values: dict[str, object] = {}
    if only is None or "ticket" in only:
        values["ticket"] = ticket_view(ticket) if view is None else view
    if only is None or "account" in only:
        a = context.account
        values["account"] = (
            {
                "id": a.id,
                "name": a.name,
                "plan": a.plan,
                "mrr": a.mrr,
                "renewal_date": a.renewal_date,
                "ae": a.ae,
                "csm": a.csm,
            }
            if a
            else {}
        )
    if only is None or "brief" in only:
        values["brief"] = brief(ticket, context, reason=rule)
    values["rule"] = rule
    if only is None or "target" in only:
        values["target"] = {"role": target.role, "person": target.person} if target else None
    if only is None or "event" in only:
        values["event"] = {"type": event.type.value, "body": event.fields.body}
    return values
