"""Linear: data-change webhooks for issues and comments.

Payloads as documented at https://linear.app/developers/webhooks ("Data change events"): one
object per delivery::

    {"action": "create" | "update" | "remove", "type": "Issue" | "Comment" | ...,
     "actor": {"id", "type", "name", "email"}, "createdAt": "<iso8601>",
     "data": {...the entity...}, "url": "https://linear.app/...",
     "updatedFrom": {...previous values of the fields an update changed...},
     "webhookTimestamp": <Unix ms>, "webhookId": "...", "organizationId": "..."}

An ``Issue`` is ``{"id", "identifier", "title", "description", "priority" (0 none, 1 urgent, 2
high, 3 medium, 4 low), "state": {"id", "name", "type"}, "assigneeId", "labels": [{"name"}],
"team": {"key", "name"}, "createdAt", "updatedAt", ...}``; a ``Comment`` is ``{"id", "body",
"issueId", "user": {...}, "createdAt"}``. The signature (``Linear-Signature``) and the freshness
of ``webhookTimestamp`` are checked by the endpoint (:func:`baton.signals.signatures.verify_linear`).

==============================  ==================================================================
Linear                          canonical events
==============================  ==================================================================
Issue create                    ticket.created
Issue update, state             status.changed, the stage read from the state's type (see below)
Issue update, priority          priority.changed (urgent, high, normal, low; "no priority": none)
Issue update, assignee          ticket.assigned (the Linear user id; ``""`` when unassigned)
Issue update, anything else     ticket.updated (once per delivery: title, labels...)
Issue remove                    ticket.closed (``data.removed``)
Comment create                  note.added (Linear comments are the team's own)
==============================  ==================================================================

Other types (projects, cycles, labels, reactions...) and comment edits are acknowledged and
ignored. A state is read as a stage by its type (:data:`STATE_STAGES`): triage, backlog and
unstarted are ``new``, started is ``open``, completed is ``solved``, canceled is ``closed``; the
state's name and type stay in ``data``. One update can change several fields, so one delivery
can give several events.

Which ticket: the issue's UUID (``data.id``; ``data.issueId`` for a comment) is the external id,
as the Linear connector links the issues it creates. Only that id says which ticket an issue
belongs to: the issue's link, or, while Baton's create is still in flight, the id Baton chose for
it (Linear takes client ids; the outbox records it with the attempt, and the engine finds it with
:func:`baton.store.echoes.creators`). The ``baton-ticket: <ticket>`` line that ends the
descriptions Baton writes is for people and is stripped from the text: anyone in the workspace
can write it, so it names no ticket. Baton's own
writes coming back (a priority, assignee or state its ``sync`` set) report the values the
connector recorded as written, so the engine recognises the echo and does not act on it again.

The delivery id names the change itself, from the signed body: the type, the action, the entity's
id and, for an issue, its ``updatedAt`` and a digest of ``updatedFrom`` (a comment is created
once). Linear's own retries of a
delivery (a fresh ``webhookTimestamp``, the same ``Linear-Delivery`` header) and a captured body
posted again under another header both name the same change, so both are duplicates; the header
is not signed, so it cannot be what tells two changes apart. Without those fields the id is the
``Linear-Delivery`` header, else ``webhookId`` with ``webhookTimestamp``, else the SHA-256 of the
body.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

import orjson

from baton.errors import InputError
from baton.model import Event, EventType, ExternalLink, Priority, Stage
from baton.signals.adapters.base import (
    MAX_ID_LENGTH,
    Delivery,
    Draft,
    build_events,
    content_id,
    header,
    obj,
    parse_time,
    seq,
    tags,
    text,
)

__all__ = ["DELIVERY_HEADER", "PRIORITIES", "STATE_STAGES", "LinearAdapter"]

DELIVERY_HEADER: Final = "Linear-Delivery"
STATE_STAGES: Final = {
    "triage": Stage.NEW,
    "backlog": Stage.NEW,
    "unstarted": Stage.NEW,
    "started": Stage.OPEN,
    "completed": Stage.SOLVED,
    "canceled": Stage.CLOSED,
}
"""A workflow state's type read as a Baton stage (the Linear connector records its writes so)."""
PRIORITIES: Final = {1: Priority.URGENT, 2: Priority.HIGH, 3: Priority.NORMAL, 4: Priority.LOW}
_MARKER: Final = re.compile(r"^baton-ticket: (T-[0-9a-f]{16})[ \t]*$", re.MULTILINE)
# Fields an update touches along with the ones mapped above, or that no one reads as news.
_QUIET: Final = frozenset(
    {
        "updatedAt", "sortOrder", "boardOrder", "subIssueSortOrder", "prioritySortOrder",
        "priorityLabel", "startedAt", "completedAt", "canceledAt", "startedTriageAt", "triagedAt",
        "autoClosedAt", "autoArchivedAt", "stateId", "priority", "assigneeId",
    }
)  # fmt: skip


