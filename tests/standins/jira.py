"""A Jira Cloud REST API v3 stand-in: the endpoints the Jira connector uses, as Atlassian documents
them (https://developer.atlassian.com/cloud/jira/platform/rest/v3/).

* Auth: basic with e-mail and API token
  (https://developer.atlassian.com/cloud/jira/platform/basic-auth-for-rest-apis/); anything else is
  401 (the body, a plain-text sentence, is an assumption: Atlassian does not document it).
* ``POST /rest/api/3/issue`` (api-group-issues/#api-rest-api-3-issue-post): project, issue type,
  summary (required, one line, under 255), ADF description, priority by name, labels (no spaces),
  ``properties``; 400 ``{"errorMessages": [], "errors": {field: message}}``; 201 ``{id, key, self}``.
* ``GET|PUT /rest/api/3/issue/{idOrKey}`` (``fields`` and ``properties`` query), ``PUT
  .../assignee`` (``accountId``, null unassigns), ``GET|POST .../transitions`` (only transitions
  from the current status; ``properties`` on POST), 204 for writes, 404 for unknown issues.
* ``GET|POST .../comment`` (``startAt``, ``maxResults``, ``orderBy=[-+]created``; comments carry
  ``properties`` on create, and GET does not return them), ``POST /rest/api/3/comment/list``
  (``expand=properties`` returns them) (api-group-issue-comments).
* ``POST /rest/api/3/search/jql`` (api-group-issue-search/#api-rest-api-3-search-jql-post): only
  ``labels = "x"``, optionally ``AND creator = currentUser()`` (issues whose ``by_api_user`` is
  set: the token's own account made them), with an optional ``ORDER BY created ASC|DESC``; other
  JQL gets 400 like Jira's
  "Error in the JQL Query". Issues carry their ``id``, the requested ``fields``, and ``key`` only
  when asked for ("By default, this resource returns IDs only"). ``reconcileIssues`` (at most 50
  ids) is honoured: with ``lagging`` set, issues created since the last :meth:`reindex` are
  invisible to search unless reconciled, and with ``index_lag`` (seconds) each new issue is
  invisible for that long after its creation
  (https://developer.atlassian.com/cloud/jira/platform/search-and-reconcile/).
* Workflow: To Do -> Start Progress -> In Progress -> Stop Progress -> To Do; Resolve (from both)
  -> Done -> Reopen -> To Do.
* Faults: everything in :class:`~tests.standins.server.Fault`; :meth:`JiraStandIn.rate_limited`
  gives the documented 429 with Retry-After (https://developer.atlassian.com/cloud/jira/platform/
  rate-limiting/; the body is an assumption), and :meth:`JiraStandIn.lose_response` performs the
  next matching request and then resets the connection instead of answering.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.standins import server
from tests.standins.server import Fault, Received, Reply, StandIn

__all__ = ["JIRA_USERS", "Comment", "Issue", "JiraStandIn"]

JIRA_USERS = ("5b10ac8d82e05b22cc7d4ef5", "712020:0e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b")
STATUSES = {"To Do": ("10000", "new"), "In Progress": ("3", "indeterminate"), "Done": ("10001", "done")}
TRANSITIONS = (  # id, name, from, to
    ("11", "Start Progress", {"To Do"}, "In Progress"),
    ("21", "Stop Progress", {"In Progress"}, "To Do"),
    ("31", "Resolve", {"To Do", "In Progress"}, "Done"),
    ("41", "Reopen", {"Done"}, "To Do"),
)
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
ISSUE_TYPES = ("Task", "Bug", "Story")
_JQL = re.compile(
    r'^labels\s*=\s*"((?:[^"\\]|\\.)*)"(\s+AND\s+creator\s*=\s*currentUser\(\))?'
    r"(?:\s+ORDER\s+BY\s+created\s+(ASC|DESC))?\s*$",
    re.I,
)
_ADF_NODES = {"doc", "paragraph", "text", "hardBreak", "mention"}
_NOT_FOUND = "Issue does not exist or you do not have permission to see it."


@dataclass
class Comment:
    id: int
    body: dict[str, Any]
    properties: dict[str, Any]
    seq: int


@dataclass
class Issue:
    id: int
    key: str
    summary: str
    issuetype: str
    description: dict[str, Any] | None = None
    priority: str = "Medium"
    labels: list[str] = field(default_factory=list)
    status: str = "To Do"
    assignee: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    comments: list[Comment] = field(default_factory=list)
    by_api_user: bool = True  # created by the API token's account (``creator = currentUser()``)

    def text(self) -> str:
        return _text(self.description)


class _LostResponse(Exception):
    """Raised by ``handle`` after the effect: the handler resets the connection instead."""


class _Handler(server._Handler):
    def _serve(self) -> None:
        try:
            super()._serve()
        except _LostResponse:
            self._drop(reset=True)


class JiraStandIn(StandIn):
    def __init__(
        self,
        email: str,
        token: str,
        *,
        projects: Iterable[str] = ("PROJ",),
        users: Iterable[str] = JIRA_USERS,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        super().__init__(tls=tls)
        self._server.RequestHandlerClass = _Handler
        self.auth = "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()
        self.projects = {p: 0 for p in projects}
        self.users = set(users)
        self.issues: list[Issue] = []
        self.lagging = False
        self.index_lag = 0.0
        self._indexed: set[int] = set()
        self._born: dict[int, float] = {}  # issue id -> monotonic time of its creation
        self._losses: list[tuple[str, str]] = []
        self._seq = itertools.count(1)

    # -- test helpers ----------------------------------------------------------------------

    @staticmethod
    def rate_limited(retry_after: str, *, path: str | None = None) -> Fault:
        headers = {
            "retry-after": retry_after,
            "x-ratelimit-remaining": "0",
            "ratelimit-reason": "jira-quota-based",
        }
        return Fault.json(429, {"errorMessages": ["Rate limit exceeded."], "errors": {}}, headers, path=path)

    def lose_response(self, method: str, path: str) -> None:
        """The next ``method`` request whose path ends with ``path`` takes effect, then its
        connection is reset before any answer (a response lost on the way back)."""
        with self._lock:
            self._losses.append((method, path))

    def reindex(self) -> None:
        with self._lock:
            self._indexed = {i.id for i in self.issues}

    def issue(self, ref: str | int) -> Issue | None:
        text = str(ref).upper()
        return next((i for i in self.issues if text in (str(i.id), i.key)), None)

    def add_comment(self, issue: Issue, text: str, properties: dict[str, Any] | None = None) -> Comment:
        """A comment someone else wrote (no request)."""
        with self._lock:
            seq = next(self._seq)
            doc = {
                "type": "doc",
                "version": 1,
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}],
            }
            comment = Comment(id=20_000 + seq, body=doc, properties=properties or {}, seq=seq)
            issue.comments.append(comment)
            return comment

    def calls(self, method: str, suffix: str) -> list[Received]:
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, request: Received) -> Reply:
        if request.headers.get("authorization") != self.auth:
            return Reply(
                401, b"Client must be authenticated to access this resource.", {"content-type": "text/plain"}
            )
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError:
            return _error(400, "Unexpected character in the request body: not JSON.")
        reply = self._route(request, body)
        matches = (m == request.method and request.path.endswith(p) for m, p in self._losses)
        loss = next((self._losses[i] for i, hit in enumerate(matches) if hit), None)
        if loss is not None and reply.status < 300:
            self._losses.remove(loss)
            raise _LostResponse
        return reply

    def _route(self, request: Received, body: Any) -> Reply:
        path, method = request.path, request.method
        if path == "/rest/api/3/issue" and method == "POST":
            return self._create(body)
        if path == "/rest/api/3/search/jql" and method == "POST":
            return self._search(body)
        if path == "/rest/api/3/comment/list" and method == "POST":
            return self._comment_list(body, request.query.get("expand", ""))
        match = re.fullmatch(r"/rest/api/3/issue/([^/]+)(/assignee|/transitions|/comment)?", path)
        if match is None:
            return _error(404, "null for uri: " + path)
        issue = self.issue(match.group(1))
        if issue is None:
            return _error(404, _NOT_FOUND)
        handlers: dict[tuple[str, str | None], Callable[[], Reply]] = {
            ("GET", None): lambda: self._get(issue, request.query),
            ("PUT", None): lambda: self._edit(issue, body),
            ("PUT", "/assignee"): lambda: self._assign(issue, body),
            ("GET", "/transitions"): lambda: Reply.of(200, {"transitions": self._transitions(issue)}),
            ("POST", "/transitions"): lambda: self._transition(issue, body),
            ("GET", "/comment"): lambda: self._comments(issue, request.query),
            ("POST", "/comment"): lambda: self._add_comment(issue, body),
        }
        handler = handlers.get((method, match.group(2)))
        return handler() if handler else _error(405, "Method Not Allowed")

    # -- issues ----------------------------------------------------------------------------

    def _create(self, body: Any) -> Reply:
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return _error(400, "Can not deserialize the issue: no fields.")
        errors: dict[str, str] = {}
        project = _get(fields, "project", "key")
        if project not in self.projects:
            errors["project"] = "Specify a valid project ID or key"
        if _get(fields, "issuetype", "name") not in ISSUE_TYPES:
            errors["issuetype"] = "Specify a valid issue type"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif "\n" in summary or "\r" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        elif len(summary) > 255:
            errors["summary"] = "Summary must be less than 255 characters."
        if "description" in fields and (problem := _adf_problem(fields["description"])):
            errors["description"] = problem
        if "priority" in fields and _get(fields, "priority", "name") not in PRIORITIES:
            errors["priority"] = "Specify the Priority (id or name) in the string format"
        labels = fields.get("labels", [])
        if not isinstance(labels, list) or any(
            not isinstance(v, str) or " " in v or len(v) > 255 for v in labels
        ):
            errors["labels"] = "The label must not contain spaces and be at most 255 characters."
        properties = _properties(body.get("properties", []))
        if properties is None:
            errors["properties"] = "Properties must be a list of {key, value}."
        if errors:
            return Reply.of(400, {"errorMessages": [], "errors": errors})
        assert isinstance(project, str) and isinstance(summary, str) and properties is not None
        self.projects[project] += 1
        issue = Issue(
            id=10_000 + len(self.issues) + 1,
            key=f"{project}-{self.projects[project]}",
            summary=summary,
            issuetype=str(_get(fields, "issuetype", "name")),
            description=fields.get("description"),
            priority=str(_get(fields, "priority", "name") or "Medium"),
            labels=list(labels),
            properties=properties,
        )
        self.issues.append(issue)
        self._born[issue.id] = time.monotonic()
        if not self.lagging and not self.index_lag:
            self._indexed.add(issue.id)
        return Reply.of(201, {"id": str(issue.id), "key": issue.key, "self": self._self(issue)})

    def _view(self, issue: Issue, names: list[str] | None) -> dict[str, Any]:
        category = STATUSES[issue.status][1]
        every = {
            "summary": issue.summary,
            "labels": issue.labels,
            "priority": {"name": issue.priority},
            "assignee": {"accountId": issue.assignee} if issue.assignee else None,
            "issuetype": {"name": issue.issuetype},
            "status": {
                "name": issue.status,
                "id": STATUSES[issue.status][0],
                "statusCategory": {"key": category},
            },
        }
        every_name = names is None or "*all" in names or "*navigable" in names
        chosen = every if every_name else {n: every[n] for n in names or () if n in every}
        view: dict[str, Any] = {"id": str(issue.id), "self": self._self(issue), "fields": chosen}
        if every_name or "key" in (names or ()):
            view["key"] = issue.key
        return view

    def _get(self, issue: Issue, query: dict[str, str]) -> Reply:
        names = query["fields"].split(",") if "fields" in query else None
        view = {**self._view(issue, names), "key": issue.key}  # GET issue always names the key
        wanted = [p for p in query.get("properties", "").split(",") if p]
        view["properties"] = {k: v for k, v in issue.properties.items() if k in wanted or "*all" in wanted}
        return Reply.of(200, view)

    def _edit(self, issue: Issue, body: Any) -> Reply:
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return _error(400, "No fields to edit.")
        errors = {
            k: f"Field '{k}' cannot be set. It is not on the appropriate screen, or unknown." for k in fields
        }
        errors.pop("priority", None)
        if "priority" in fields and _get(fields, "priority", "name") not in PRIORITIES:
            errors["priority"] = "Specify the Priority (id or name) in the string format"
        if errors:
            return Reply.of(400, {"errorMessages": [], "errors": errors})
        if "priority" in fields:
            issue.priority = str(_get(fields, "priority", "name"))
        return Reply(204)

    def _assign(self, issue: Issue, body: Any) -> Reply:
        account = body.get("accountId") if isinstance(body, dict) else None
        if account is not None and account not in self.users:
            return Reply.of(
                400,
                {"errorMessages": [], "errors": {"assignee": f"User '{account}' cannot be assigned issues."}},
            )
        issue.assignee = account
        return Reply(204)

    def _transitions(self, issue: Issue) -> list[dict[str, Any]]:
        return [
            {
                "id": tid,
                "name": name,
                "hasScreen": False,
                "to": {"id": STATUSES[to][0], "name": to, "statusCategory": {"key": STATUSES[to][1]}},
            }
            for tid, name, sources, to in TRANSITIONS
            if issue.status in sources
        ]

    def _transition(self, issue: Issue, body: Any) -> Reply:
        wanted = str(_get(body, "transition", "id") or "")
        found = next((t for t in TRANSITIONS if t[0] == wanted and issue.status in t[2]), None)
        if found is None:
            return _error(400, f"Transition id '{wanted}' is not valid for this issue.")
        properties = _properties(body.get("properties", []))
        if properties is None:
            return Reply.of(
                400, {"errorMessages": [], "errors": {"properties": "Properties must be a list."}}
            )
        issue.status = found[3]
        issue.properties.update(properties)
        return Reply(204)

    def _search(self, body: Any) -> Reply:
        jql = body.get("jql") if isinstance(body, dict) else None
        match = _JQL.match(jql) if isinstance(jql, str) else None
        if match is None:
            return _error(400, f"Error in the JQL Query: the stand-in cannot parse {jql!r}.")
        reconcile = body.get("reconcileIssues", [])
        if (
            not isinstance(reconcile, list)
            or len(reconcile) > 50
            or not all(isinstance(i, int) for i in reconcile)
        ):
            return _error(400, "reconcileIssues must be a list of at most 50 issue ids.")
        label = re.sub(r"\\(.)", r"\1", match.group(1))
        indexed_before = time.monotonic() - self.index_lag
        visible = [
            i
            for i in self.issues
            if label in i.labels
            and (i.by_api_user or not match.group(2))
            and (
                i.id in self._indexed
                or i.id in reconcile
                or (self.index_lag and not self.lagging and self._born[i.id] <= indexed_before)
            )
        ]
        if (match.group(3) or "ASC").upper() == "DESC":
            visible.reverse()
        limit = body.get("maxResults", 50)
        names = body.get("fields", ["id"])  # "By default, this resource returns IDs only."
        issues = [self._view(i, names) for i in visible[:limit]]
        return Reply.of(200, {"issues": issues, "isLast": len(visible) <= limit})

    # -- comments --------------------------------------------------------------------------

    def _comment_view(self, issue: Issue, comment: Comment, *, properties: bool = False) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": str(comment.id),
            "self": f"{self._self(issue)}/comment/{comment.id}",
            "author": {"accountId": "557058:baton-bot", "displayName": "Baton"},
            "body": comment.body,
            "created": f"2024-01-01T00:00:{comment.seq % 60:02d}.000+0000",
            "jsdPublic": True,
        }
        if properties:
            view["properties"] = [{"key": k, "value": v} for k, v in comment.properties.items()]
        return view

    def _comments(self, issue: Issue, query: dict[str, str]) -> Reply:
        order = query.get("orderBy", "created")
        if order not in ("created", "+created", "-created"):
            return _error(400, f"orderBy '{order}' is not supported.")
        start, limit = int(query.get("startAt", "0")), min(int(query.get("maxResults", "100")), 100)
        ordered = sorted(issue.comments, key=lambda c: c.seq, reverse=order == "-created")
        page = ordered[start : start + limit]
        return Reply.of(
            200,
            {
                "startAt": start,
                "maxResults": limit,
                "total": len(ordered),
                "comments": [self._comment_view(issue, c) for c in page],
            },
        )

    def _add_comment(self, issue: Issue, body: Any) -> Reply:
        doc = body.get("body") if isinstance(body, dict) else None
        problem = _adf_problem(doc) if doc is not None else "Comment body can not be empty!"
        if problem is None and not _text(doc):
            problem = "Comment body can not be empty!"
        properties = _properties(body.get("properties", [])) if isinstance(body, dict) else None
        if problem or properties is None:
            return Reply.of(400, {"errorMessages": [], "errors": {"comment": problem or "bad properties"}})
        assert isinstance(doc, dict)
        seq = next(self._seq)
        comment = Comment(id=20_000 + seq, body=doc, properties=properties, seq=seq)
        issue.comments.append(comment)
        return Reply.of(201, self._comment_view(issue, comment))

    def _comment_list(self, body: Any, expand: str) -> Reply:
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or len(ids) > 1000:
            return _error(400, "Provide between 1 and 1000 comment ids.")
        found = [
            self._comment_view(issue, c, properties="properties" in expand.split(","))
            for issue in self.issues
            for c in issue.comments
            if c.id in ids
        ]
        return Reply.of(
            200, {"startAt": 0, "maxResults": 1000, "total": len(found), "isLast": True, "values": found}
        )

    def _self(self, issue: Issue) -> str:
        return f"{self.url}/rest/api/3/issue/{issue.id}"


def _error(status: int, message: str) -> Reply:
    return Reply.of(status, {"errorMessages": [message], "errors": {}})


def _get(data: Any, *path: str) -> Any:
    for name in path:
        data = data.get(name) if isinstance(data, dict) else None
    return data


def _properties(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, list):
        return None
    found: dict[str, Any] = {}
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or "value" not in entry:
            return None
        found[entry["key"]] = entry["value"]
    return found


def _adf_problem(doc: Any) -> str | None:
    """Why ``doc`` is not an ADF document of the nodes the connector writes, or None."""
    if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("version") != 1:
        return "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict) or node.get("type") not in _ADF_NODES:
            return f"ADF: unsupported node {node!r:.60}"
        if node["type"] == "text" and (not isinstance(node.get("text"), str) or not node["text"]):
            return "ADF: text nodes must have non-empty text"
        if node["type"] == "mention" and not _get(node, "attrs", "id"):
            return "ADF: a mention needs attrs.id"
        content = node.get("content", [])
        if not isinstance(content, list):
            return "ADF: content must be a list"
        stack.extend(content)
    return None


def _text(doc: Any) -> str:
    """The text of an ADF document: paragraphs on lines, hard breaks as newlines."""
    if not isinstance(doc, dict):
        return ""
    lines = []
    for block in doc.get("content", []):
        parts = []
        for node in block.get("content", []):
            kind = node.get("type")
            parts.append(
                node["text"]
                if kind == "text"
                else "\n"
                if kind == "hardBreak"
                else f"@{_get(node, 'attrs', 'id')}"
            )
        lines.append("".join(parts))
    return "\n".join(lines)
