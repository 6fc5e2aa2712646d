"""Jira Cloud and Jira Service Management: issue and comment webhooks.

Payloads as documented at https://developer.atlassian.com/cloud/jira/platform/webhooks/ (the same
page for Service Management, https://developer.atlassian.com/cloud/jira/service-desk/webhooks/):
``{"timestamp": <ms>, "webhookEvent": "jira:issue_updated", "user": {...}, "issue": {"id", "key",
"self", "fields": {...}}, "changelog": {"items": [{"field", "fromString", "toString"}]}}``, and for
comments ``{"webhookEvent": "comment_created", "comment": {"author", "body", "created",
"jsdPublic"}, "issue": {...}}``. Subscribe the webhook to ``jira:issue_created``,
``jira:issue_updated``, ``jira:issue_deleted`` and ``comment_created``.

=========================================  ==================================================
Jira                                       canonical events
=========================================  ==================================================
jira:issue_created                         ticket.created
jira:issue_updated, resolution set         ticket.solved
jira:issue_updated, resolution cleared     ticket.reopened
jira:issue_updated, status                 status.changed (by status category and name), or
                                           ticket.solved / ticket.reopened when the workflow
                                           sets no resolution
jira:issue_updated, priority               priority.changed
jira:issue_updated, assignee               ticket.assigned
jira:issue_updated, anything else          ticket.updated (once per delivery)
jira:issue_deleted                         ticket.closed
comment_created                            customer.replied (a JSM customer or the reporter),
                                           agent.replied (JSM, shared with the customer),
                                           note.added (internal, or plain Jira)
=========================================  ==================================================

One update can change several fields, so one delivery can give several events. The delivery id is
the ``X-Atlassian-Webhook-Identifier`` header, which Jira keeps the same when it retries a
delivery (https://developer.atlassian.com/cloud/jira/platform/webhooks/#retry-policy). The issue's
numeric ``id`` is the external id (a key changes when an issue moves project; the id does not).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from baton.errors import InputError
from baton.model import Event, EventType, ExternalLink, Priority, Stage
from baton.signals.adapters._template import normalise
from baton.signals.adapters.base import (
    CLAIMS_TICKET,
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

__all__ = ["JiraAdapter"]

DELIVERY_HEADER: Final = "X-Atlassian-Webhook-Identifier"
_PRIORITIES: Final = {
    "highest": Priority.URGENT,
    "blocker": Priority.URGENT,
    "critical": Priority.URGENT,
    "high": Priority.HIGH,
    "major": Priority.HIGH,
    "medium": Priority.NORMAL,
    "low": Priority.LOW,
    "lowest": Priority.LOW,
    "minor": Priority.LOW,
    "trivial": Priority.LOW,
}
# Status names that mean something more specific than their category (Service Management defaults).
_STATUS_NAMES: Final = {
    "waiting for customer": Stage.PENDING,
    "pending": Stage.PENDING,
    "closed": Stage.CLOSED,
    "canceled": Stage.CLOSED,
    "cancelled": Stage.CLOSED,
    "declined": Stage.CLOSED,
}
_CATEGORIES: Final = {"new": Stage.NEW, "indeterminate": Stage.OPEN, "done": Stage.SOLVED}
_DONE_NAMES: Final = frozenset({"done", "resolved", "closed", "canceled", "cancelled", "declined"})
_HANDLED: Final = frozenset({"status", "resolution", "priority", "assignee"})


class JiraAdapter:
    """Jira Cloud and Service Management webhooks (entry point ``jira``)."""

    source = "jira"

    def parse(self, delivery: Delivery) -> list[Event]:
        """The events of one delivery, in the order of its changelog."""
        payload = delivery.payload
        if not isinstance(payload, dict):
            raise InputError("a Jira webhook body is a JSON object")
        name = text(payload, "webhookEvent") or ""
        issue = obj(payload, "issue")
        issue_id = text(issue, "id")
        if name not in ("jira:issue_created", "jira:issue_updated", "jira:issue_deleted", "comment_created"):
            return []
        if issue_id is None:
            raise InputError(f"Jira {name} webhook has no issue.id")
        at = parse_time(payload.get("timestamp")) or delivery.received_at
        user = obj(payload, "user")
        if name == "jira:issue_created":
            drafts = [
                Draft(type=EventType.TICKET_CREATED, occurred_at=at, fields=_snapshot(issue, full=True))
            ]
        elif name == "jira:issue_deleted":
            drafts = [Draft(type=EventType.CLOSED, occurred_at=at, data={"deleted": True})]
        elif name == "comment_created":
            drafts = [_comment(obj(payload, "comment"), issue, at)]
        else:
            drafts = _changes(seq(payload, "changelog", "items"), issue, at)
        if user and name != "comment_created":
            drafts = [_with_actor(d, user) for d in drafts]
        key = text(issue, "key")
        data: dict[str, Any] = {"key": key, "webhook_event": name}
        claimed = baton_ticket(seq(obj(issue, "fields"), "labels"))
        if claimed is not None:
            data[CLAIMS_TICKET] = claimed  # a label anyone can add: the engine decides whether it holds
        drafts = [replace(d, data={**data, **d.data}) for d in drafts]
        return build_events(
            source=self.source,
            delivery_id=header(delivery.headers, DELIVERY_HEADER) or content_id(delivery.body),
            external=ExternalLink(system=self.source, id=issue_id, url=_browse_url(issue, key)),
            drafts=drafts,
        )


_TICKET_LABEL = re.compile(r"^baton-t-([0-9a-f]{16})$")


def baton_ticket(labels: list[Any]) -> str | None:
    """The Baton ticket an issue says it belongs to, from the ``baton-t-<id>`` label the Jira
    connector puts on every issue it opens (connectors/jira.py ``ticket_label``). Anyone can add a
    label, so this is only a claim (``data.claims_ticket``): the engine honours it for an issue
    not linked yet while that ticket's ``create_issue`` is in flight, which is when Baton's own
    issue's webhooks can arrive before the create's answer (:func:`baton.store.repo.creating_issues`)."""
    for label in labels:
        found = _TICKET_LABEL.match(label) if isinstance(label, str) else None
        if found:
            return f"T-{found.group(1)}"
    return None


def _changes(items: list[Any], issue: dict[str, Any], at: datetime) -> list[Draft]:
    changes = [i for i in items if isinstance(i, dict)]
    fields_changed = {text(i, "fieldId") or text(i, "field") for i in changes}
    drafts: list[Draft] = []
    updated = False
    for item in changes:
        field = text(item, "fieldId") or text(item, "field")
        before, after = text(item, "fromString"), text(item, "toString")
        change = {"field": field, "from": before, "to": after}
        if field == "resolution":
            kind = EventType.SOLVED if after else EventType.REOPENED
            drafts.append(Draft(type=kind, occurred_at=at, data={"change": change}))
        elif field == "status" and "resolution" not in fields_changed:
            drafts.append(_status_change(before, after, issue, at, change))
        elif field == "priority":
            priority = _PRIORITIES.get(normalise(after or ""))
            drafts.append(
                Draft(
                    type=EventType.PRIORITY_CHANGED,
                    occurred_at=at,
                    fields={"priority": priority},
                    data={"change": change},
                )
            )
        elif field == "assignee":
            drafts.append(
                Draft(
                    type=EventType.ASSIGNED,
                    occurred_at=at,
                    fields={"assignee": _assignee(issue, after)},
                    data={"change": change},
                )
            )
        elif field not in _HANDLED and not updated:
            updated = True
            drafts.append(
                Draft(type=EventType.TICKET_UPDATED, occurred_at=at, fields=_snapshot(issue, full=False))
            )
    return drafts


def _status_change(
    before: str | None, after: str | None, issue: dict[str, Any], at: datetime, change: dict[str, Any]
) -> Draft:
    current = obj(issue, "fields", "status")
    category = text(current, "statusCategory", "key") if text(current, "name") == after else None
    stage = _stage(after, category)
    if stage == Stage.SOLVED:
        kind = EventType.SOLVED
    elif (
        before is not None and normalise(before) in _DONE_NAMES and stage not in (Stage.SOLVED, Stage.CLOSED)
    ):
        kind = EventType.REOPENED
    else:
        kind = EventType.STATUS_CHANGED
    fields = {"status": stage} if kind == EventType.STATUS_CHANGED else {}
    return Draft(type=kind, occurred_at=at, fields=fields, data={"change": change})


def _stage(name: str | None, category: str | None) -> Stage | None:
    if name is not None and normalise(name) in _STATUS_NAMES:
        return _STATUS_NAMES[normalise(name)]
    if category is not None:
        return _CATEGORIES.get(category)
    if name is not None and normalise(name) in _DONE_NAMES:
        return Stage.SOLVED
    return None


def _snapshot(issue: dict[str, Any], *, full: bool) -> dict[str, Any]:
    fields = obj(issue, "fields")
    reporter = obj(fields, "reporter")
    snapshot: dict[str, Any] = {
        "subject": text(fields, "summary"),
        "priority": _PRIORITIES.get(normalise(text(fields, "priority", "name") or "")),
        "tags": tags(seq(fields, "labels")),
        "category": text(fields, "issuetype", "name"),
        "channel": "jira",
        "requester": text(reporter, "emailAddress") or text(reporter, "displayName"),
    }
    if full:
        status = obj(fields, "status")
        assignee = obj(fields, "assignee")
        snapshot |= {
            "body": _body_text(fields.get("description")),
            "status": _stage(text(status, "name"), text(status, "statusCategory", "key")),
            "assignee": text(assignee, "emailAddress") or text(assignee, "displayName"),
        }
    return snapshot


def _comment(comment: dict[str, Any], issue: dict[str, Any], at: datetime) -> Draft:
    author = obj(comment, "author")
    reporter = text(issue, "fields", "reporter", "accountId")
    body = _body_text(comment.get("body"))
    public = comment.get("jsdPublic")
    # Service Management (the comment has jsdPublic): the reporter is the customer, even one with
    # an Atlassian account. In plain Jira the reporter is a colleague.
    is_customer = text(author, "accountType") == "customer" or (
        public is not None and reporter is not None and text(author, "accountId") == reporter
    )
    if is_customer:
        kind, fields, data = EventType.CUSTOMER_REPLIED, {"body": body}, {}
    else:
        kind = EventType.AGENT_REPLIED if public is True else EventType.NOTE_ADDED
        fields, data = {}, {"comment": body[:10_000] if body else None}
    actor = {
        "kind": "customer" if is_customer else "agent",
        "id": text(author, "accountId"),
        "name": text(author, "displayName"),
        "email": text(author, "emailAddress"),
    }
    when = parse_time(text(comment, "created")) or at
    return Draft(
        type=kind,
        occurred_at=when,
        fields=fields,
        actor=actor,
        data={**data, "comment_id": text(comment, "id")},
    )


def _assignee(issue: dict[str, Any], name: str | None) -> str:
    current = obj(issue, "fields", "assignee")
    if name is not None and text(current, "displayName") == name:
        return text(current, "emailAddress") or name
    return name or ""  # an empty assignee is the statement "unassigned"


def _with_actor(draft: Draft, user: dict[str, Any]) -> Draft:
    actor = {
        "kind": "customer" if text(user, "accountType") == "customer" else "agent",
        "id": text(user, "accountId"),
        "name": text(user, "displayName"),
        "email": text(user, "emailAddress"),
    }
    return replace(draft, actor=actor)


def _browse_url(issue: dict[str, Any], key: str | None) -> str | None:
    """``https://<site>/browse/<KEY>`` from the issue's REST ``self`` URL."""
    parts = urlsplit(text(issue, "self") or "")
    if key is None or parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}/browse/{key}"


def _body_text(value: Any) -> str | None:
    """Jira sends wiki-markup text in webhooks; API v3 style bodies are ADF documents."""
    if isinstance(value, str):
        return value.strip() or None
    if not isinstance(value, dict):
        return None
    lines: list[str] = []
    stack: list[Any] = [value]
    current: list[str] = []
    # Depth-first, in document order: children pushed reversed. Blocks end a line.
    while stack:
        node = stack.pop()
        if node == "\n":
            lines.append("".join(current))
            current = []
            continue
        if not isinstance(node, dict):
            continue
        if node.get("type") == "text" and isinstance(node.get("text"), str):
            current.append(node["text"])
        children = node.get("content")
        if isinstance(children, list):
            if node.get("type") in ("paragraph", "heading", "listItem", "codeBlock", "blockquote"):
                stack.append("\n")
            stack.extend(reversed(children))
    lines.append("".join(current))
    joined = "\n".join(line for line in lines if line.strip()).strip()
    return joined or None