class LinearAdapter:
    """Linear data-change webhooks (entry point ``linear``)."""

    source = "linear"

    def parse(self, delivery: Delivery) -> list[Event]:
        """The events of one delivery: an issue's changes, or a new comment on an issue."""
        payload = delivery.payload
        if not isinstance(payload, dict):
            raise InputError("a Linear webhook body is a JSON object")
        kind, action = text(payload, "type"), text(payload, "action")
        if action not in ("create", "update", "remove"):
            raise InputError('a Linear webhook names its "action": create, update or remove')
        data = obj(payload, "data")
        if kind == "Issue":
            issue_id, url = text(data, "id"), text(payload, "url")
            drafts = _issue(action, data, obj(payload, "updatedFrom"), delivery.received_at)
        elif kind == "Comment" and action == "create":
            issue_id, url = text(data, "issueId") or text(data, "issue", "id"), None
            drafts = [_comment(data, delivery.received_at)]
        else:
            return []
        if issue_id is None or len(issue_id) > MAX_ID_LENGTH:
            raise InputError(
                f"Linear {kind} {action} webhook names no issue (an id of at most 256 characters)"
            )
        actor = _actor(obj(payload, "actor"))
        base = {"action": action, "type": kind, "identifier": text(data, "identifier")}
        drafts = [replace(d, actor=d.actor or actor, data={**base, **d.data}) for d in drafts]
        return build_events(
            source=self.source,
            delivery_id=_change_id(kind, action, data, obj(payload, "updatedFrom"))
            or _delivery_id(delivery, payload),
            external=ExternalLink(system=self.source, id=issue_id, url=_web_url(url)),
            drafts=drafts,
        )


