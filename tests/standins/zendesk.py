"""A Zendesk Support stand-in: the Ticketing API endpoints the Zendesk connector uses.

As documented at https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/ (show and
update ticket, ``safe_update``), .../tickets/ticket_comments/ (list comments, cursor pagination),
.../ticketing/ticket-management/tags/ (add, set and remove tags),
https://developer.zendesk.com/api-reference/introduction/security-and-authentication/ (API tokens)
and https://developer.zendesk.com/api-reference/introduction/rate-limits/ (429, Retry-After, headers):

* Auth: HTTP basic ``{email}/token:{api_token}``; anything else is 401
  ``{"error": "Couldn't authenticate you"}``.
* ``GET /api/v2/tickets/{id}``: ``{"ticket": {...}}``; an unknown ticket is 404
  ``{"error": "RecordNotFound", "description": "Not found"}``.
* ``PUT /api/v2/tickets/{id}`` with ``{"ticket": {...}}``: ``status``, ``priority``,
  ``assignee_id`` / ``assignee_email`` (agents only), ``group_id``, ``tags`` / ``additional_tags`` /
  ``remove_tags``, ``comment`` (``body`` or ``html_body``, ``public`` defaults to true; at most 5000
  comments a ticket). Problems are 422 ``{"error": "RecordInvalid", "description": "Record
  validation errors", "details": {field: [{"description", "error"}]}}``; any change to a closed
  ticket is 422 with ``Status: closed prevents ticket update`` (``ClosedPreventsUpdate``). With
  ``safe_update`` and an ``updated_stamp`` other than the ticket's ``updated_at`` it is 409
  ``{"error": "UpdateConflict", ...}``. Answers ``{"ticket", "audit": {"id", "events": [...]}}``.
* ``GET /api/v2/tickets/{id}/comments``: ``sort_order`` (asc, desc), ``page[size]`` (at most 100),
  ``page[after]``; answers ``{"comments", "meta": {"has_more", "after_cursor", "before_cursor"}}``.
* ``PUT`` / ``POST`` / ``DELETE /api/v2/tickets/{id}/tags`` with ``{"tags": [...]}``: add, set,
  remove; answers ``{"tags": [...]}``.
* Rate limits: every answer carries ``x-rate-limit``, ``x-rate-limit-remaining``,
  ``ratelimit-limit``, ``ratelimit-remaining`` and ``ratelimit-reset``; a ticket takes at most
  ``update_limit`` updates (Zendesk: 30 per 10 minutes per user and ticket), then 429 with
  ``Retry-After``. Other 429s are injected with ``Fault.rate_limited``.

Assumed where the docs show no example: the exact wording of the 409, of "not valid" 422 details and
of the 429 body; 400 ``{"error": "InvalidJSON"}`` for an unreadable body; ``closed`` and a return to
``new`` refused with 422 (Zendesk sets ``closed`` itself and a ticket cannot go back to New).

Two faults that need the vendor's state: ``lose_response(path)`` applies the next matching PUT and
then drops the connection without answering (the effect happened, the client never hears of it);
``touch(ticket, **fields)`` changes a ticket right after its next read (an agent editing meanwhile).
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.standins.server import Received, Reply, StandIn, _Handler

__all__ = ["AGENTS", "GROUPS", "SELF", "Comment", "Ticket", "ZendeskStandIn"]

SELF = 900  # the agent the API token belongs to
AGENTS = {SELF: "baton@acme.example", 1001: "ann@acme.example", 1002: "bob@acme.example"}
GROUPS = {20: "Billing", 21: "Platform"}
_STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
_PRIORITIES = ("low", "normal", "high", "urgent")
_EPOCH = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_LOSE = "x-standin-lose"
_TICKET = re.compile(r"^/api/v2/tickets/(\d+)(?:\.json)?(/comments|/tags)?(?:\.json)?$")


@dataclass
class Comment:
    id: int
    author_id: int
    public: bool
    body: str
    html_body: str
    created_at: str

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "Comment",
            "author_id": self.author_id,
            "body": self.body,
            "html_body": self.html_body,
            "plain_body": re.sub(r"<[^>]+>", "", self.body),
            "public": self.public,
            "created_at": self.created_at,
            "attachments": [],
        }


@dataclass
class Ticket:
    id: int
    subject: str
    status: str = "open"
    priority: str | None = "normal"
    assignee_id: int | None = None
    group_id: int | None = None
    tags: list[str] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    updated_at: str = ""
    updates: int = 0

    def view(self, base: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": f"{base}/api/v2/tickets/{self.id}.json",
            "subject": self.subject,
            "status": self.status,
            "priority": self.priority,
            "assignee_id": self.assignee_id,
            "group_id": self.group_id,
            "tags": list(self.tags),
            "requester_id": 5001,
            "updated_at": self.updated_at,
        }


class _LosingHandler(_Handler):
    """Drops the connection instead of sending a reply the stand-in marked as lost."""

    def _encode(self, reply: Reply) -> bytes:
        if _LOSE in reply.headers:
            self._drop(reset=False)
            self.wfile = io.BytesIO()  # the base handler writes the (empty) answer here, not to the socket
            return b""
        return super()._encode(reply)


class ZendeskStandIn(StandIn):
    def __init__(
        self, email: str, token: str, *, update_limit: int = 30, tls: tuple[Path, Path] | None = None
    ) -> None:
        super().__init__(tls=tls)
        self._server.RequestHandlerClass = _LosingHandler
        self.credential = base64.b64encode(f"{email}/token:{token}".encode()).decode()
        self.update_limit = update_limit
        self.budget = 700  # requests left this minute, as the rate-limit headers report it
        self.tickets: dict[int, Ticket] = {}
        self._seq = 0
        self._clock = 0
        self._lose: list[tuple[str, str]] = []
        self._touch: dict[int, dict[str, Any]] = {}

    # -- setup and faults --------------------------------------------------------------------

    def add_ticket(self, subject: str = "Checkout fails", **fields: Any) -> Ticket:
        self._seq += 1
        ticket = Ticket(10_000 + self._seq, subject, **fields)
        ticket.updated_at = self._now()
        self.tickets[ticket.id] = ticket
        return ticket

    def lose_response(self, path: str, method: str = "PUT") -> None:
        """Apply the next ``method`` request whose path ends with ``path``, then drop the connection."""
        with self._lock:
            self._lose.append((method, path))

    def touch(self, ticket: int, **fields: Any) -> None:
        """Change ``ticket`` right after its next read, as an agent saving meanwhile would."""
        with self._lock:
            self._touch[ticket] = fields

    def calls(self, method: str, suffix: str = "") -> list[Received]:
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    def _now(self) -> str:
        self._clock += 1
        return (_EPOCH + timedelta(seconds=self._clock)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, request: Received) -> Reply:
        self.budget = max(self.budget - 1, 0)
        limits = {
            "x-rate-limit": "700",
            "x-rate-limit-remaining": str(self.budget),
            "ratelimit-limit": "700",
            "ratelimit-remaining": str(self.budget),
            "ratelimit-reset": "60",
        }
        reply = self._dispatch(request)
        headers = {**reply.headers, **limits}
        lost = next((m for m in self._lose if request.method == m[0] and request.path.endswith(m[1])), None)
        if reply.status < 300 and lost is not None:
            self._lose.remove(lost)
            headers[_LOSE] = "1"
        return Reply(reply.status, reply.body, headers)

    def _dispatch(self, request: Received) -> Reply:
        if request.headers.get("authorization") != f"Basic {self.credential}":
            return Reply.of(401, {"error": "Couldn't authenticate you"})
        match = _TICKET.match(request.path)
        if match is None:
            return Reply.of(404, {"error": "InvalidEndpoint", "description": "Not found"})
        ticket = self.tickets.get(int(match.group(1)))
        if ticket is None:
            return Reply.of(404, {"error": "RecordNotFound", "description": "Not found"})
        sub, method = match.group(2), request.method
        if sub is None and method == "GET":
            reply = Reply.of(200, {"ticket": ticket.view(self.url)})
            if (changes := self._touch.pop(ticket.id, None)) is not None:
                for name, value in changes.items():
                    setattr(ticket, name, value)
                ticket.updated_at = self._now()
            return reply
        if sub is None and method == "PUT":
            return self._update(ticket, request)
        if sub == "/comments" and method == "GET":
            return self._comments(ticket, request.query)
        if sub == "/tags" and method in ("PUT", "POST", "DELETE"):
            return self._tags(ticket, request)
        return Reply.of(405, {"error": "MethodNotAllowed", "description": f"{method} is not allowed"})

    # -- endpoints -------------------------------------------------------------------------

    def _update(self, ticket: Ticket, request: Received) -> Reply:
        try:
            body = json.loads(request.body)
        except ValueError:
            return Reply.of(400, {"error": "InvalidJSON", "description": "The request body is not JSON"})
        data = body.get("ticket") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return _invalid({"ticket": ["is missing"]})
        if ticket.status == "closed":
            return _invalid({"status": [("Status: closed prevents ticket update", "ClosedPreventsUpdate")]})
        if data.get("safe_update") in (True, "true") and data.get("updated_stamp") != ticket.updated_at:
            return Reply.of(
                409,
                {
                    "error": "UpdateConflict",
                    "description": "Safe Update prevented the update due to outdated ticket data. "
                    "Please fetch the latest ticket data and try again.",
                },
            )
        problems = self._problems(ticket, data)
        if problems:
            return _invalid(problems)
        if (limited := self._limited(ticket)) is not None:
            return limited
        events: list[dict[str, Any]] = []
        assignee = data.get("assignee_id")
        if "assignee_email" in data:
            assignee = next(i for i, e in AGENTS.items() if e == data["assignee_email"])
        for name, value in (
            ("status", data.get("status")),
            ("priority", data.get("priority")),
            ("assignee_id", assignee),
            ("group_id", data.get("group_id")),
        ):
            if value is not None and getattr(ticket, name) != value:
                events.append(
                    {
                        "type": "Change",
                        "field_name": name,
                        "value": value,
                        "previous_value": getattr(ticket, name),
                    }
                )
                setattr(ticket, name, value)
        before = list(ticket.tags)
        tags = list(data["tags"]) if isinstance(data.get("tags"), list) else ticket.tags
        tags += [t for t in data.get("additional_tags") or [] if t not in tags]
        ticket.tags = [t for t in dict.fromkeys(tags) if t not in (data.get("remove_tags") or [])]
        if ticket.tags != before:
            events.append(
                {"type": "Change", "field_name": "tags", "value": ticket.tags, "previous_value": before}
            )
        ticket.updated_at = self._now()
        comment = data.get("comment")
        if isinstance(comment, dict):
            self._seq += 1
            html = str(comment.get("html_body") or "")
            text = str(comment.get("body") or re.sub(r"<[^>]+>", "", html))
            public = comment.get("public", True) is not False
            new = Comment(self._seq, SELF, public, text, html or f"<p>{text}</p>", ticket.updated_at)
            ticket.comments.append(new)
            events.append(new.view())
        for event in events:
            self._seq += 1
            event.setdefault("id", self._seq)
        self._seq += 1
        audit = {"id": self._seq, "ticket_id": ticket.id, "author_id": SELF, "events": events}
        return Reply.of(200, {"ticket": ticket.view(self.url), "audit": audit})

    def _problems(self, ticket: Ticket, data: dict[str, Any]) -> dict[str, list[Any]]:
        problems: dict[str, list[Any]] = {}
        status = data.get("status")
        if status is not None and (status not in _STATUSES or status == "closed"):
            problems["status"] = [f"Status: {status} is not valid"]
        elif status == "new" and ticket.status != "new":
            problems["status"] = ["Status: cannot be changed back to new"]
        if "priority" in data and data["priority"] not in (*_PRIORITIES, None):
            problems["priority"] = [f"Priority: {data['priority']} is not valid"]
        if "assignee_id" in data and data["assignee_id"] not in (*AGENTS, None):
            problems["assignee"] = ["Assignee: is not an agent"]
        if "assignee_email" in data and data["assignee_email"] not in AGENTS.values():
            problems["assignee"] = ["Assignee: is not an agent"]
        if "group_id" in data and data["group_id"] not in (*GROUPS, None):
            problems["group"] = ["Group: is not valid"]
        for name in ("tags", "additional_tags", "remove_tags"):
            if name in data and not (
                isinstance(data[name], list) and all(isinstance(t, str) and t for t in data[name])
            ):
                problems[name] = ["must be a list of tags"]
        comment = data.get("comment")
        if comment is not None:
            if not isinstance(comment, dict) or not (comment.get("body") or comment.get("html_body")):
                problems["comment"] = ["Comment: body can't be blank"]
            elif not isinstance(comment.get("public", True), bool):
                problems["comment"] = ["Comment: public must be true or false"]
            elif len(ticket.comments) >= 5000:
                problems["comment"] = ["Comment: the ticket has reached its limit of 5000 comments"]
        return problems

    def _limited(self, ticket: Ticket) -> Reply | None:
        ticket.updates += 1
        if ticket.updates <= self.update_limit:
            return None
        return Reply.of(
            429,
            {"error": "TooManyRequests", "description": "Ticket update rate limit exceeded"},
            {"retry-after": "120"},
        )

    def _comments(self, ticket: Ticket, query: dict[str, str]) -> Reply:
        order = query.get("sort_order", "asc")
        size = query.get("page[size]", "100")
        if order not in ("asc", "desc") or not size.isdigit() or not 1 <= int(size) <= 100:
            return Reply.of(
                400, {"error": "InvalidPaginationParameter", "description": "page[size] is 1 to 100"}
            )
        comments = ticket.comments[::-1] if order == "desc" else list(ticket.comments)
        start = int(query.get("page[after]") or 0)
        page = comments[start : start + int(size)]
        more = start + int(size) < len(comments)
        meta = {
            "has_more": more,
            "after_cursor": str(start + len(page)) if more else None,
            "before_cursor": None,
        }
        return Reply.of(200, {"comments": [c.view() for c in page], "meta": meta, "links": {}})

    def _tags(self, ticket: Ticket, request: Received) -> Reply:
        try:
            tags = json.loads(request.body).get("tags")
        except (ValueError, AttributeError):
            tags = None
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            return _invalid({"tags": ["must be a list of tags"]})
        if ticket.status == "closed":
            return _invalid({"status": [("Status: closed prevents ticket update", "ClosedPreventsUpdate")]})
        if (limited := self._limited(ticket)) is not None:
            return limited
        if request.method == "POST":
            ticket.tags = list(dict.fromkeys(tags))
        elif request.method == "PUT":
            ticket.tags = list(dict.fromkeys([*ticket.tags, *tags]))
        else:
            ticket.tags = [t for t in ticket.tags if t not in tags]
        ticket.updated_at = self._now()
        return Reply.of(200, {"tags": ticket.tags})


def _invalid(details: Mapping[str, Iterable[Any]]) -> Reply:
    return Reply.of(
        422,
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {
                name: [
                    {"description": p[0], "error": p[1]}
                    if isinstance(p, tuple)
                    else {"description": p, "error": "InvalidValue"}
                    for p in problems
                ]
                for name, problems in details.items()
            },
        },
    )
