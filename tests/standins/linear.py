"""A Linear GraphQL API stand-in (https://linear.app/developers/graphql): one ``POST /graphql``
endpoint answering the operations the Linear connector sends, recognised by ``operationName``
(and the root field they select); there is no GraphQL parser, so anything else is refused the
way a GraphQL server refuses an invalid document (HTTP 400, ``GRAPHQL_VALIDATION_FAILED``).

* Auth: ``Authorization: <API key>`` exactly, as Linear asks of personal keys (a ``Bearer``
  prefix is for OAuth tokens). Otherwise HTTP 400 with ``AUTHENTICATION_ERROR`` (``type``
  "authentication error", as Linear's SDK reads it: packages/sdk/src/error.ts).
* Requests: ``POST /graphql`` with ``Content-Type: application/json`` and a ``query`` string
  (else HTTP 400, as a GraphQL server answers); other paths 404, other methods 405.
* Input: the fields of ``IssueCreateInput`` / ``IssueUpdateInput`` / ``CommentCreateInput`` the
  connector uses (others are refused as undefined fields); ``id`` must be a UUID; team, state,
  user, label and issue references must exist ("Entity not found: ..." with ``INPUT_ERROR``, HTTP
  200 for a query, 400 for a mutation); ``priority`` is 0..4; a state must belong to the issue's
  team. A second entity with a taken ``id`` is refused with ``INPUT_ERROR`` (an assumption:
  Linear documents that ``id`` may be given, not its answer to a duplicate).
* Rate limits (https://linear.app/developers/rate-limiting): every answer carries
  ``X-RateLimit-Requests-Limit`` / ``-Remaining`` / ``-Reset`` (UTC epoch milliseconds); with
  ``budget`` set, the request after it is spent gets HTTP 400 and ``RATELIMITED``.
* New issues get the team's first ``backlog`` state, as Linear does without a ``stateId``.
* ``drop_after(operation)``: the next such operation takes effect, then the connection is closed
  without an answer (a response lost after the vendor acted).
* ``webhook(issue, action, updated_from=...)``: the data-change webhook body Linear sends about
  an issue (https://linear.app/developers/webhooks), with ``webhookTimestamp`` from the clock.
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.standins.server import Received, Reply, StandIn

__all__ = ["USER", "Comment", "Issue", "Label", "LinearStandIn", "State", "Team"]

USER = "0b0f0a1e-5c3d-4e6f-8a9b-0c1d2e3f4a5b"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_STATES = [
    ("Backlog", "backlog"),
    ("Todo", "unstarted"),
    ("In Progress", "started"),
    ("In Review", "started"),
    ("Done", "completed"),
    ("Canceled", "canceled"),
]


class _Dropped(Exception):
    """Raised after an effect, so the server closes the connection without answering."""


@dataclass
class State:
    id: str
    name: str
    type: str
    position: float

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "position": self.position}


@dataclass
class Team:
    id: str
    key: str
    states: list[State]
    issues: int = 0


@dataclass
class Label:
    id: str
    name: str
    team_id: str | None


@dataclass
class Issue:
    id: str
    identifier: str
    team_id: str
    title: str
    description: str | None
    priority: int
    state_id: str
    created_at: str
    assignee_id: str | None = None
    label_ids: list[str] = field(default_factory=list)
    by_api_user: bool = True  # created by the API key's user (``creator.isMe``), not a person

    def view(self) -> dict[str, Any]:
        slug = re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")[:40]
        return {
            "id": self.id,
            "identifier": self.identifier,
            "url": f"https://linear.app/acme/issue/{self.identifier}/{slug}",
            "createdAt": self.created_at,
            "description": self.description,
        }


@dataclass
class Comment:
    id: str
    issue_id: str
    body: str
    by_api_user: bool = True  # posted by the API key's user (``user.isMe``), not a person


class LinearStandIn(StandIn):
    def __init__(
        self,
        api_key: str,
        *,
        users: Iterable[str] = (USER,),
        clock: Callable[[], float] = time.time,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        super().__init__(tls=tls)
        self.api_key = api_key
        self.users = set(users)
        self.clock = clock
        self.teams: dict[str, Team] = {}
        self.labels: list[Label] = []
        self.issues: dict[str, Issue] = {}
        self.comments: dict[str, Comment] = {}
        self.limit = 5_000
        self.budget: int | None = None  # requests left before RATELIMITED; None: unlimited
        self._drop: set[str] = set()
        self._seq = 0
        self.team = self.add_team("ENG")
        self.add_label("Bug")
        self.add_label("Customer", team_id=self.team.id)
        handle_error = self._server.handle_error

        def quiet(request: Any, client_address: Any) -> None:
            # A drop on purpose, or a client hanging up on a huge answer, is not the stand-in failing.
            if not isinstance(sys.exc_info()[1], _Dropped | ConnectionError):
                handle_error(request, client_address)

        self._server.handle_error = quiet  # type: ignore[method-assign]  # one server, one policy

    # -- seeding and inspecting ----------------------------------------------------------------

    def add_team(self, key: str, states: Iterable[tuple[str, str]] = _STATES) -> Team:
        team_states = [State(str(uuid.uuid4()), n, t, float(i)) for i, (n, t) in enumerate(states)]
        team = Team(str(uuid.uuid4()), key, team_states)
        self.teams[team.id] = team
        return team

    def add_label(self, name: str, *, team_id: str | None = None) -> Label:
        label = Label(str(uuid.uuid4()), name, team_id)
        self.labels.append(label)
        return label

    def add_issue(self, team: Team | None = None, **fields: Any) -> Issue:
        result = self._create_issue({"teamId": (team or self.team).id, "title": "Seeded", **fields})
        return self.issues[json.loads(result.body)["data"]["issueCreate"]["issue"]["id"]]

    def state(self, issue: Issue) -> State:
        return next(s for s in self.teams[issue.team_id].states if s.id == issue.state_id)

    def webhook(
        self, issue: Issue, action: str = "update", *, updated_from: dict[str, Any] | None = None
    ) -> bytes:
        """The body of Linear's ``Issue`` webhook about ``issue`` as it is now."""
        state, team = self.state(issue), self.teams[issue.team_id]
        view = issue.view()
        data = {
            **view,
            "title": issue.title,
            "priority": issue.priority,
            "stateId": state.id,
            "state": {"id": state.id, "name": state.name, "type": state.type},
            "teamId": team.id,
            "team": {"id": team.id, "key": team.key},
            "assigneeId": issue.assignee_id,
            "labelIds": list(issue.label_ids),
            "updatedAt": self._now(),
        }
        body: dict[str, Any] = {"action": action, "type": "Issue", "data": data, "url": view["url"]}
        if updated_from is not None:
            body["updatedFrom"] = updated_from
        body |= {"webhookTimestamp": int(self.clock() * 1000), "webhookId": "standin-webhook"}
        return json.dumps(body).encode()

    def comment(self, issue: Issue, body: str) -> Comment:
        """A person comments on ``issue`` in Linear."""
        made = Comment(str(uuid.uuid4()), issue.id, body, by_api_user=False)
        self.comments[made.id] = made
        return made

    def comment_webhook(self, comment: Comment) -> bytes:
        """The body of Linear's ``Comment`` create webhook about ``comment``."""
        issue, now = self.issues[comment.issue_id], self._now()
        data = {
            "id": comment.id,
            "createdAt": now,
            "updatedAt": now,
            "body": comment.body,
            "issueId": issue.id,
            "issue": {"id": issue.id, "title": issue.title},
            "userId": "standin-user",
            "user": {"id": "standin-user", "name": "Dana Dev"},
        }
        url = f"{issue.view()['url']}#comment-{comment.id[:8]}"
        body = {"action": "create", "type": "Comment", "data": data, "url": url}
        body |= {"webhookTimestamp": int(self.clock() * 1000), "webhookId": "standin-webhook"}
        return json.dumps(body).encode()

    def move(self, issue: Issue, state_name: str) -> dict[str, Any]:
        """A person moves ``issue`` to the state named ``state_name``; returns ``updatedFrom``."""
        before = issue.state_id
        issue.state_id = next(s.id for s in self.teams[issue.team_id].states if s.name == state_name)
        return {"stateId": before}

    def drop_after(self, operation: str) -> None:
        self._drop.add(operation)

    def calls(self, operation: str) -> list[dict[str, Any]]:
        """The variables of every request for ``operation``, in order."""
        bodies = [json.loads(r.body) for r in self.requests if r.path == "/graphql" and r.body]
        return [b.get("variables") or {} for b in bodies if b.get("operationName") == operation]

    def operations(self) -> list[str]:
        return [json.loads(r.body).get("operationName") for r in self.requests if r.body]

    # -- dispatch ----------------------------------------------------------------------------

    def handle(self, request: Received) -> Reply:
        if request.path != "/graphql":
            return Reply.of(404, {"errors": [{"message": "Not found"}]})
        if request.method != "POST":
            return Reply.of(405, {"errors": [{"message": "Method not allowed"}]})
        if request.headers.get("authorization") != self.api_key:
            return _error(
                "Authentication required, not authenticated",
                "AUTHENTICATION_ERROR",
                "authentication error",
                "You need to authenticate to access this operation.",
            )
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _error("Must provide query string.", "BAD_REQUEST", "graphql error")
        now = self.clock()
        if self.budget is not None:
            if self.budget <= 0:
                return _rate_headers(
                    _error("Rate limit exceeded", "RATELIMITED", "ratelimited", "Too many requests."),
                    self.limit,
                    0,
                    now + 60,
                )
            self.budget -= 1
        left = self.limit if self.budget is None else self.budget
        return _rate_headers(self._graphql(request), self.limit, left, now + 3_600)

    def _graphql(self, request: Received) -> Reply:
        try:
            body = json.loads(request.body)
        except ValueError:
            return _error("POST body sent invalid JSON.", "BAD_REQUEST", "graphql error")
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return _error("Must provide query string.", "BAD_REQUEST", "graphql error")
        name, query = body.get("operationName"), body["query"]
        variables = body.get("variables") or {}
        known = self._operations().get(str(name))
        if known is None or not re.match(rf"(query|mutation) {name}\(", query) or f"{known[0]}(" not in query:
            return _error(
                f"Unknown operation {name!r}: not one the Linear connector sends",
                "GRAPHQL_VALIDATION_FAILED",
                "graphql error",
            )
        if not isinstance(variables, dict):
            return _error("Variables must be an object.", "BAD_REQUEST", "graphql error")
        reply = known[1](variables)
        if reply.status == 200 and name in self._drop and "errors" not in json.loads(reply.body):
            self._drop.discard(name)
            raise _Dropped(name)
        return reply

    def _operations(self) -> dict[str, tuple[str, Callable[[dict[str, Any]], Reply]]]:
        return {
            "BatonIssueById": ("issues", self._issue_by_id),
            "BatonIssuesForTicket": ("issues", self._issues_for_ticket),
            "BatonIssue": ("issue", self._issue),
            "BatonIssueCreate": ("issueCreate", lambda v: self._create_issue(_input(v))),
            "BatonIssueUpdate": ("issueUpdate", self._update_issue),
            "BatonCommentById": ("comments", self._comment_by_id),
            "BatonCommentCreate": ("commentCreate", lambda v: self._create_comment(_input(v))),
            "BatonTeamByKey": ("teams", self._team_by_key),
            "BatonLabels": ("issueLabels", self._labels),
        }

    # -- queries -----------------------------------------------------------------------------

    def _find(self, ref: object) -> Issue | None:
        return self.issues.get(str(ref)) or next(
            (i for i in self.issues.values() if i.identifier == str(ref).upper()), None
        )

    def _issue_by_id(self, v: dict[str, Any]) -> Reply:
        issue = self.issues.get(str(v.get("id")))
        nodes = [{**issue.view(), "creator": {"isMe": issue.by_api_user}}] if issue else []
        return _data({"issues": {"nodes": nodes}})

    def _issues_for_ticket(self, v: dict[str, Any]) -> Reply:
        # Every issue whose description holds the marker, whoever made it: the connector must
        # check ``creator.isMe`` itself as well as ask Linear to filter on it.
        marker = str(v.get("marker"))
        found = [
            {**i.view(), "creator": {"isMe": i.by_api_user}}
            for i in self.issues.values()
            if marker in (i.description or "")
        ]
        return _data({"issues": {"nodes": found}})

    def _issue(self, v: dict[str, Any]) -> Reply:
        issue = self._find(v.get("id"))
        if issue is None:
            return _not_found("Issue", status=200)
        team = self.teams[issue.team_id]
        states = {"nodes": [s.view() for s in team.states]}
        return _data({"issue": {**issue.view(), "team": {"id": team.id, "states": states}}})

    def _comment_by_id(self, v: dict[str, Any]) -> Reply:
        comment = self.comments.get(str(v.get("id")))
        nodes = (
            [
                {
                    "id": comment.id,
                    "user": {"isMe": comment.by_api_user},
                    "issue": self.issues[comment.issue_id].view(),
                }
            ]
            if comment
            else []
        )
        return _data({"comments": {"nodes": nodes}})

    def _team_by_key(self, v: dict[str, Any]) -> Reply:
        key = str(v.get("key")).upper()
        return _data(
            {"teams": {"nodes": [{"id": t.id, "key": t.key} for t in self.teams.values() if t.key == key]}}
        )

    def _labels(self, v: dict[str, Any]) -> Reply:
        names = v.get("names") or []
        nodes = [
            {"id": label.id, "name": label.name, "team": {"id": label.team_id} if label.team_id else None}
            for label in self.labels
            if label.name in names
        ]
        return _data({"issueLabels": {"nodes": nodes}})

    # -- mutations ---------------------------------------------------------------------------

    def _create_issue(self, fields: dict[str, Any]) -> Reply:
        allowed = {"id", "teamId", "title", "description", "priority", "assigneeId", "labelIds"}
        if problem := _undefined(fields, allowed, "IssueCreateInput") or self._taken(fields, self.issues):
            return problem
        team = self.teams.get(str(fields.get("teamId")))
        if team is None:
            return _not_found("Team")
        title = fields.get("title")
        if not isinstance(title, str) or not title.strip():
            return _invalid("title should not be empty")
        issue = Issue(
            id=fields.get("id") or str(uuid.uuid4()),
            identifier=f"{team.key}-{team.issues + 1}",
            team_id=team.id,
            title=title,
            description=fields.get("description"),
            priority=0,
            state_id=min(team.states, key=lambda s: (s.type != "backlog", s.position)).id,
            created_at=self._now(),
        )
        if problem := self._apply(issue, fields):
            return problem
        team.issues += 1
        self.issues[issue.id] = issue
        return _data({"issueCreate": {"success": True, "lastSyncId": self._seq, "issue": issue.view()}})

    def _update_issue(self, v: dict[str, Any]) -> Reply:
        fields = _input(v)
        if problem := _undefined(fields, {"priority", "stateId", "assigneeId"}, "IssueUpdateInput"):
            return problem
        issue = self._find(v.get("id"))
        if issue is None:
            return _not_found("Issue")
        changed = Issue(**{**issue.__dict__, "label_ids": list(issue.label_ids)})
        if problem := self._apply(changed, fields):
            return problem
        self.issues[issue.id] = changed
        return _data({"issueUpdate": {"success": True, "lastSyncId": self._seq, "issue": changed.view()}})

    def _apply(self, issue: Issue, fields: dict[str, Any]) -> Reply | None:
        """Set priority, state, assignee and labels on ``issue``, checked as Linear checks them."""
        if "priority" in fields:
            if not isinstance(fields["priority"], int) or not 0 <= fields["priority"] <= 4:
                return _invalid("priority must be an integer between 0 and 4")
            issue.priority = fields["priority"]
        if "stateId" in fields:
            if fields["stateId"] not in {s.id for s in self.teams[issue.team_id].states}:
                return _not_found("WorkflowState")
            issue.state_id = fields["stateId"]
        if "assigneeId" in fields:
            if fields["assigneeId"] is not None and fields["assigneeId"] not in self.users:
                return _not_found("User")
            issue.assignee_id = fields["assigneeId"]
        if "labelIds" in fields:
            usable = {label.id for label in self.labels if label.team_id in (None, issue.team_id)}
            if not isinstance(fields["labelIds"], list) or not set(fields["labelIds"]) <= usable:
                return _not_found("IssueLabel")
            issue.label_ids = list(fields["labelIds"])
        return None

    def _create_comment(self, fields: dict[str, Any]) -> Reply:
        if problem := _undefined(fields, {"id", "issueId", "body"}, "CommentCreateInput") or self._taken(
            fields, self.comments
        ):
            return problem
        issue = self._find(fields.get("issueId"))
        if issue is None:
            return _not_found("Issue")
        body = fields.get("body")
        if not isinstance(body, str) or not body.strip():
            return _invalid("body should not be empty")
        comment = Comment(fields.get("id") or str(uuid.uuid4()), issue.id, body)
        self.comments[comment.id] = comment
        payload = {
            "success": True,
            "lastSyncId": self._seq,
            "comment": {"id": comment.id, "issue": issue.view()},
        }
        return _data({"commentCreate": payload})

    def _taken(self, fields: dict[str, Any], existing: dict[str, Any]) -> Reply | None:
        if "id" not in fields:
            return None
        if not isinstance(fields["id"], str) or not _UUID.match(fields["id"]):
            return _invalid("id must be a UUID")
        return _invalid("Entity already exists") if fields["id"] in existing else None

    def _now(self) -> str:
        self._seq += 1
        when = datetime.fromtimestamp(self.clock(), UTC) + timedelta(milliseconds=self._seq)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _input(v: dict[str, Any]) -> dict[str, Any]:
    fields = v.get("input")
    return fields if isinstance(fields, dict) else {}


