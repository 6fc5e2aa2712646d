"""Linked work: what a decision writes back to the systems the ticket is linked to, and echoes.

A ticket is often known to several systems at once (the helpdesk ticket, a Jira issue, a
Salesforce case). ``baton.yaml``'s ``sync`` says which of Baton's changes each system should
hear about. At the end of a decision, every synced field whose value changed becomes one
``sync`` action per linked system, carrying the new values in Baton's words and a one-line note.

Two guards keep the systems from talking in circles:

* a value the event itself reported from a system is not written back to that system (Zendesk
  said the priority is high: Baton does not tell Zendesk the priority is high);
* an event the engine recognised as the echo of a change Baton wrote (``data.echo``, set by the
  runtime from what connectors reported writing) changes nothing: it is recorded, with a reason,
  and not acted on a second time. Without this, a stale echo (Baton set ``high`` then ``urgent``;
  the webhook for ``high`` arrives last) would undo Baton's own later change and write it back.

Everything here is pure.
"""

from __future__ import annotations

from pydantic import JsonValue

from baton.model import Action, Event, Ticket
from baton.policy.model import Policy, SyncTarget

__all__ = ["ECHO_TYPES", "links_param", "reported", "sync_actions"]

# Only field-carrying updates can be echoes of a field Baton wrote; a reply is always news, and a
# note only when it is not the very comment Baton posted (see engine.runtime ``_mark_echo``).
ECHO_TYPES = frozenset({"ticket.updated", "status.changed", "priority.changed", "ticket.assigned"})


def links_param(ticket: Ticket) -> dict[str, JsonValue]:
    """``{system: external_id}`` of the ticket's links, the latest per system: handed to rule
    actions so a connector knows which issue, case or ticket to act on."""
    return {link.system: link.id for link in ticket.external_links}


def reported(event: Event) -> dict[str, str]:
    """The synced fields an event reports, as strings in Baton's words."""
    f = event.fields
    values = {
        "assignee": f.assignee,
        "team": f.team,
        "tier": f.tier,
        "priority": f.priority.value if f.priority is not None else None,
        "status": f.status.value if f.status is not None else None,
    }
    return {k: v for k, v in values.items() if v is not None}


def _values(ticket: Ticket | None, target: SyncTarget, policy: Policy) -> dict[str, str | None]:
    if ticket is None:
        return dict.fromkeys(target.fields)
    person = ticket.owner.person if ticket.owner else None
    member = policy.members.get(person) if person else None
    every: dict[str, str | None] = {
        # A person is written as their identity in that system; without one they cannot be named.
        "assignee": member.identities.get(target.system) if member else None,
        "team": ticket.team,
        "tier": ticket.tier,
        "priority": ticket.priority.value,
        "status": ticket.stage.value,
    }
    return {name: every[name] for name in target.fields}


def sync_actions(before: Ticket | None, after: Ticket, event: Event, policy: Policy) -> list[Action]:
    """One ``sync`` action per linked system whose synced fields changed in this decision."""
    if not policy.sync or not after.external_links:
        return []
    links: dict[str, str] = {}
    for link in after.external_links:
        links[link.system] = link.id
    from_event = reported(event)
    actions: list[Action] = []
    for target in policy.sync:
        external_id = links.get(target.system)
        if external_id is None:
            continue
        old, new = _values(before, target, policy), _values(after, target, policy)
        changes: dict[str, JsonValue] = {}
        for name in target.fields:
            value = new[name]
            if value is None or value == old[name]:
                continue
            if before is None and name == "status":
                continue  # opening a ticket is not a status anyone decided
            if event.source == target.system and from_event.get(name) == value:
                continue  # the system told us this; telling it back would be an echo
            changes[name] = value
        if not changes:
            continue
        note = "Baton: " + "; ".join(f"{name} {old[name] or '-'} -> {changes[name]}" for name in changes)
        actions.append(
            Action(
                name=f"sync.{target.system}",
                connector=target.connector,
                kind="sync",
                params={
                    "ticket": after.id,
                    "system": target.system,
                    "external_id": external_id,
                    "changes": changes,
                    "note": note,
                },
                rule="sync",
            )
        )
    return actions