def _change_id(kind: str | None, action: str, data: dict[str, Any], before: dict[str, Any]) -> str | None:
    """The change a delivery reports, named by signed fields: the same for Linear's retries of it
    and for a replay of its body (see the module docstring); None when the body lacks them.
    ``updatedFrom`` (the previous values) is part of it, as a digest: Linear does not move
    ``updatedAt`` for every field, so two changes may share one."""
    entity = text(data, "id")
    if entity is None:
        return None
    if kind == "Comment":
        return f"Comment:{action}:{entity}"
    updated = text(data, "updatedAt")
    if not updated:
        return None
    digest = (
        hashlib.sha256(orjson.dumps(before, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16] if before else "-"
    )
    return f"{kind}:{action}:{entity}:{updated}:{digest}"


def _delivery_id(delivery: Delivery, payload: dict[str, Any]) -> str:
    stamp = payload.get("webhookTimestamp")
    webhook = text(payload, "webhookId")
    fallback = f"{webhook}:{stamp}" if webhook and isinstance(stamp, int) else content_id(delivery.body)
    return header(delivery.headers, DELIVERY_HEADER) or fallback


def _issue(action: str, data: dict[str, Any], before: dict[str, Any], received: datetime) -> list[Draft]:
    at = parse_time(text(data, "updatedAt")) or parse_time(text(data, "createdAt")) or received
    state = {"state": text(data, "state", "name"), "state_type": text(data, "state", "type")}
    if action == "create":
        at = parse_time(text(data, "createdAt")) or at
        return [
            Draft(
                type=EventType.TICKET_CREATED, occurred_at=at, fields=_snapshot(data, full=True), data=state
            )
        ]
    if action == "remove":
        return [Draft(type=EventType.CLOSED, occurred_at=at, data={"removed": True})]
    drafts: list[Draft] = []
    if "stateId" in before:
        change = {**state, "from_state_id": text(before, "stateId")}
        drafts.append(
            Draft(type=EventType.STATUS_CHANGED, occurred_at=at, fields={"status": _stage(data)}, data=change)
        )
    if "priority" in before:
        priority = _priority(data.get("priority"))
        change = {"priority_label": text(data, "priorityLabel"), "from_priority": before.get("priority")}
        if priority is not None:
            drafts.append(
                Draft(
                    type=EventType.PRIORITY_CHANGED,
                    occurred_at=at,
                    fields={"priority": priority},
                    data=change,
                )
            )
        else:  # "no priority" is not a Baton priority: the change is recorded, nothing is set
            drafts.append(Draft(type=EventType.TICKET_UPDATED, occurred_at=at, data=change))
    if "assigneeId" in before:
        assignee = text(data, "assigneeId") or text(data, "assignee", "id") or ""
        drafts.append(
            Draft(
                type=EventType.ASSIGNED,
                occurred_at=at,
                fields={"assignee": assignee},
                data={"assignee_name": text(data, "assignee", "name")},
            )
        )
    others = sorted(key for key in before if key not in _QUIET)
    if others:
        drafts.append(
            Draft(
                type=EventType.TICKET_UPDATED,
                occurred_at=at,
                fields=_snapshot(data, full=False),
                data={"changed": others[:50]},
            )
        )
    return drafts


def _snapshot(data: dict[str, Any], *, full: bool) -> dict[str, Any]:
    names = [label for label in seq(data, "labels") if isinstance(label, dict)]
    snapshot: dict[str, Any] = {
        "subject": text(data, "title"),
        "tags": tags(names) if names else None,
        "channel": "linear",
    }
    if full:
        description = _MARKER.sub("", text(data, "description") or "").strip()
        snapshot |= {
            "body": description or None,
            "priority": _priority(data.get("priority")),
            "status": _stage(data),
            "assignee": text(data, "assigneeId") or text(data, "assignee", "id"),
            "team": text(data, "team", "key"),
        }
    return snapshot


def _comment(data: dict[str, Any], received: datetime) -> Draft:
    user = obj(data, "user")
    body = text(data, "body")
    return Draft(
        type=EventType.NOTE_ADDED,
        occurred_at=parse_time(text(data, "createdAt")) or received,
        actor={
            "kind": "agent",
            "id": text(data, "userId") or text(user, "id"),
            "name": text(user, "name"),
            "email": text(user, "email"),
        },
        data={"comment": body[:10_000] if body else None, "comment_id": text(data, "id")},
    )


def _stage(data: dict[str, Any]) -> Stage | None:
    return STATE_STAGES.get(text(data, "state", "type") or "")


def _priority(value: Any) -> Priority | None:
    return PRIORITIES.get(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _actor(actor: dict[str, Any]) -> dict[str, Any] | None:
    if not actor:
        return None
    return {
        "kind": "agent" if text(actor, "type") in (None, "user") else "system",
        "id": text(actor, "id"),
        "name": text(actor, "name"),
        "email": text(actor, "email"),
    }


def _web_url(url: str | None) -> str | None:
    """Only ``https://`` links are kept: the URL is shown to people as a link."""
    return url if url is not None and url.startswith("https://") and len(url) <= 2_048 else None