def _data(data: dict[str, Any]) -> Reply:
    return Reply.of(200, {"data": data})


def _error(message: str, code: str, kind: str, presentable: str | None = None, *, status: int = 400) -> Reply:
    extensions = {
        "type": kind,
        "code": code,
        "userError": True,
        "userPresentableMessage": presentable or message,
    }
    return Reply.of(status, {"errors": [{"message": message, "extensions": extensions}], "data": None})


def _not_found(entity: str, *, status: int = 400) -> Reply:
    return _error(
        f"Entity not found: {entity}",
        "INPUT_ERROR",
        "invalid input",
        f"Could not find referenced {entity}.",
        status=status,
    )


def _invalid(problem: str) -> Reply:
    return _error(f"Argument Validation Error: {problem}", "INPUT_ERROR", "invalid input", problem)


def _undefined(fields: dict[str, Any], allowed: set[str], type_name: str) -> Reply | None:
    extra = sorted(set(fields) - allowed)
    if not extra:
        return None
    return _error(
        f'Field "{extra[0]}" is not defined by type "{type_name}".',
        "GRAPHQL_VALIDATION_FAILED",
        "graphql error",
    )


def _rate_headers(reply: Reply, limit: int, left: int, reset: float) -> Reply:
    headers = {
        **reply.headers,
        "x-ratelimit-requests-limit": str(limit),
        "x-ratelimit-requests-remaining": str(left),
        "x-ratelimit-requests-reset": str(int(reset * 1000)),
    }
    return Reply(reply.status, reply.body, headers)
