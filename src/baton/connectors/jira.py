"""Jira Cloud through the REST API v3 (https://developer.atlassian.com/cloud/jira/platform/rest/v3/).

Basic auth with the account's e-mail and an API token
(https://developer.atlassian.com/cloud/jira/platform/basic-auth-for-rest-apis/); text goes out as
Atlassian Document Format (https://developer.atlassian.com/cloud/jira/platform/apis/document/structure/).

Kinds of action
    ``create_issue``
        ``POST /rest/api/3/issue`` in ``params.project`` (else the configured project) of type
        ``issue_type`` (else ``Task``) with ``summary`` (else ``subject``, else ``Baton ticket
        <id>``; one line, 255 characters), ``description``/``text`` as ADF paragraphs, ``priority``
        (Baton's low/normal/high/urgent through ``priorities``), ``labels``, and two labels of
        Baton's: ``baton-<the action key>`` (dedup) and ``baton-<ticket id>``.
    ``comment`` / ``notify``
        ``POST /rest/api/3/issue/{id}/comment``: ``subject`` in bold, then ``text``; a ``notify``
        whose ``address`` is an Atlassian account id mentions that person. The issue is
        ``params.issue``, else ``params.links["jira"]``, else the oldest with the ticket's label
        that the token's own account created (anyone can label an issue of theirs).
    ``transition``
        ``params.transition`` (a transition's name or id) or ``params.status`` (a status name):
        ``GET .../transitions``, pick one, ``POST .../transitions``. Already there is success.
    ``sync``
        ``changes`` on ``external_id``: ``priority`` (``PUT /rest/api/3/issue/{id}``), ``assignee``
        (an account id, ``PUT .../assignee``; empty unassigns), ``status`` (a Baton stage, through
        ``statuses`` to a Jira status, reached by a transition). ``team``, ``tier`` and a stage
        Jira cannot reach go into a comment with the ``note``.

    Every delivery links the issue as ``("jira", <numeric id>, <site>/browse/<KEY>)``: the id, not
    the key, because the Jira signal adapter names issues by id (a key changes when an issue moves).

Duplicates
    Jira takes no idempotency key. A create first searches (``POST /rest/api/3/search/jql``) for
    its dedup label and returns the issue found. That search is eventually consistent
    (https://developer.atlassian.com/cloud/jira/platform/search-and-reconcile/: the delay "might
    vary from a few seconds to minutes"), so a create whose response was lost, retried at once,
    could make a second issue. Issues this process created are remembered (action key and ticket
    -> issue id) and passed as ``reconcileIssues``, which makes the search read-after-write
    consistent for them. For any other retried create (say, after the worker was killed) that
    finds nothing, every second attempt waits ``search_settle_seconds`` (30 by default) and
    searches again before the next one creates
    (:func:`~baton.connectors.base.settle_before_creating`): a duplicate needs Jira's index to lag
    longer than that.
    A comment carries the action key in its ``baton`` property, and the 200 newest comments are
    read with their properties (``GET .../comment``, ``POST /rest/api/3/comment/list?expand=
    properties``) before posting. A transition records the action key in the issue property
    ``baton.transition``, so a retried one that Jira no longer offers (it happened) is recognised.

Errors
    Jira's ``{"errorMessages": [...], "errors": {field: message}}`` is quoted in messages; 429
    (with Retry-After, https://developer.atlassian.com/cloud/jira/platform/rate-limiting/), 409 and
    5xx are transient; 400, 401, 403 and 404 are permanent. Token and Authorization are masked.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from baton.clock import Clock
from baton.connectors.addresses import Resolver
from baton.connectors.base import SETTLE_SECONDS, Delivery, OutboundAction, settle_before_creating
from baton.connectors.config import HttpConfig, _url, configured, http_config
from baton.connectors.http import HttpResponse, OutboundHttp
from baton.connectors.params import param_list as _list
from baton.connectors.params import param_str as _str
from baton.errors import PermanentConnectorError, TransientConnectorError
from baton.model import ExternalLink
from baton.settings import Settings

__all__ = ["PRIORITIES", "STATUSES", "JiraConfig", "JiraConnector", "adf", "dedup_label", "ticket_label"]

_log = logging.getLogger("baton.connectors.jira")

PRIORITIES = {"low": "Low", "normal": "Medium", "high": "High", "urgent": "Highest"}
STATUSES = dict(new="To Do", open="In Progress", escalated="In Progress", solved="Done", closed="Done")
_STAGES = frozenset({"new", "open", "pending", "escalated", "solved", "closed"})
_ALLOWED = {"priorities": frozenset(PRIORITIES), "statuses": _STAGES}
# Status categories in Baton's words, as the Jira signal adapter reads them.
_CATEGORIES = {"new": "new", "indeterminate": "open", "done": "solved"}
_PROPERTY, _TRANSITION_PROPERTY = "baton", "baton.transition"
_REF = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_]*-[1-9][0-9]{0,17}|[1-9][0-9]{0,17})$")
_KEY = re.compile(r"^[A-Z][A-Z0-9_]*-[1-9][0-9]{0,17}$")
_ID = re.compile(r"^[1-9][0-9]{0,17}$")
_ACCOUNT = re.compile(r"^(?:[0-9a-f]{24}|[0-9]{1,10}:[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TEXT_LIMIT = 32_000  # Jira refuses text fields over 32,767 characters
_COMMENT_PAGE, _COMMENT_PAGES = 50, 4  # the 200 newest comments are checked for a retried one
_MEMO = 4_096
_LOOKUP_ATTEMPTS, _LOOKUP_DELAY = 3, 15.0


class JiraConfig(BaseModel):
    """Jira Cloud: the site, the account that acts, and how Baton's words map onto Jira's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="The site, e.g. https://acme.atlassian.net.")
    email: str = Field(min_length=3, max_length=320, description="The Atlassian account's e-mail.")
    api_token: SecretStr = Field(description="An API token of that account.")
    project: str | None = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]{0,254}$")
    issue_type: str = Field(default="Task", min_length=1, max_length=255)
    priorities: dict[str, str] = Field(default_factory=lambda: dict(PRIORITIES))
    statuses: dict[str, str] = Field(default_factory=lambda: dict(STATUSES))
    search_settle_seconds: float = Field(
        default=SETTLE_SECONDS,
        ge=0,
        le=3_600,
        description="How long a retried create that finds no issue waits for Jira's search to catch up "
        "before creating (0: create at once).",
    )
    http: HttpConfig = Field(default_factory=HttpConfig)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        url = httpx.URL(_url(value))
        if url.path not in ("", "/") or url.query or url.fragment:
            raise ValueError("must be the site's address without a path, e.g. https://acme.atlassian.net")
        return value.rstrip("/")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if "@" not in value or ":" in value or any(c.isspace() for c in value):
            raise ValueError("must be an e-mail address (no spaces or ':')")
        return value

    @field_validator("api_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value() or any(c.isspace() for c in value.get_secret_value()):
            raise ValueError("must be the API token (not empty, no spaces)")
        return value

    @field_validator("priorities", "statuses")
    @classmethod
    def _names(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        allowed = _ALLOWED[str(info.field_name)]
        if unknown := sorted(set(value) - set(allowed)):
            raise ValueError(f"{unknown} are not among Baton's {', '.join(sorted(allowed))}")
        if any(not v.strip() for v in value.values()):
            raise ValueError("Jira names must not be empty")
        return {k: v.strip() for k, v in value.items()}


@dataclass(frozen=True)
class _Issue:
    id: str
    key: str
    status: str | None = None
    category: str | None = None
    last_transition: str | None = None  # the action key in the baton.transition property


@dataclass(frozen=True)
class _Moved:
    """Where a transition left the issue; ``status`` None when Jira offered no way there."""

    status: str | None
    category: str | None = None
    moved: bool = False
    available: tuple[str, ...] = ()


def dedup_label(key: str) -> str:
    """The label that marks the issue one ``create_issue`` action made: the whole key, so keys
    that share a prefix (as sequential test keys do) never share an issue."""
    return "baton-" + re.sub(r"[^0-9a-z]", "", key.lower())[:64]


def ticket_label(ticket_id: str) -> str:
    """The label every issue Baton opens for a ticket carries (labels cannot hold spaces)."""
    return _label(f"baton-{ticket_id.lower()}")


def adf(text: str, *, heading: str = "", mention: str | None = None) -> dict[str, Any]:
    """An ADF document: an optional mention and bold heading, then one paragraph per blank-line
    separated block, its lines joined by hard breaks (ADF text nodes may not be empty)."""
    blocks: list[dict[str, Any]] = []
    first: list[dict[str, Any]] = []
    if mention:
        first += [{"type": "mention", "attrs": {"id": mention}}, {"type": "text", "text": " "}]
    if heading := _CONTROL.sub("", heading).strip():
        first.append({"type": "text", "text": heading, "marks": [{"type": "strong"}]})
    if first:
        blocks.append({"type": "paragraph", "content": first})
    for block in re.split(r"\n\s*\n", _CONTROL.sub("", text[:_TEXT_LIMIT]).replace("\r", "")):
        content: list[dict[str, Any]] = []
        for i, line in enumerate(block.strip().split("\n")):
            content += [{"type": "hardBreak"}] if i else []
            content += [{"type": "text", "text": line.rstrip()}] if line.rstrip() else []
        if any(node["type"] == "text" for node in content):
            blocks.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": blocks}


class JiraConnector:
    """Creates, comments on, transitions and updates issues on one Jira Cloud site."""

    name = "jira"

    def __init__(
        self, config: JiraConfig, *, clock: Clock | None = None, resolver: Resolver | None = None
    ) -> None:
        self.config = config
        self.site = config.url
        token = config.api_token.get_secret_value()
        basic = base64.b64encode(f"{config.email}:{token}".encode()).decode()
        self._auth = f"Basic {basic}"
        self.http = OutboundHttp(config.http, clock=clock, resolver=resolver, secrets=(token, basic))
        self.http.check_url(self.site)
        self._lock = threading.Lock()
        self._created: OrderedDict[str, str] = OrderedDict()  # action key -> id of the issue it made
        self._tickets: OrderedDict[str, list[str]] = OrderedDict()  # ticket label -> issue ids

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> JiraConnector:
        needs = {
            f"BATON_{n.upper()}": getattr(settings, n) for n in ("jira_url", "jira_email", "jira_api_token")
        }
        values = {
            "url": settings.jira_url,
            "email": settings.jira_email,
            "api_token": settings.jira_api_token,
            "project": settings.jira_project,
            "search_settle_seconds": settings.jira_search_settle_seconds,
            "http": http_config(settings),
        }
        return configured("jira", JiraConfig, values, lambda config: cls(config, clock=clock), needs=needs)

    def send(self, action: OutboundAction) -> Delivery:
        kinds = {"create_issue": self._create_issue, "comment": self._comment, "notify": self._comment}
        handler = {**kinds, "transition": self._transition, "sync": self._sync}.get(action.kind)
        if handler is None:
            raise PermanentConnectorError(f"jira: cannot perform {action.kind!r}")
        return handler(action)

    def close(self) -> None:
        self.http.close()

    # -- kinds -----------------------------------------------------------------------------

    def _create_issue(self, action: OutboundAction) -> Delivery:
        params = action.params
        dedup, ticket = dedup_label(action.key), ticket_label(action.ticket_id)
        project = _str(params.get("project")) or self.config.project
        if not project:
            raise PermanentConnectorError(
                "jira create_issue: no project (params.project or BATON_JIRA_PROJECT)"
            )
        summary = " ".join((_str(params.get("summary")) or _str(params.get("subject"))).split())
        text = _str(params.get("description")) or _str(params.get("text"))
        fields: dict[str, Any] = {
            "project": {"key": project},
            "issuetype": {"name": _str(params.get("issue_type")) or self.config.issue_type},
            "summary": _CONTROL.sub("", summary or f"Baton ticket {action.ticket_id}")[:255],
            "labels": list(dict.fromkeys([dedup, ticket, *map(_label, _list(params.get("labels")))])),
        }
        if text:
            fields["description"] = adf(text)
        wrote: dict[str, str] = {}
        if params.get("priority") is not None:
            name, wrote["priority"] = self._priority(params["priority"])
            fields["priority"] = {"name": name}
        with self._lock:
            known = self._created.get(action.key)
        if found := self._search(dedup, reconcile=[known] if known else []):
            return self._delivery(found, {"created": False}, wrote)
        if known is None:  # an issue this process made is found consistently; another may not be
            settle_before_creating(
                action, what="jira create issue", seconds=self.config.search_settle_seconds
            )
        body = {"fields": fields, "properties": [self._marker(action)]}
        issue = _issue(self._api("POST", "/rest/api/3/issue", "jira create issue", body=body))
        if issue is None:
            raise TransientConnectorError("jira create issue: the answer names no issue id and key")
        with self._lock:
            self._created[action.key] = issue.id
            self._tickets.setdefault(ticket, []).append(issue.id)
            for memo in (self._created, self._tickets):
                while len(memo) > _MEMO:
                    memo.popitem(last=False)
        return self._delivery(issue, {"created": True}, wrote)

    def _comment(self, action: OutboundAction) -> Delivery:
        params = action.params
        subject, text = _str(params.get("subject")), _str(params.get("text")) or _str(params.get("body"))
        if not subject and not text:
            raise PermanentConnectorError(f"jira {action.kind}: nothing to post (no subject or text)")
        address = _str(params.get("address")) if action.kind == "notify" else ""
        issue = self._target(action)
        doc = adf(text, heading=subject, mention=address if _ACCOUNT.match(address) else None)
        comment, created = self._post_comment(issue, action, doc)
        detail = {"comment": comment, "created": created}
        return self._delivery(issue, detail, {}, external=comment)

    def _transition(self, action: OutboundAction) -> Delivery:
        transition, status = _str(action.params.get("transition")), _str(action.params.get("status"))
        if not transition and not status:
            raise PermanentConnectorError("jira transition: give params.transition or params.status")
        issue = self._target(action, fresh=True)
        moved = self._move(issue, action, transition=transition, status=status)
        if moved.status is None:
            raise PermanentConnectorError(
                f"jira transition: {issue.key} is in {issue.status!r}; no transition from there matches "
                f"{transition or status!r} (available: {', '.join(moved.available) or 'none'})"
            )
        stage = _CATEGORIES.get(moved.category or "")
        detail = {"status": moved.status, "transitioned": moved.moved}
        return self._delivery(issue, detail, {"status": stage} if stage else {})

    def _sync(self, action: OutboundAction) -> Delivery:
        params, changes = action.params, action.params.get("changes")
        if not isinstance(changes, Mapping):
            raise PermanentConnectorError("jira sync: params.changes is not a mapping")
        priority = self._priority(changes["priority"]) if changes.get("priority") is not None else None
        issue = self._fetch(_ref(_str(params.get("external_id")), "external_id"))
        wrote: dict[str, str] = {}
        skipped: dict[str, str] = {}
        if priority is not None:
            body = {"fields": {"priority": {"name": priority[0]}}}
            self._api("PUT", f"/rest/api/3/issue/{issue.id}", "jira edit issue", body=body, answer=False)
            wrote["priority"] = priority[1]
        if "assignee" in changes:
            account = _str(changes["assignee"]) or None
            path = f"/rest/api/3/issue/{issue.id}/assignee"
            self._api("PUT", path, "jira assign issue", body={"accountId": account}, answer=False)
            wrote["assignee"] = account or ""
        if changes.get("status") is not None:
            stage = _str(changes["status"]).lower()
            target = self.config.statuses.get(stage)
            if target is None:
                skipped["status"] = f"no Jira status is configured for stage {stage!r}"
            elif self._move(issue, action, status=target).status is None:
                skipped["status"] = f"no transition from {issue.status!r} to {target!r}"
            else:
                wrote["status"] = stage
        extra = {k: _str(changes[k]) for k in ("team", "tier") if changes.get(k) is not None}
        comment = None
        if extra or skipped:
            note = _str(params.get("note"))
            lines = [note] if note else [f"Baton: {k} is now {v}" for k, v in extra.items()]
            lines += [f"Not set in Jira: {k} ({why})" for k, why in skipped.items()]
            comment, _ = self._post_comment(issue, action, adf("\n".join(lines)))
        if skipped:
            _log.warning("jira sync of %s: not written %s", issue.key, skipped)
        return self._delivery(issue, {"not_written": skipped, "comment": comment}, wrote)

    # -- issues, comments and transitions --------------------------------------------------

    def _target(self, action: OutboundAction, *, fresh: bool = False) -> _Issue:
        """The issue an action on an existing issue means (see the module docstring)."""
        links = action.params.get("links")
        linked = links.get("jira") if isinstance(links, Mapping) else None
        if ref := _str(action.params.get("issue")) or _str(linked):
            return self._fetch(_ref(ref, "issue"))
        label = ticket_label(action.ticket_id)
        with self._lock:
            known = list(self._tickets.get(label, ()))[-50:]
        found = self._search(label, reconcile=known)
        if found is None:
            message = (
                f"jira {action.kind}: no issue for ticket {action.ticket_id} "
                f"(no params.issue, no jira link, none labelled {label})"
            )
            if action.attempt < _LOOKUP_ATTEMPTS:  # one created moments ago may not be searchable yet
                raise TransientConnectorError(message, retry_after=_LOOKUP_DELAY)
            raise PermanentConnectorError(message)
        return self._fetch(found.id) if fresh else found

    def _fetch(self, ref: str) -> _Issue:
        query = {"fields": "status", "properties": _TRANSITION_PROPERTY}
        issue = _issue(self._api("GET", f"/rest/api/3/issue/{ref}", "jira get issue", params=query))
        if issue is None:
            raise TransientConnectorError("jira get issue: the answer names no issue id and key")
        return issue

    def _search(self, label: str, *, reconcile: list[str]) -> _Issue | None:
        """The oldest issue carrying ``label`` that this account created (anyone can add a label
        to an issue of theirs: it must never be taken for Baton's, nor receive a ticket's
        comments); ``reconcile`` ids are searched consistently."""
        quoted = '"' + label.replace("\\", "\\\\").replace('"', '\\"') + '"'
        jql = f"labels = {quoted} AND creator = currentUser() ORDER BY created ASC"
        body: dict[str, Any] = {"jql": jql, "fields": ["key", "labels"]}
        body["maxResults"] = 10
        if reconcile:
            body["reconcileIssues"] = [int(i) for i in reconcile]
        issues = self._api("POST", "/rest/api/3/search/jql", "jira search", body=body).get("issues")
        if not isinstance(issues, list):
            raise TransientConnectorError("jira search: the answer has no issues list")
        for raw in issues:
            labels = _at(raw, "fields", "labels")
            if isinstance(labels, list) and label not in labels:
                continue  # Jira said it matched; what it shows says otherwise
            if issue := _issue(raw):
                return issue
            if _ID.match(found := _str(_at(raw, "id"))):  # an answer of ids only (the default)
                return self._fetch(found)
        return None

    def _post_comment(self, issue: _Issue, action: OutboundAction, doc: dict[str, Any]) -> tuple[str, bool]:
        if existing := self._find_comment(issue, action.key):
            return existing, False
        body = {"body": doc, "properties": [self._marker(action)]}
        data = self._api("POST", f"/rest/api/3/issue/{issue.id}/comment", "jira add comment", body=body)
        if not _ID.match(comment := _str(data.get("id"))):
            raise TransientConnectorError("jira add comment: the answer names no comment id")
        return comment, True

    def _find_comment(self, issue: _Issue, key: str) -> str | None:
        """A comment among the newest that carries ``key`` in its ``baton`` property."""
        for page in range(_COMMENT_PAGES):
            query = {
                "orderBy": "-created",
                "startAt": str(page * _COMMENT_PAGE),
                "maxResults": str(_COMMENT_PAGE),
            }
            data = self._api(
                "GET", f"/rest/api/3/issue/{issue.id}/comment", "jira get comments", params=query
            )
            comments = data.get("comments")
            if not isinstance(comments, list):
                raise TransientConnectorError("jira get comments: the answer has no comments list")
            if ids := [int(i) for c in comments if _ID.match(i := _str(_at(c, "id")))]:
                path, query = "/rest/api/3/comment/list", {"expand": "properties"}
                listed = self._api("POST", path, "jira get comments", params=query, body={"ids": ids})
                for comment in _items(listed.get("values")):
                    if any(
                        _at(p, "key") == _PROPERTY and _at(p, "value", "key") == key
                        for p in _items(comment.get("properties"))
                    ):
                        return _str(comment.get("id"))
            total = data.get("total")
            if len(comments) < _COMMENT_PAGE or (
                isinstance(total, int) and (page + 1) * _COMMENT_PAGE >= total
            ):
                return None
        return None

    def _move(
        self, issue: _Issue, action: OutboundAction, *, transition: str = "", status: str = ""
    ) -> _Moved:
        """Bring ``issue`` to ``status`` or through ``transition`` unless it is there already."""
        here = _Moved(issue.status or "", issue.category)
        if (status and _same(issue.status, status)) or issue.last_transition == action.key:
            return here
        data = self._api("GET", f"/rest/api/3/issue/{issue.id}/transitions", "jira get transitions")
        if not isinstance(data.get("transitions"), list):
            raise TransientConnectorError("jira get transitions: the answer has no transitions list")
        options = [o for o in map(_option, data["transitions"]) if o[0] and o[2]]
        if transition:
            pick = next((o for o in options if transition in (o[0], o[1]) or _same(o[1], transition)), None)
        else:
            pick = next((o for o in options if _same(o[2], status)), None)
            pick = pick or next((o for o in options if _same(o[1], status)), None)
        if pick is None:
            if transition and _same(issue.status, transition):
                return here
            return _Moved(None, available=tuple(o[1] for o in options))
        if _same(pick[2], issue.status):
            return here
        marker = {"key": _TRANSITION_PROPERTY, "value": {"key": action.key, "to": pick[2]}}
        body = {"transition": {"id": pick[0]}, "properties": [marker]}
        self._api(
            "POST", f"/rest/api/3/issue/{issue.id}/transitions", "jira transition", body=body, answer=False
        )
        return _Moved(pick[2], pick[3], moved=True)

    # -- the REST API ----------------------------------------------------------------------

    def _priority(self, value: object) -> tuple[str, str]:
        word = _str(value).lower()
        for baton, name in self.config.priorities.items():
            if word in (baton, name.lower()):
                return name, baton
        raise PermanentConnectorError(
            f"jira: priority {value!r} is not one of {', '.join(self.config.priorities)}"
        )

    @staticmethod
    def _marker(action: OutboundAction) -> dict[str, Any]:
        return {"key": _PROPERTY, "value": {"key": action.key, "ticket": action.ticket_id}}

    def _delivery(
        self, issue: _Issue, detail: dict[str, Any], wrote: dict[str, str], *, external: str | None = None
    ) -> Delivery:
        # The link names the numeric id, as the Jira signal adapter does: a key changes when an
        # issue moves to another project, the id does not.
        return Delivery(
            external_id=external or issue.key,
            detail={"issue": issue.key, "id": issue.id, **detail},
            link=ExternalLink(system="jira", id=issue.id, url=f"{self.site}/browse/{issue.key}"),
            wrote=wrote,
        )

    def _api(
        self,
        method: str,
        path: str,
        what: str,
        *,
        body: object = None,
        params: Mapping[str, str] | None = None,
        answer: bool = True,
    ) -> dict[str, Any]:
        """One call; its JSON object answer (``answer``), else ``{}`` (204 No Content)."""
        headers = {"authorization": self._auth, "accept": "application/json"}
        content = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            headers["content-type"] = "application/json"
        response = self.http.request(
            method,
            self.site + path,
            what=what,
            content=content,
            headers=headers,
            params=params,
            explain=_explain,
        )
        if not answer:
            return {}
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            cut = " (cut at the size limit)" if response.truncated else ""
            raise TransientConnectorError(f"{what}: the answer is not a Jira JSON object{cut}")
        return data


def _issue(data: object) -> _Issue | None:
    """An issue from a create, get or search answer; None when its id or key is unusable."""
    issue_id, key = _str(_at(data, "id")), _str(_at(data, "key"))
    if not _ID.match(issue_id) or not _KEY.match(key):
        return None
    status, category = (
        _at(data, "fields", "status", "name"),
        _at(data, "fields", "status", "statusCategory", "key"),
    )
    marker = _at(data, "properties", _TRANSITION_PROPERTY, "key")
    return _Issue(
        issue_id, key, *(_str(v) or None if isinstance(v, str) else None for v in (status, category, marker))
    )


def _option(transition: object) -> tuple[str, str, str, str | None]:
    """A transition as (id, name, target status, the target's category)."""
    category = _at(transition, "to", "statusCategory", "key")
    found = _str(_at(transition, "id")), _str(_at(transition, "name")), _str(_at(transition, "to", "name"))
    return (*found, category if isinstance(category, str) else None)


def _at(data: object, *path: str) -> Any:
    """``data[path[0]][path[1]]...``, or None where the answer is not shaped that way."""
    for name in path:
        if not isinstance(data, dict):
            return None
        data = data.get(name)
    return data


def _items(value: object) -> Iterable[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _ref(value: str, what: str) -> str:
    """An issue key (upper-cased) or numeric id, safe to put in a URL path."""
    if not _REF.match(value):
        raise PermanentConnectorError(f"jira: {what} {value[:80]!r} is not an issue key or id")
    return value.upper()


def _label(raw: str) -> str:
    label = re.sub(r"\s+", "-", _CONTROL.sub("", raw).strip())
    if not label or len(label) > 255:
        raise PermanentConnectorError(f"jira: {raw[:80]!r} is not a usable label (1 to 255 characters)")
    return label


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


def _explain(response: HttpResponse) -> str | None:
    """Jira's ``{"errorMessages": [...], "errors": {field: message}}`` as one line."""
    try:
        data = response.json()
    except ValueError:
        return None
    messages, errors = _at(data, "errorMessages"), _at(data, "errors")
    parts = [str(m) for m in messages if m] if isinstance(messages, list) else []
    parts += [f"{k}: {v}" for k, v in errors.items()] if isinstance(errors, dict) else []
    if not parts and isinstance(_at(data, "message"), str):
        parts.append(data["message"])
    return "; ".join(parts) or None
