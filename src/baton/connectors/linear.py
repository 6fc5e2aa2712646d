"""Linear through its GraphQL API (https://linear.app/developers/graphql); docs/connectors/linear.md.

Every call is one ``POST`` to ``api_url`` of ``{"query", "variables", "operationName"}`` with the
personal API key as ``Authorization: <API_KEY>`` (no ``Bearer``: that is for OAuth tokens). The
documents are fixed (:data:`OPERATIONS`); values only ever travel as variables.

Kinds of action
    ``create_issue``: ``issueCreate`` in ``params.team`` (id, or key such as ``ENG``; default
    ``team_id``) with title, markdown description ending with the line ``baton-ticket: <ticket>``,
    priority (urgent/high/normal/low as 1/2/3/4), assignee and labels (ids, or names).
    ``comment`` / ``notify``: ``commentCreate`` on ``params.issue``, else ``links["linear"]``, else
    the newest issue whose description ends with the ticket's marker line and that the API key's
    own user created (anyone can write the line).
    ``sync``: ``issueUpdate`` of priority, assignee (empty unassigns) and workflow state; team
    and tier, which an issue cannot hold, go into a comment after the note.
    The link is the issue's UUID (stable when the issue changes team; Linear's webhooks carry it).

Duplicates
    ``IssueCreateInput`` and ``CommentCreateInput`` take an ``id`` ("in UUID v4 format. If none is
    provided, the backend will generate one"): Baton sends :func:`client_id` of the action key
    (keyed with the API key, so nobody else can know it in advance), so all attempts of an action
    name one issue or comment. The connector looks that id up before creating, and again when a
    create is refused, taking a find as an earlier attempt's work only if the API key's own user
    made it (``creator``/``user`` ``isMe``). No window remains, on the assumption (undocumented)
    that Linear refuses a taken id.

Errors
    Failures come in ``errors`` (HTTP 200 or 400), each with ``extensions.code`` or ``.type``, as
    Linear's SDK reads them. ``RATELIMITED``, ``INTERNAL_ERROR``, ``LOCK_TIMEOUT``,
    ``NETWORK_ERROR``, 429 and 5xx are transient, waiting for Retry-After or else the exhausted
    budget's ``X-RateLimit-{Requests,Complexity}-Reset`` (epoch ms,
    https://linear.app/developers/rate-limiting); other codes and 4xx are permanent. An answer
    without the JSON or ids Baton needs is transient (the ids are fixed: retrying is safe).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from baton.clock import Clock
from baton.connectors.addresses import Resolver
from baton.connectors.base import CREATED, Delivery, Foreseen, OutboundAction
from baton.connectors.config import HttpConfig, _url, configured, http_config
from baton.connectors.http import HttpResponse, OutboundHttp, parse_retry_after
from baton.connectors.params import param_list as _list
from baton.connectors.params import param_str as _str
from baton.errors import ConnectorError, PermanentConnectorError, TransientConnectorError
from baton.model import ExternalLink
from baton.settings import Settings

__all__ = [
    "DEFAULT_STATES",
    "OPERATIONS",
    "PRIORITIES",
    "READ_BACK",
    "STAGE_TYPES",
    "TRANSIENT_CODES",
    "LinearConfig",
    "LinearConnector",
    "State",
    "client_id",
    "pick_state",
    "ticket_marker",
]

PRIORITIES = {"urgent": 1, "high": 2, "normal": 3, "low": 4}
# Baton stage -> (the Linear state ``sync`` looks for by default, the state type it falls back on)
_STAGES = {
    "new": ("Todo", "unstarted"),
    "open": ("In Progress", "started"),
    "pending": ("In Progress", "started"),
    "escalated": ("In Progress", "started"),
    "solved": ("Done", "completed"),
    "closed": ("Done", "completed"),
}
STAGE_TYPES = {stage: kind for stage, (_, kind) in _STAGES.items()}
DEFAULT_STATES = {stage: name for stage, (name, _) in _STAGES.items()}
TRANSIENT_CODES = frozenset({"RATELIMITED", "INTERNAL_ERROR", "LOCK_TIMEOUT", "NETWORK_ERROR"})
# A state's type as the Linear signal adapter reads it (signals/adapters/linear.py STATE_STAGES).
READ_BACK = {"triage": "new", "backlog": "new", "unstarted": "new", "started": "open"}
READ_BACK |= {"completed": "solved", "canceled": "closed"}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_TEXT_LIMIT = 50_000  # an assumption: Linear documents no limit; this keeps requests bounded
_T = TypeVar("_T")

_LINK = "id identifier url"
# The operations, by name. Each is one fixed document; values only ever travel as variables.
OPERATIONS = {
    "BatonIssueById": "query BatonIssueById($id: ID!) { issues(filter: {id: {eq: $id}},"
    f" includeArchived: true, first: 1) {{ nodes {{ {_LINK} creator {{ isMe }} }} }} }}",
    # Only issues this API key's user created: anyone can write the marker into an issue.
    "BatonIssuesForTicket": "query BatonIssuesForTicket($marker: String!) { issues(filter: {description:"
    " {contains: $marker}, creator: {isMe: {eq: true}}}, first: 50)"
    f" {{ nodes {{ {_LINK} createdAt description creator {{ isMe }} }} }} }}",
    "BatonIssue": f"query BatonIssue($id: String!) {{ issue(id: $id) {{ {_LINK}"
    " team { id states(first: 100) { nodes { id name type position } } } } }",
    "BatonIssueCreate": "mutation BatonIssueCreate($input: IssueCreateInput!) { issueCreate(input: $input)"
    f" {{ success issue {{ {_LINK} }} }} }}",
    "BatonIssueUpdate": "mutation BatonIssueUpdate($id: String!, $input: IssueUpdateInput!)"
    f" {{ issueUpdate(id: $id, input: $input) {{ success issue {{ {_LINK} }} }} }}",
    "BatonCommentById": "query BatonCommentById($id: ID!) { comments(filter: {id: {eq: $id}},"
    f" includeArchived: true, first: 1) {{ nodes {{ id user {{ isMe }} issue {{ {_LINK} }} }} }} }}",
    "BatonCommentCreate": "mutation BatonCommentCreate($input: CommentCreateInput!)"
    f" {{ commentCreate(input: $input) {{ success comment {{ id issue {{ {_LINK} }} }} }} }}",
    "BatonTeamByKey": "query BatonTeamByKey($key: String!) { teams(filter: {key: {eqIgnoreCase: $key}},"
    " first: 1) { nodes { id key } } }",
    "BatonLabels": "query BatonLabels($names: [String!]!) { issueLabels(filter: {name: {in: $names}},"
    " first: 250) { nodes { id name team { id } } } }",
}


class LinearConfig(BaseModel):
    """Linear's GraphQL API with a personal API key.

    ``states`` names, per Baton stage, the workflow state ``sync`` moves an issue to (matched
    without regard to case); see :func:`pick_state` for what happens when a team lacks it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr = Field(description="Personal API key (lin_api_...).")
    api_url: str = Field(default="https://api.linear.app/graphql", description="The GraphQL endpoint.")
    team_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Team (id or key) for issues naming none."
    )
    states: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_STATES))
    http: HttpConfig = Field(default_factory=HttpConfig)

    @field_validator("api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _url(value)

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[\x21-\x7e]{1,512}", value.get_secret_value()):
            raise ValueError("must be one token of printable characters, without spaces")
        return value

    @field_validator("states")
    @classmethod
    def _states(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(STAGE_TYPES))
        if unknown:
            raise ValueError(f"{unknown} are not Baton stages ({', '.join(STAGE_TYPES)})")
        return {stage: name.strip() for stage, name in value.items() if name.strip()}


@dataclass(frozen=True)
class _Issue:
    id: str
    identifier: str
    url: str | None

    def link(self) -> ExternalLink:
        return ExternalLink(system="linear", id=self.id, url=self.url)


@dataclass(frozen=True)
class _Comment:
    id: str
    issue: _Issue


@dataclass(frozen=True)
class State:
    """A workflow state of a team: ``type`` is triage, backlog, unstarted, started, completed or
    canceled."""

    id: str
    name: str
    type: str
    position: float


def client_id(purpose: str, key: str, secret: str) -> str:
    """The UUID (v4 format) an action's issue or comment gets: the same for every attempt. Keyed
    with ``secret`` (the API key, which only Baton holds): an action's key is derived from the
    ticket, the decision and the rule, which others can work out, and whoever knew the id could
    make an issue under it first for Baton to take as its own."""
    digest = hmac.new(secret.encode(), f"baton:{purpose}:{key}".encode(), hashlib.sha256).digest()[:16]
    return str(uuid.UUID(bytes=digest, version=4))


def _mine(node: Any, author: str = "creator") -> bool:
    """Whether the API key's own user is the ``author`` (``creator`` of an issue, ``user`` of a
    comment) of ``node``: checked on every answer that could hand Baton someone else's item."""
    made_by = node.get(author) if isinstance(node, Mapping) else None
    return isinstance(made_by, Mapping) and made_by.get("isMe") is True


def _sync_notes(params: Mapping[str, Any]) -> list[str]:
    """The lines a sync posts as a comment: the fields Linear has no place for."""
    raw = params.get("changes")
    changes: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    return [f"Baton {label}: {v}" for label in ("team", "tier") if (v := _str(changes.get(label)))]


def ticket_marker(ticket_id: str) -> str:
    """The last line of every description Baton writes; how a ticket's issue is found again."""
    return f"baton-ticket: {ticket_id}"


def pick_state(stage: str, states: Sequence[State], names: Mapping[str, str]) -> State:
    """The state named ``names[stage]``, else the first (by position) of the stage's type."""
    wanted = names.get(stage, "").casefold()
    for state in states:
        if wanted and state.name.casefold() == wanted:
            return state
    typed = sorted((s for s in states if s.type == STAGE_TYPES[stage]), key=lambda s: s.position)
    if typed:
        return typed[0]
    have = ", ".join(f"{s.name} ({s.type})" for s in states) or "none"
    raise PermanentConnectorError(
        f"linear: the issue's team has no state for stage {stage!r} (named {names.get(stage)!r} or of "
        f"type {STAGE_TYPES[stage]!r}); it has {have}"
    )


class LinearConnector:
    """Creates Linear issues, comments on them and keeps their fields in step with Baton."""

    name = "linear"

    def __init__(
        self, config: LinearConfig, *, clock: Clock | None = None, resolver: Resolver | None = None
    ) -> None:
        self.config = config
        self._key = config.api_key.get_secret_value()
        self.http = OutboundHttp(config.http, clock=clock, resolver=resolver, secrets=(self._key,))
        self.http.check_url(config.api_url)
        self._teams: dict[str, str] = {}  # team key -> id, looked up once

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> LinearConnector:
        values = {
            "api_key": settings.linear_api_key,
            "api_url": settings.linear_api_url,
            "team_id": settings.linear_team_id,
            "http": http_config(settings),
        }
        return configured(
            "linear",
            LinearConfig,
            values,
            lambda config: cls(config, clock=clock),
            needs={"BATON_LINEAR_API_KEY": settings.linear_api_key},
        )

    def send(self, action: OutboundAction) -> Delivery:
        if action.kind == "create_issue":
            return self._create_issue(action)
        if action.kind in ("comment", "notify"):
            return self._comment(action)
        if action.kind == "sync":
            return self._sync(action)
        raise PermanentConnectorError(f"linear: cannot perform {action.kind!r}")

    def foresee(self, action: OutboundAction) -> list[Foreseen]:
        """The issue or comment a send will make, whose id Baton chooses: recorded before the send,
        so its webhooks are known (the issue's as its ticket's, the comment as Baton's own) even
        when they come back before the answer, or instead of a lost one."""
        if action.kind == "create_issue":
            # Its webhooks may come before the answer: the id names the ticket meanwhile.
            issue = self._client_id("issue", action.key)
            return [Foreseen(system="linear", external_id=issue, wrote={CREATED: action.ticket_id})]
        if action.kind in ("comment", "notify"):
            comment = self._client_id("comment", action.key)
        elif action.kind == "sync" and _sync_notes(action.params):
            comment = self._client_id("sync", action.key)
        else:
            return []
        return [Foreseen(system="linear", external_id=comment, wrote={"comment": comment})]

    def close(self) -> None:
        self.http.close()

    # -- kinds -------------------------------------------------------------------------------

    def _create_issue(self, action: OutboundAction) -> Delivery:
        params = action.params
        title, priority = _title(params), _priority(params.get("priority"))
        team = _str(params.get("team")) or self.config.team_id
        if not team:
            raise PermanentConnectorError(
                "linear create_issue: no team (params.team or BATON_LINEAR_TEAM_ID)"
            )
        assignee = _str(params.get("assignee"))
        wrote = {"priority": priority} if priority else {}
        wrote |= {"assignee": assignee} if assignee else {}
        issue_id = self._client_id("issue", action.key)
        detail: dict[str, Any] = {"created": False}
        issue = self._find_issue(issue_id)
        if issue is None:
            fields: dict[str, Any] = {
                "id": issue_id,
                "teamId": self._team(team),
                "title": title,
                "description": _description(params, action.ticket_id),
            }
            if priority:
                fields["priority"] = PRIORITIES[priority]
            if assignee:
                fields["assigneeId"] = assignee
            labels, missing = self._labels(_list(params.get("labels")), fields["teamId"])
            fields |= {"labelIds": labels} if labels else {}
            detail |= {"labels_missing": missing} if missing else {}
            made = self._create(
                "BatonIssueCreate",
                fields,
                lambda data: _parse_issue(_payload(data, "issueCreate").get("issue"), "linear issueCreate"),
                lambda: self._find_issue(issue_id),
            )
            issue, detail["created"] = made[0], made[1]
        detail |= {"issue": issue.id, "identifier": issue.identifier}
        return Delivery(external_id=issue.id, detail=detail, link=issue.link(), wrote=wrote)

    def _comment(self, action: OutboundAction) -> Delivery:
        params = action.params
        subject, text = _str(params.get("subject")), _str(params.get("text"))
        body = f"**{subject}**\n\n{text}" if subject and text else (f"**{subject}**" if subject else text)
        if not body:
            raise PermanentConnectorError("linear: nothing to post (no subject or text)")
        comment = self._post_comment(
            self._client_id("comment", action.key), body, lambda: self._target(action)
        )
        issue = comment.issue
        return Delivery(
            external_id=comment.id,
            detail={"comment": comment.id, "issue": issue.id, "identifier": issue.identifier},
            link=issue.link(),
        )

    def _sync(self, action: OutboundAction) -> Delivery:
        params = action.params
        ref = _str(params.get("external_id")) or _str(_links(params).get("linear"))
        if not ref:
            raise PermanentConnectorError("linear sync: no external_id (the Linear issue to update)")
        raw = params.get("changes")
        changes: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        fields: dict[str, Any] = {}
        wrote: dict[str, str] = {}
        if priority := _priority(changes.get("priority")):
            fields["priority"], wrote["priority"] = PRIORITIES[priority], priority
        if "assignee" in changes:  # a user id; empty unassigns
            assignee = _str(changes.get("assignee"))
            fields["assigneeId"], wrote["assignee"] = assignee or None, assignee
        notes = _sync_notes(params)
        issue: _Issue | None = None
        if stage := _str(changes.get("status")).lower():
            if stage not in STAGE_TYPES:
                raise PermanentConnectorError(f"linear sync: {stage!r} is not a Baton stage")
            issue, states = self._issue(ref)
            state = pick_state(stage, states, self.config.states)
            # Recorded as Linear's webhook will report it back (the state's type read as a
            # stage): pending in a started state comes back as open, and is still Baton's echo.
            fields["stateId"], wrote["status"] = state.id, READ_BACK.get(state.type, stage)
        elif (fields or notes) and not _UUID.match(ref):
            issue = self._issue(ref)[0]  # an identifier such as ENG-12: mutations get the UUID
        issue_id = issue.id if issue else ref
        if fields:
            data = self._call("BatonIssueUpdate", {"id": issue_id, "input": fields})
            issue = _parse_issue(_payload(data, "issueUpdate").get("issue"), "linear BatonIssueUpdate")
        detail: dict[str, Any] = {"changed": sorted(wrote)}
        if notes:
            body = "\n\n".join([n for n in [_str(changes.get("note"))] if n] + ["\n".join(notes)])
            comment = self._post_comment(self._client_id("sync", action.key), body, lambda: issue_id)
            issue, detail["comment"] = issue or comment.issue, comment.id
        if issue is None:
            return Delivery(external_id=ref, detail=detail)
        detail |= {"issue": issue.id, "identifier": issue.identifier}
        return Delivery(external_id=issue.id, detail=detail, link=issue.link(), wrote=wrote)

    # -- lookups and creation ----------------------------------------------------------------

    def _create(
        self,
        operation: str,
        fields: Mapping[str, Any],
        parse: Callable[[Mapping[str, Any]], _T],
        find: Callable[[], _T | None],
    ) -> tuple[_T, bool]:
        """Run a create; when Linear refuses it, an entity ``find`` sees is an earlier attempt's.
        Returns the entity and whether this call created it."""
        try:
            data = self._call(operation, {"input": fields})
        except PermanentConnectorError:
            with contextlib.suppress(ConnectorError):
                if (earlier := find()) is not None:
                    return earlier, False
            raise
        return parse(data), True

    def _post_comment(self, comment_id: str, body: str, issue: Callable[[], str]) -> _Comment:
        found = self._find_comment(comment_id)
        if found is not None:
            return found
        return self._create(
            "BatonCommentCreate",
            {"id": comment_id, "issueId": issue(), "body": body[:_TEXT_LIMIT]},
            lambda data: _parse_comment(
                _payload(data, "commentCreate").get("comment"), "linear commentCreate"
            ),
            lambda: self._find_comment(comment_id),
        )[0]

    def _client_id(self, purpose: str, key: str) -> str:
        return client_id(purpose, key, self._key)

    def _find_issue(self, issue_id: str) -> _Issue | None:
        """The issue an earlier attempt made under ``issue_id`` (see :meth:`_find`)."""
        return self._find("BatonIssueById", "issues", issue_id, "creator", _parse_issue)

    def _find_comment(self, comment_id: str) -> _Comment | None:
        """The comment an earlier attempt posted under ``comment_id`` (see :meth:`_find`)."""
        return self._find("BatonCommentById", "comments", comment_id, "user", _parse_comment)

    def _find(
        self, operation: str, entities: str, item_id: str, author: str, parse: Callable[[Any, str], _T]
    ) -> _T | None:
        """What ``operation`` finds under ``item_id``, taken as an earlier attempt's work only if
        this API key's user made it (``author``.isMe); anything else under Baton's id is refused."""
        nodes = _nodes(self._call(operation, {"id": item_id}), entities)
        if not nodes:
            return None
        found = parse(nodes[0], f"linear {operation}")
        if not _mine(nodes[0], author):
            raise PermanentConnectorError(f"linear: {item_id} exists in {entities} but was not made by Baton")
        return found

    def _issue(self, ref: str) -> tuple[_Issue, list[State]]:
        """An issue by UUID or identifier, with its team's workflow states."""
        what = "linear BatonIssue"
        found = self._call("BatonIssue", {"id": ref}).get("issue")
        issue = _parse_issue(found, what)
        team = found.get("team") if isinstance(found, Mapping) else None
        nodes = _nodes(team, "states") if isinstance(team, Mapping) else []
        return issue, [s for s in (_parse_state(n) for n in nodes) if s is not None]

    def _target(self, action: OutboundAction) -> str:
        """The UUID of the issue a comment goes on."""
        given = _str(action.params.get("issue")) or _str(_links(action.params).get("linear"))
        if given:
            return given if _UUID.match(given) else self._issue(given)[0].id
        marker = ticket_marker(action.ticket_id)
        candidates = [
            node
            for node in _nodes(self._call("BatonIssuesForTicket", {"marker": marker}), "issues")
            if _str(node.get("description")).rstrip().rpartition("\n")[2].strip() == marker and _mine(node)
        ]
        if not candidates:
            raise PermanentConnectorError(
                f"linear: ticket {action.ticket_id} has no Linear issue to comment on (no params.issue, "
                f"no linear link, no issue ending with {marker!r})"
            )
        newest = max(candidates, key=lambda node: _str(node.get("createdAt")))
        return _parse_issue(newest, "linear BatonIssuesForTicket").id

    def _team(self, ref: str) -> str:
        if _UUID.match(ref):
            return ref
        if ref.upper() not in self._teams:
            nodes = _nodes(self._call("BatonTeamByKey", {"key": ref}), "teams")
            team_id = _str(nodes[0].get("id")) if nodes else ""
            if not team_id:
                raise PermanentConnectorError(f"linear: no team with key {ref!r}")
            self._teams[ref.upper()] = team_id
        return self._teams[ref.upper()]

    def _labels(self, wanted: list[str], team_id: str) -> tuple[list[str], list[str]]:
        """Label ids for ids and names; names found in neither the workspace nor the team."""
        ids = [w for w in wanted if _UUID.match(w)]
        names = [w for w in wanted if not _UUID.match(w)]
        if not names:
            return ids, []
        found: dict[str, str] = {}
        for node in _nodes(self._call("BatonLabels", {"names": names}), "issueLabels"):
            team = node.get("team")
            owner = _str(team.get("id")) if isinstance(team, Mapping) else ""
            if owner in ("", team_id) and _str(node.get("id")):
                found.setdefault(_str(node.get("name")).casefold(), _str(node.get("id")))
        ids += [found[n.casefold()] for n in names if n.casefold() in found]
        return list(dict.fromkeys(ids)), [n for n in names if n.casefold() not in found]

    # -- GraphQL -------------------------------------------------------------------------------

    def _call(self, operation: str, variables: Mapping[str, Any]) -> Mapping[str, Any]:
        """One operation; its ``data``, or the connector error Linear's answer means."""
        what = f"linear {operation}"
        refused: list[HttpResponse] = []

        def explain(response: HttpResponse) -> str | None:
            refused.append(response)
            return _describe(_errors(_decode(response))) or None

        body = {"query": OPERATIONS[operation], "variables": dict(variables), "operationName": operation}
        try:
            response = self.http.request(
                "POST",
                self.config.api_url,
                what=what,
                content=json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(),
                headers={"authorization": self._key, "content-type": "application/json"},
                explain=explain,
            )
        except ConnectorError as exc:
            errors = _errors(_decode(refused[0])) if refused else []
            if not refused or not (isinstance(exc, TransientConnectorError) or _transient(errors)):
                raise
            hint = exc.retry_after if isinstance(exc, TransientConnectorError) else None
            if hint is None and (refused[0].status == 429 or _rate_limited(errors)):
                hint = self._wait(refused[0])
            raise TransientConnectorError(str(exc), retry_after=hint) from None
        decoded = _decode(response)
        if not isinstance(decoded, Mapping):
            cut = " (cut at max_response_bytes)" if response.truncated else ""
            raise TransientConnectorError(f"{what}: the answer is not a GraphQL JSON object{cut}")
        if errors := _errors(decoded):
            message = self.http.clean(f"{what}: {_describe(errors)}")
            if _transient(errors):
                wait = self._wait(response) if _rate_limited(errors) else None
                raise TransientConnectorError(message, retry_after=wait)
            raise PermanentConnectorError(message)
        data = decoded.get("data")
        if not isinstance(data, Mapping):
            raise TransientConnectorError(f"{what}: the answer carries no data")
        return data

    def _wait(self, response: HttpResponse) -> float | None:
        """Retry-After, else when the exhausted budget refills (reset headers, epoch ms)."""
        cap, now = self.config.http.max_retry_after, self.http.clock.now()
        headers = response.headers
        hinted = parse_retry_after(headers.get("retry-after"), now=now, date=headers.get("date"), cap=cap)
        if hinted is not None:
            return hinted
        waits = []
        for budget in ("requests", "complexity"):
            reset = _number(headers.get(f"x-ratelimit-{budget}-reset"))
            left = _number(headers.get(f"x-ratelimit-{budget}-remaining"))
            if reset is not None and (left is None or left <= 0):
                seconds = reset / 1000 if reset > 1e11 else reset  # milliseconds, as documented
                waits.append(min(max(seconds - now.timestamp(), 0.0), cap))
        return max(waits) if waits else None


# -- reading answers ---------------------------------------------------------------------------


def _decode(response: HttpResponse) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _errors(decoded: Any) -> list[tuple[str, str]]:
    """``(code, message)`` for each GraphQL error; the code from ``extensions.code`` or ``.type``."""
    raw = decoded.get("errors") if isinstance(decoded, Mapping) else None
    if not raw:
        return []
    found = []
    for error in raw[:10] if isinstance(raw, list) else [raw]:
        if not isinstance(error, Mapping):
            found.append(("", _str(error)[:300]))
            continue
        ext = error.get("extensions")
        ext = ext if isinstance(ext, Mapping) else {}
        code = _str(ext.get("code") or ext.get("type")).upper().replace(" ", "_")
        message = _str(ext.get("userPresentableMessage") or error.get("message"))[:300]
        found.append((code[:60], message))
    return found


def _describe(errors: list[tuple[str, str]]) -> str:
    return "; ".join(f"{code}: {message}" if code else message for code, message in errors)


def _transient(errors: list[tuple[str, str]]) -> bool:
    return bool(errors) and all(code in TRANSIENT_CODES for code, _ in errors)


def _rate_limited(errors: list[tuple[str, str]]) -> bool:
    return any(code == "RATELIMITED" for code, _ in errors)


def _payload(data: Mapping[str, Any], root: str) -> Mapping[str, Any]:
    payload = data.get(root)
    if not isinstance(payload, Mapping):
        raise TransientConnectorError(f"linear: the answer has no {root}")
    if payload.get("success") is False:
        raise PermanentConnectorError(f"linear {root}: Linear answered success: false")
    return payload


def _nodes(data: Mapping[str, Any], root: str) -> list[Mapping[str, Any]]:
    connection = data.get(root)
    nodes = connection.get("nodes") if isinstance(connection, Mapping) else None
    if not isinstance(nodes, list):
        raise TransientConnectorError(f"linear: the answer has no {root}.nodes list")
    return [n for n in nodes if isinstance(n, Mapping)]


def _id(node: Any, what: str, kind: str) -> str:
    found = node.get("id") if isinstance(node, Mapping) else None
    if not isinstance(found, str) or not 0 < len(found) <= 256:
        raise TransientConnectorError(f"{what}: the answer lacks the {kind}'s id")
    return found


def _parse_issue(node: Any, what: str) -> _Issue:
    issue_id = _id(node, what, "issue")
    url, identifier = node.get("url"), _str(node.get("identifier"))[:64]
    keep = isinstance(url, str) and len(url) <= 2_048 and url.startswith(("https://", "http://"))
    return _Issue(issue_id, identifier, url if keep else None)


def _parse_comment(node: Any, what: str) -> _Comment:
    return _Comment(_id(node, what, "comment"), _parse_issue(node.get("issue"), what))


def _parse_state(node: Mapping[str, Any]) -> State | None:
    position = node.get("position")
    if not isinstance(node.get("id"), str) or not isinstance(position, int | float):
        return None
    return State(_str(node["id"]), _str(node.get("name")), _str(node.get("type")), float(position))


def _number(value: str | None) -> float | None:
    with contextlib.suppress(ValueError):
        number = float((value or "x")[:20])
        return number if math.isfinite(number) else None
    return None


# -- building requests ---------------------------------------------------------------------------


def _title(params: Mapping[str, Any]) -> str:
    for field in ("title", "summary", "subject", "text"):
        if value := _str(params.get(field)):
            line = value.splitlines()[0] if field == "text" else value
            if title := " ".join(line.split()):
                return title[:255]
    raise PermanentConnectorError("linear create_issue: no title (params.title, summary, subject or text)")


def _description(params: Mapping[str, Any], ticket_id: str) -> str:
    text = _str(params.get("description")) or _str(params.get("text"))
    return (f"{text[:_TEXT_LIMIT]}\n\n" if text else "") + ticket_marker(ticket_id)


def _priority(value: object) -> str | None:
    word = _str(value).lower()
    if word and word not in PRIORITIES:
        raise PermanentConnectorError(f"linear: priority {value!r} is not one of urgent, high, normal, low")
    return word or None


def _links(params: Mapping[str, Any]) -> Mapping[str, Any]:
    links = params.get("links")
    return links if isinstance(links, Mapping) else {}
